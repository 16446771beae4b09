"""Session recordings: asciicast v2 written in compressed chunks as the terminal runs.

models (tables), cast (event encoding, command line tracking, .cast assembly), recorder
(the per-session buffer fed by the terminal bridge's hooks), live (hooks and flush loops in
this process), services (the one writer), selectors, api (the .cast download).
"""

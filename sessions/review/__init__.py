"""Reviewing sessions: the history page, the review parts of the session page, live watching."""

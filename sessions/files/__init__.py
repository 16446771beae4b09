"""Files in and out of a session, through its debug container (issue 15).

Download: a file or directory of the target container's filesystem, by the path the target
sees, read from the debug container through /proc/<target>/root (or /host on a node), so the
distroless target needs nothing. Upload: a file into the debug container. Policy decides
(a rule's `files`), each transfer is streamed and capped, audited with its size and sha256,
marked in the session's recording, and its bytes kept for the reviewer.
"""

"""A bounded byte ring for `kubectl logs`: keeps the newest bytes, drops whole old chunks."""

from __future__ import annotations

from collections import deque

DEFAULT_LIMIT = 1024 * 1024


class LogBuffer:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.total = 0  # bytes ever appended

    def append(self, data: bytes) -> None:
        self.total += len(data)
        # Chunks instead of one bytearray: trimming the front never copies the whole buffer.
        if len(data) >= self.limit:
            self._chunks.clear()
            self._chunks.append(data[-self.limit :])
            self._size = self.limit
            return
        self._chunks.append(data)
        self._size += len(data)
        while self._size > self.limit:
            excess = self._size - self.limit
            head = self._chunks[0]
            if len(head) <= excess:
                self._chunks.popleft()
                self._size -= len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)

    def __len__(self) -> int:
        return self._size

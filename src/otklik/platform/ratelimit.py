"""A small sliding-window limiter (per process) for login attempts and public forms."""

from __future__ import annotations

import threading
import time
from collections import deque

from otklik.platform.errors import RateLimited


class SlidingWindow:
    def __init__(self, limit: int, seconds: float):
        self.limit = limit
        self.seconds = seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = int(hits[0] + self.seconds - now) + 1
                raise RateLimited(f"too many attempts; try again in {retry} s")
            hits.append(now)
            if len(self._hits) > 100_000:
                self._hits.clear()

"""Sliding-window limiters: per process (public forms), and shared through Redis when configured (sign-in)."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from typing import Any

from otklik.platform.errors import RateLimited

log = logging.getLogger(__name__)


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

    def clear(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._hits.clear()


_REDIS_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if ARGV[4] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
end
local n = redis.call('ZCARD', KEYS[1])
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {n, first[2] or ARGV[1]}
"""


class SharedWindow:
    """A sliding window shared by every process through Redis when OTKLIK_REDIS_URL is set (a sorted set per
    key, trimmed and counted in one Lua call), per process otherwise (the embedded one-process default).

    Unlike `SlidingWindow` it separates looking from counting: sign-in counts failures only, so an office
    behind one address signing in every morning is never throttled, while guessing is. If Redis cannot be
    reached the process falls back to its own window for that call: a limiter must never stop sign-ins."""

    def __init__(self, name: str, limit: int, seconds: float):
        self.name = name
        self.limit = limit
        self.seconds = seconds
        self._local: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._script: Any = None
        self._script_url: str | None = None

    def _redis_call(self, key: str, add: bool) -> tuple[int, float] | None:
        from otklik.platform.config import get_settings

        url = get_settings().redis_url
        if not url:
            return None
        try:
            if self._script is None or self._script_url != url:
                import redis

                client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
                self._script = client.register_script(_REDIS_WINDOW)
                self._script_url = url
            now = time.time()
            count, first = self._script(keys=[f"otklik:rl:{self.name}:{key}"],
                                        args=[now, self.seconds, self.limit, "1" if add else "0",
                                              f"{now}:{secrets.token_hex(4)}"])
            return int(count), float(first) + self.seconds - now
        except Exception as exc:  # Redis down: this process's own window decides
            log.warning("rate limit %s: Redis unavailable (%s); using this process's window", self.name,
                        type(exc).__name__)
            self._script = None
            return None

    def _local_call(self, key: str, add: bool) -> tuple[int, float]:
        now = time.monotonic()
        with self._lock:
            hits = self._local.setdefault(key, deque())
            while hits and hits[0] <= now - self.seconds:
                hits.popleft()
            if add:
                hits.append(now)
            if len(self._local) > 100_000:
                self._local.clear()
            return len(hits), (hits[0] + self.seconds - now) if hits else 0.0

    def check(self, key: str) -> None:
        """RateLimited when the key already has `limit` hits in the window."""
        count, retry = self._redis_call(key, False) or self._local_call(key, False)
        if count >= self.limit:
            raise RateLimited(f"too many attempts; try again in {int(max(retry, 0)) + 1} s")

    def add(self, key: str) -> None:
        self._redis_call(key, True) or self._local_call(key, True)

    def clear(self) -> None:
        """Forget every key (tests)."""
        with self._lock:
            self._local.clear()
        from otklik.platform.config import get_settings

        url = get_settings().redis_url
        if url:
            import redis

            client = redis.Redis.from_url(url)
            for key in client.scan_iter(f"otklik:rl:{self.name}:*"):
                client.delete(key)

"""Sliding-window rate limits: the widget, web forms, password resets and sign-in. Shared by every process
through Redis when OTKLIK_REDIS_URL is set (a sorted set per key, trimmed, counted and added in one Lua call),
per process otherwise (the embedded one-process default). A limiter never stops the service: if Redis cannot
be reached, each process counts on its own until it can again."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from typing import Any

from otklik.platform.errors import RateLimited

log = logging.getLogger(__name__)
WARN_EVERY_SECONDS = 60.0  # one "Redis unavailable" line a minute per limiter, not one per request

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _redis_client(url: str) -> Any:
    """One connection pool per URL for every limiter of the process."""
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
            _clients[url] = client
        return client


def _configured_redis_url() -> str | None:
    from otklik.platform.config import get_settings

    return get_settings().redis_url


_REDIS_HIT = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
local n = redis.call('ZCARD', KEYS[1])
if n >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, first[2] or ARGV[1]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
return {1, ARGV[1]}
"""


class _LocalHits(dict[str, "deque[float]"]):
    """This process's hits per key. `clear()` also forgets the shared window's keys in Redis, so a test (or an
    operator's script) that resets a limiter with `limiter._hits.clear()` resets it everywhere."""

    def __init__(self, owner: SlidingWindow):
        super().__init__()
        self._owner = owner

    def clear(self) -> None:
        super().clear()
        self._owner._clear_shared()


class SlidingWindow:
    """At most `limit` hits per key in any `seconds`; a hit over the limit raises RateLimited (429) and is not
    counted. With a `name`, the window is shared through Redis when configured (every web process counts the
    same visitor, address or form); without one, or with Redis unset, each process counts alone."""

    def __init__(self, limit: int, seconds: float, name: str | None = None):
        self.limit = limit
        self.seconds = seconds
        self.name = name
        self._hits: dict[str, deque[float]] = _LocalHits(self)
        self._lock = threading.Lock()
        self._script: Any = None
        self._script_url: str | None = None
        self._warned_at = 0.0

    def hit(self, key: str) -> None:
        shared = self._redis_hit(key) if self.name else None
        if shared is not None:
            allowed, retry = shared
            if not allowed:
                raise RateLimited(f"too many attempts; try again in {int(max(retry, 0)) + 1} s")
            return
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
                dict.clear(self._hits)  # this process's memory only; Redis keys expire by themselves

    def _redis_hit(self, key: str) -> tuple[bool, float] | None:
        """(whether the hit was allowed and counted, seconds until a slot frees), or None when Redis is not
        configured or cannot be reached."""
        url = _configured_redis_url()
        if not url:
            return None
        try:
            if self._script is None or self._script_url != url:
                self._script = _redis_client(url).register_script(_REDIS_HIT)
                self._script_url = url
            now = time.time()
            allowed, first = self._script(keys=[f"otklik:rl:{self.name}:{key}"],
                                          args=[repr(now), self.seconds, self.limit,
                                                f"{now}:{secrets.token_hex(4)}"])
            return bool(int(allowed)), float(first) + self.seconds - now
        except Exception as exc:  # Redis down: this process's own window decides
            self._script = None
            if time.monotonic() - self._warned_at > WARN_EVERY_SECONDS:
                self._warned_at = time.monotonic()
                log.warning("rate limit %s: Redis unavailable (%s); each process counts alone", self.name,
                            type(exc).__name__)
            return None

    def _clear_shared(self) -> None:
        url = _configured_redis_url() if self.name else None
        if not url:
            return
        try:
            client = _redis_client(url)
            for redis_key in client.scan_iter(f"otklik:rl:{self.name}:*"):
                client.delete(redis_key)
        except Exception as exc:
            log.warning("rate limit %s: could not clear Redis (%s)", self.name, type(exc).__name__)

    def clear(self) -> None:
        """Forget every key, in Redis too (tests)."""
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

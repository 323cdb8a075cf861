"""A per-process copy of small, rarely changed rows (a workspace's settings, its calendar) that hot paths read on
every request: a routing decision, a deadline calculation. A copy lives `seconds`; the process that changes the
row drops it at once (`forget`, also on the change's commit), other processes see the change within `seconds`.
`generation` (a callable) lets a cache also drop everything when a counter moves (calendars.service.GENERATION).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


class ProcessCache:
    def __init__(self, seconds: float, *, generation: Callable[[], int] | None = None, max_items: int = 10_000):
        self.seconds = seconds
        self.generation = generation or (lambda: 0)
        self.max_items = max_items
        self._items: dict[Hashable, tuple[float, int, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        now, generation = time.monotonic(), self.generation()
        hit = self._items.get(key)
        if hit is not None and hit[0] > now and hit[1] == generation:
            return hit[2]
        value = load()
        with self._lock:
            if len(self._items) >= self.max_items:
                self._items.clear()
            self._items[key] = (now + self.seconds, generation, value)
        return value

    def forget(self, key: Hashable, session: Session | None = None) -> None:
        """Drop the copy now and, with `session`, again when its transaction ends (the new row is then
        committed, or the change rolled back)."""
        self._items.pop(key, None)
        if session is not None:
            for moment in ("after_commit", "after_rollback"):
                event.listen(session, moment, lambda _s, k=key: self._items.pop(k, None), once=True)

"""What this worker process knows about its tasks, as Celery's ``celery.worker.state``.

Per process, in memory, as in Celery: the tasks running now (``active_requests``), the ids of
those that succeeded and of those revoked (bounded sets), and counts by task name. The remote
control (:mod:`.control`) answers ``inspect().active()``, ``revoked()`` and ``stats()`` from it,
and tests that run a worker in their own process (``contrib.pytest``) read it directly.
The durable record of a revoke is its mark in Redis (``keys.revoked``); ``revoked`` here is the
worker's memory of the revoke broadcasts it heard, as Celery's is.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

#: Bounds of the id sets, Celery's defaults (CELERY_WORKER_SUCCESSFUL_MAX / REVOKES_MAX, expiry in s).
SUCCESSFUL_MAX = 1000
SUCCESSFUL_EXPIRES = 10800
REVOKES_MAX = 50000
REVOKE_EXPIRES = 10800


class LimitedSet:
    """A set of at most ``maxlen`` items, each forgotten ``expires`` seconds after it was added.

    Each item keeps the ``time.monotonic()`` stamp of its addition (Celery's ``LimitedSet``):
    the oldest go first when the set is full.
    """

    def __init__(self, maxlen: int = 0, expires: float = 0, data: Iterable | None = None) -> None:
        self.maxlen = maxlen
        self.expires = expires
        self._data: OrderedDict[Any, float] = OrderedDict()
        self._lock = threading.Lock()
        self.update(data or ())

    def add(self, item: Any, now: float | None = None) -> None:
        with self._lock:
            self._data.pop(item, None)
            self._data[item] = time.monotonic() if now is None else now
            self._purge()

    def update(self, other: Any) -> None:
        """Add the items of an iterable, or of a mapping item -> stamp (another set's ``as_dict()``).

        Stamps from a mapping are never later than now: another host's monotonic clock means
        nothing here, and a stamp in the future would never expire.
        """
        now = time.monotonic()
        if isinstance(other, LimitedSet):
            other = other.as_dict()
        if isinstance(other, dict):
            for item, stamp in other.items():
                self.add(item, min(float(stamp), now) if isinstance(stamp, (int, float)) else now)
            return
        for item in other:
            self.add(item, now)

    def discard(self, item: Any) -> None:
        with self._lock:
            self._data.pop(item, None)

    pop_value = discard

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def purge(self) -> None:
        with self._lock:
            self._purge()

    def _purge(self) -> None:
        if self.expires:
            oldest = time.monotonic() - self.expires
            while self._data and next(iter(self._data.values())) < oldest:
                self._data.popitem(last=False)
        while self.maxlen and len(self._data) > self.maxlen:
            self._data.popitem(last=False)

    def as_dict(self) -> dict[Any, float]:
        with self._lock:
            return dict(self._data)

    def __contains__(self, item: Any) -> bool:
        return item in self._data

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"<LimitedSet({len(self)}): maxlen={self.maxlen}, expires={self.expires}>"


#: Requests running in this process now, by task id.
requests: dict[str, Any] = {}
#: The same requests: Celery's name for them (a set there; the values of ``requests`` here).
active_requests: dict[str, Any] = requests
#: Tasks taken but not started: always empty, an RQ worker takes one task when it can start it.
reserved_requests: dict[str, Any] = {}
successful_requests = LimitedSet(maxlen=SUCCESSFUL_MAX, expires=SUCCESSFUL_EXPIRES)
revoked = LimitedSet(maxlen=REVOKES_MAX, expires=REVOKE_EXPIRES)
#: Stamped-header revokes (``revoke_by_stamped_headers``): header name -> values.
revoked_stamps: dict[str, Any] = {}
#: Time limits set by the ``time_limit`` command: task name -> (hard, soft); they win over the message's.
time_limits: dict[str, tuple[float | None, float | None]] = {}
#: Tasks run in this process, by task name, and in all.
total_count: Counter = Counter()
all_total_count = [0]


def task_accepted(request: Any) -> None:
    """A task starts running here."""
    requests[request.id] = request
    total_count[request.task] += 1
    all_total_count[0] += 1


def task_ready(request: Any, successful: bool = False) -> None:
    """A task ended here (whatever its outcome); ``successful`` when it succeeded."""
    if successful:
        successful_requests.add(request.id)
    requests.pop(request.id, None)

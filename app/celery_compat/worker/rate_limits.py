"""Task rate limits, enforced per worker node and task name, as Celery's consumer does.

Celery gives each task name with a ``rate_limit`` a token bucket of capacity 1 in each worker:
its tasks start evenly spaced, one interval apart, and a task over the rate is held (still
``PENDING``, no retry counted) while other tasks run. A node here may be several processes (the
prefork work processes, the test worker's threads), so its bucket lives in Redis: one "next free
slot" per node and task name (:data:`~..scripts.RATE_SLOT`). A task whose slot is near waits for
it in its worker; one whose slot is further off goes back to RQ's scheduled registry until then,
as a ``countdown`` does, so it holds no work process and survives the worker's death. Its slot is
remembered in the node's held hash, so that it is not charged a second time when it comes back.

Nothing here runs for a task without a rate limit: :meth:`RateLimits.interval` is dictionary
lookups only.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache
from typing import Any

from rq.job import Job

from .. import keys, scripts
from .._state import find_registered
from ..protocol import Envelope

logger = logging.getLogger("app.celery_compat.worker")

#: A task whose slot is at most this far off waits in its worker; a later one is put back until then.
WAIT_IN_WORKER = 1.0
#: How long the node remembers a held task's slot after that slot (a task coming back later than
#: this, e.g. after a long outage of every scheduler, is charged again).
HELD_MEMORY = 300

#: The slowest rate accepted (tasks per second): one a year.
MIN_RATE = 1 / (365 * 86400)
#: Celery's rate units (``celery.utils.time.RATE_MODIFIER_MAP``): tasks per second from tasks per unit.
_PER_SECOND = {"s": 1.0, "m": 1 / 60.0, "h": 1 / 3600.0}


def rate(limit: Any) -> float:
    """Tasks per second of a ``rate_limit`` as Celery writes it: ``"10/s"``, ``"100/m"``, ``"2/h"``, a number.

    0 for none (``None``, ``0``, ``""``). Raises ValueError for anything else, as Celery's ``rate``,
    and for a rate under one task a year.
    """
    if not limit:
        return 0.0
    if not isinstance(limit, str):
        return _at_least_yearly(float(limit), limit)
    ops, _, unit = limit.partition("/")
    if (unit or "s") not in _PER_SECOND:
        raise ValueError(f"invalid rate limit unit {unit!r} in {limit!r} (s, m or h)")
    return _at_least_yearly(float(ops) * _PER_SECOND[unit or "s"], limit)


def _at_least_yearly(per_second: float, limit: Any) -> float:
    # A slower rate's interval overflows the bucket's expiry (Redis refuses the PX, the worker stops).
    if 0 < per_second < MIN_RATE:
        raise ValueError(f"rate limit {limit!r} is under one task a year")
    return per_second


@lru_cache(maxsize=256)
def _interval(limit: Any) -> float:
    try:
        per_second = rate(limit)
    except ValueError as exc:
        logger.error("Ignoring the invalid rate limit %r: %s", limit, exc)  # once: cached
        return 0.0
    return 1.0 / per_second if per_second > 0 else 0.0


class RateLimits:
    """One worker's view of its node's buckets: which tasks are limited, and when each may start."""

    def __init__(self, app: Any, connection: Any, node: str) -> None:
        self.node = node
        self._tasks = app.tasks
        # Read once, as Celery's worker does at its start (the default is a task's when it has none).
        self._disabled = bool(app.conf.get("worker_disable_rate_limits"))
        self._default = app.conf.get("task_default_rate_limit")
        self._connection = connection
        self._slot = connection.register_script(scripts.RATE_SLOT)

    def interval(self, job: Job) -> float:
        """Seconds between starts of this job's task on this node; 0 when it is not limited.

        Read at each task: the ``rate_limit`` control command changes the task's attribute.
        """
        if self._disabled or getattr(job, "revoked", False):  # a revoked task is discarded at once, holding no slot
            return 0.0
        name = Envelope.name_of(job)
        task = self._tasks.get(name) or find_registered(name)
        if task is None:
            return 0.0
        limit = task.rate_limit
        if limit is None:
            limit = self._default
        return _interval(limit) if limit else 0.0

    def slot(self, job: Job, interval: float) -> float:
        """The time (epoch seconds) the job may start: its own slot if it was held, else a new one."""
        name = Envelope.name_of(job)
        found = self._slot(keys=[keys.rate_bucket(self.node, name), keys.rate_held(self.node, name)],
                           args=[job.id, f"{time.time():.6f}", f"{interval:.6f}"])
        return float(found)

    def remember(self, pipe: Any, job: Job, slot: float) -> None:
        """Queue on ``pipe``: the job is held until ``slot``, already charged on this node."""
        held = keys.rate_held(self.node, Envelope.name_of(job))
        pipe.hset(held, job.id, f"{slot:.6f}")
        pipe.expire(held, max(1, int(slot - time.time())) + HELD_MEMORY)


def reset(connection: Any, node: str, task_name: str, list_names: list[str]) -> int:
    """A task's rate changed on ``node``: start a fresh bucket, and bring its held tasks back now.

    As Celery's ``reset_rate_limits``: what waits is charged again at the new rate. Held tasks are
    moved to the front of the scheduled registry (the scheduler enqueues them within its interval),
    not enqueued here, so the scheduler never races us to enqueue one twice. ``list_names``: every
    list the node pops (its queues' priority lists too: a task is held in its own list's registry).
    Returns how many.
    """
    held = keys.rate_held(node, task_name)
    job_ids = [job_id.decode() for job_id in connection.hkeys(held)]
    now = int(time.time())
    with connection.pipeline() as pipe:  # one transaction: a held task is either moved or still remembered
        pipe.delete(keys.rate_bucket(node, task_name), held)
        for name in list_names if job_ids else ():
            pipe.zadd(keys.scheduled(name), dict.fromkeys(job_ids, now), xx=True)
        pipe.execute()
    return len(job_ids)


__all__ = ["RateLimits", "rate", "reset", "WAIT_IN_WORKER"]

"""Tasks for the delivery-guarantee tests (fencing, frozen and killed workers, the chaos test).

Each run of a task leaves its mark in Redis, so a test can count side effects per task id:
``chaos:runs`` (runs begun) and ``chaos:done`` (runs that reached their end). "Run twice"
means done > 1; a run begun but never done was interrupted (its process died, or it lost its
claim), which at-least-once delivery allows for a task safe to repeat.

The heartbeat is short (0.5 s, abandoned after 2 s) so that a test sees recovery in seconds;
``CHAOS_BEAT_INTERVAL``/``CHAOS_BEAT_TTL`` change it (bench/chaos.py).
"""

from __future__ import annotations

import functools
import os
import time

import redis

from app.celery_compat import Celery

app = Celery("tests.chaos_tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.worker_heartbeat_interval = float(os.environ.get("CHAOS_BEAT_INTERVAL") or 0.5)
app.conf.worker_heartbeat_ttl = float(os.environ.get("CHAOS_BEAT_TTL") or 2.0)
app.conf.worker_lost_max_redeliveries = 10  # the chaos test kills often; a task may be hit several times

RUNS = "chaos:runs"
DONE = "chaos:done"


@functools.lru_cache(maxsize=1)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _count(key: str, task_id: str) -> None:
    _redis(app.broker_url).hincrby(key, task_id, 1)


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def counted(self, seconds: float = 0.0, steps: int = 1) -> str:
    """Safe to repeat: runs again if its worker dies. Reports PROGRESS ``steps`` times over ``seconds``."""
    _count(RUNS, self.request.id)
    for step in range(steps):
        self.update_state(state="PROGRESS", meta={"step": step})
        time.sleep(seconds / steps)
    _count(DONE, self.request.id)
    return self.request.id


@app.task(bind=True)
def counted_once(self, seconds: float = 0.0) -> str:
    """Not safe to repeat: fails with WorkerLostError if its worker dies."""
    _count(RUNS, self.request.id)
    time.sleep(seconds)
    _count(DONE, self.request.id)
    return self.request.id


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def busy(self, seconds: float) -> int:
    """Pure-Python CPU work for ``seconds`` (the GIL held but for the interpreter's switches)."""
    _count(RUNS, self.request.id)
    deadline, loops = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        loops += sum(range(1000)) and 1
    _count(DONE, self.request.id)
    return loops


@app.task
def fails() -> None:
    """Always fails: its errbacks and its chain's failure follow."""
    raise ValueError("fails on purpose")

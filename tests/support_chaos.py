"""Helpers for the delivery-guarantee tests: claims, side-effect counters, every published state."""

from __future__ import annotations

import json
import threading
import time

import redis

from app.celery_compat import keys, states
from app.celery_compat.backends.redis import Claim
from tests import chaos_tasks


def claim_on(connection: redis.Redis, task_id: str, execution: str = "e1", queue: str = "celery") -> Claim:
    """A claim as a worker's claim script makes it: an entry in the queue's started registry."""
    registry, entry = keys.started(queue), f"{task_id}:{execution}"
    connection.zadd(registry, {entry: time.time() + 60})
    return Claim(registry, entry, keys.job(task_id), execution)


def runs(connection: redis.Redis, task_id: str) -> int:
    """How many runs of the task began (tests/chaos_tasks.py counts them)."""
    return int(connection.hget(chaos_tasks.RUNS, task_id) or 0)


class StateLog:
    """Every state published for any task from now on, in order (each write is also published)."""

    def __init__(self, connection: redis.Redis) -> None:
        self._pubsub = connection.pubsub(ignore_subscribe_messages=True)
        self._pubsub.psubscribe(f"{keys.META_PREFIX}*")
        self._pubsub.get_message(timeout=1.0)  # the subscription is confirmed before anything runs
        self.seen: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="state-log", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message and message["type"] == "pmessage":
                document = json.loads(message["data"])
                self.seen.setdefault(document["task_id"], []).append(document["status"])

    def after_final(self, task_id: str) -> list[str]:
        """States published after the task's first final state (there must be none)."""
        sequence = self.seen.get(task_id, [])
        for index, status in enumerate(sequence):
            if status in states.READY_STATES:
                return sequence[index + 1:]
        return []

    def overwritten(self) -> dict[str, list[str]]:
        """Tasks with any state published after their first final one, and their whole sequence."""
        return {task_id: sequence for task_id, sequence in self.seen.items() if self.after_final(task_id)}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

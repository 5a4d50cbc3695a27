"""Helpers for the delivery-guarantee tests: claims, side-effect counters, every published state."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from typing import Any

import redis

from app.celery_compat import keys, states
from tests import chaos_tasks


def claim_on(connection: redis.Redis, task_id: str, execution: str = "e1", queue: str = "celery") -> Any:
    """A claim as a worker's claim script makes it: an entry in the queue's started registry."""
    from app.celery_compat.backends.redis import Claim  # here: bench/chaos.py also runs against older code

    registry, entry = keys.started(queue), f"{task_id}:{execution}"
    connection.zadd(registry, {entry: time.time() + 60})
    connection.hset(keys.job(task_id), "status", "started")  # the job a claim is on
    return Claim(registry, entry, keys.job(task_id), execution)


def lost_claim(task_id: str, execution: str = "stale", queue: str = "celery") -> Any:
    """A claim whose entry is no longer in the queue's started registry (the recovery rule took it)."""
    from app.celery_compat.backends.redis import Claim

    return Claim(keys.started(queue), f"{task_id}:{execution}", keys.job(task_id), execution)


def runs(connection: redis.Redis, task_id: str) -> int:
    """How many runs of the task began (tests/chaos_tasks.py counts them)."""
    return int(connection.hget(chaos_tasks.RUNS, task_id) or 0)


class StateLog:
    """Every state published for any task from now on, in order (each write is also published)."""

    def __init__(self, connection: redis.Redis) -> None:
        self._connection = connection
        self._pubsub = self._subscribe()
        self.seen: dict[str, list[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="state-log", daemon=True)
        self._thread.start()

    def _subscribe(self) -> redis.client.PubSub:
        pubsub = self._connection.pubsub(ignore_subscribe_messages=True)
        pubsub.psubscribe(f"{keys.META_PREFIX}*")
        pubsub.get_message(timeout=1.0)  # the subscription is confirmed before anything runs
        return pubsub

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.2)
            except (redis.exceptions.RedisError, OSError, TypeError):
                # Redis restarting (bench/chaos.py); redis-py's hiredis parser may meet a closed
                # socket as a TypeError. Subscribe anew once Redis answers.
                time.sleep(0.2)
                with contextlib.suppress(redis.exceptions.RedisError, OSError, TypeError):
                    self._pubsub.close()
                    self._pubsub = self._subscribe()
                continue
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
        with contextlib.suppress(redis.exceptions.RedisError):
            self._pubsub.close()


def gone(pid: int) -> bool:
    """Ended, or a zombie nobody reaped yet (a container's PID 1 may reap late)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def children_of(pid: int) -> list[int]:
    """The live child processes of ``pid`` (a worker's supervisor: its work processes), from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            children.append(int(entry))
    return children


def redelivered(connection: redis.Redis, task_id: str) -> int:
    """How often the recovery rule re-queued the task after its worker died (its job's count)."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from app.celery_compat.protocol import Envelope

    job = Job.fetch(task_id, connection=connection, serializer=JSONSerializer)
    return int(Envelope.options_of(job).get("redelivered") or 0)


def final_or_none(app, task_ids: list[str]) -> dict[str, str | None]:
    """Each task's status when final, else None (still PENDING, queued or running)."""
    metas = app.backend.get_many_meta(task_ids)
    return {task_id: (meta["status"] if meta["status"] in states.READY_STATES else None)
            for task_id, meta in zip(task_ids, metas, strict=True)}

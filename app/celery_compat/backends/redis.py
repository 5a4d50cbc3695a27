"""The result store: one JSON document per task id in Redis, as Celery's Redis backend keeps it.

The key is ``celery-task-meta-<id>`` and holds ``status``, ``result``, ``traceback``,
``date_done`` and ``task_id``. A task with no document is ``PENDING``, which is what Celery
reports for queued, unknown and forgotten tasks alike. Every stored state is also published
on the key's channel, so that ``AsyncResult.get()`` and the event stream block instead of polling.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis

from .. import keys, scripts, states
from ..serialization import exception_to_wire, to_wire, utf8
from .consumer import ResultConsumer

if TYPE_CHECKING:
    from redis import Redis

META_PREFIX = keys.META_PREFIX
meta_key = keys.meta


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a running task: its started-registry entry, as the claim scripts wrote it."""

    registry: str  # the started registry's key
    entry: str  # ``<job id>:<execution id>``
    job_key: str
    execution_id: str


#: Claims held in this process, by task id: while one is held, every state written for that
#: task is fenced with it (``scripts.FENCED_STORE``). Only the worker sets them (hold_claim).
_claims: dict[str, Claim] = {}


def hold_claim(task_id: str, claim: Claim) -> None:
    """From now on, the task's states are written only while ``claim`` still holds."""
    _claims[task_id] = claim


def release_claim(task_id: str) -> None:
    _claims.pop(task_id, None)


def pending_meta(task_id: str) -> dict:
    return {"status": states.PENDING, "result": None, "traceback": None, "date_done": None, "task_id": task_id}


class RedisBackend:
    """Reads and writes task state for one app; ``connection`` overrides the app's client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumer = ResultConsumer(lambda: self.app.connection)

    @property
    def expires(self) -> int:
        expires = self.app.conf.result_expires
        if hasattr(expires, "total_seconds"):
            expires = expires.total_seconds()
        return int(expires) if expires else 0

    def encode_meta(self, task_id: str, state: str, result: Any, traceback: str | None, extra: dict | None) -> str:
        if isinstance(result, BaseException):
            result = exception_to_wire(result)
        else:
            result = to_wire(result)
        meta = {
            "status": state,
            "result": result,
            "traceback": traceback,
            "date_done": datetime.now(timezone.utc).isoformat() if state in states.READY_STATES else None,
            "task_id": task_id,
        }
        if extra:
            meta.update(extra)
        return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)

    def store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: str | None = None,
        extra: dict | None = None,
        connection: Redis | None = None,
        pipeline: Any = None,
    ) -> None:
        """Write a task's state and publish it for waiting clients.

        Raises :class:`EncodeError` before writing anything when the document cannot be encoded
        (a lone surrogate in a result, say): the caller stores that error as the task's failure.
        """
        document = utf8(self.encode_meta(task_id, state, result, traceback, extra))
        key = meta_key(task_id)
        pipe = pipeline if pipeline is not None else (connection or self.app.connection).pipeline(transaction=False)
        claim = _claims.get(task_id)
        if claim is not None:
            # A worker running the task: write (and publish) only while its claim holds, so a
            # worker that lost the task to the recovery rule can never write over its new run.
            # EVAL, not EVALSHA: it may sit in a MULTI, where a Redis that forgot the script
            # would fail this write alone.
            final = "1" if state in states.READY_STATES else "0"
            pipe.eval(scripts.FENCED_STORE, 3, key, claim.registry, claim.job_key,
                      claim.entry, document, self.expires, final, claim.execution_id)
        else:
            if self.expires:
                pipe.set(key, document, ex=self.expires)
            else:
                pipe.set(key, document)
            # Every state is published, progress included, so that waiting clients (AsyncResult.get,
            # the API's event stream) block on the channel instead of polling the key.
            pipe.publish(key, document)
        if pipeline is None:
            self._execute(pipe)

    def retrying(self, action: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``action``, riding out an outage as ``_execute`` does (with ``result_backend_always_retry``)."""
        conf = self.app.conf
        attempts = int(conf.result_backend_max_retries) if conf.result_backend_always_retry else 0
        wait = 0.1
        for attempt in range(attempts + 1):
            try:
                return action(*args, **kwargs)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                if attempt == attempts:
                    raise
                time.sleep(wait)
                wait = min(wait * 2, float(conf.result_backend_max_sleep_between_retries_ms) / 1000)
        return None

    def _execute(self, pipe: Any) -> None:
        """Run ``pipe``; with ``result_backend_always_retry`` (the worker sets it), ride out an outage.

        A worker that cannot store a result has nothing better to do than wait for Redis: giving
        up would lose the outcome of work already done.
        """
        commands = list(pipe.command_stack)

        def run() -> None:
            pipe.command_stack = list(commands)  # execute() empties it, also when it fails
            pipe.execute()

        self.retrying(run)

    def get_task_meta(self, task_id: str, connection: Redis | None = None) -> dict:
        """The stored document, or a PENDING one when nothing is stored."""
        raw = (connection or self.app.connection).get(meta_key(task_id))
        return json.loads(raw) if raw else pending_meta(task_id)

    def get_many_meta(self, task_ids: list[str], connection: Redis | None = None) -> list[dict]:
        """Documents of several tasks in one round trip, in the order of ``task_ids``."""
        connection = connection or self.app.connection
        raws = connection.mget([meta_key(task_id) for task_id in task_ids]) if task_ids else []
        return [json.loads(raw) if raw else pending_meta(tid) for tid, raw in zip(task_ids, raws, strict=False)]

    def forget(self, task_id: str) -> None:
        self.app.connection.delete(meta_key(task_id))

    def mark_revoked(self, task_id: str, connection: Redis | None = None) -> None:
        """Remember a revoke so a worker that picks the task up later discards it."""
        ttl = self.expires or 86400
        (connection or self.app.connection).set(keys.revoked(task_id), 1, ex=ttl)

    def is_revoked(self, task_id: str, connection: Redis | None = None) -> bool:
        return bool((connection or self.app.connection).exists(*keys.revoked_any(task_id)))

    def wait_for(self, task_id: str, timeout: float | None = None, interval: float = 0.5) -> dict:
        """Block until the task is ready and return its document: one GET when it already is.

        Otherwise wait on the process's shared pub/sub connection (see ``consumer``): no new
        connection per call. ``interval`` is accepted for Celery's signature; nothing polls.
        """
        return self.consumer.wait(meta_key(task_id), lambda: self.get_task_meta(task_id), timeout)

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

from .. import finished, keys, scripts, states
from ..serialization import exception_to_wire, to_wire, utf8
from .base import BaseKeyValueStoreBackend
from .consumer import ResultConsumer

if TYPE_CHECKING:
    from redis import Redis

META_PREFIX = keys.META_PREFIX
meta_key = keys.meta


#: Count one header leaf of a chord: KEYS = member set, claim, added leaves, size; ARGV = leaf id, size, ttl.
#: The size grows by the leaves ``add_to_chord`` added; a size of -1 is read from the size key (a
#: generator header's, set before its last task is sent; until then the header is never complete).
#: Returns 1 to the one leaf that completes the set. Idempotent, so a call retried after a lost
#: reply neither counts twice nor loses the claim: the claim names the leaf that took it.
CHORD_PART = """
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[3])
if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
local size = tonumber(ARGV[2])
if size < 0 then size = tonumber(redis.call('GET', KEYS[4]) or '') end
if not size then return 0 end
if redis.call('SCARD', KEYS[1]) < size + redis.call('LLEN', KEYS[3]) then return 0 end
if ttl > 0 then
  redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', ttl)
else
  redis.call('SET', KEYS[2], ARGV[1], 'NX')
end
if redis.call('GET', KEYS[2]) == ARGV[1] then return 1 end
return 0
"""


@dataclass(frozen=True)
class Claim:
    """A worker's hold on a running task: its started-registry entry, as the claim scripts wrote it."""

    registry: str  # the started registry's key
    entry: str  # ``<job id>:<execution id>``
    job_key: str
    execution_id: str
    #: The worker writes the SUCCESS document itself, in the script that ends the run
    #: (``scripts.FINISH_SUCCESS``, fenced the same way): one script call per task, not two.
    success_in_finish: bool = False

    @property
    def info_key(self) -> str:
        """The task's index hash: its ``ended`` tells a job expired after a success from a job Redis lost."""
        return keys.task_info(self.entry.rsplit(":", 1)[0])


#: Claims held in this process, by task id: while one is held, every state written for that
#: task is fenced with it (``scripts.FENCED_STORE``). Only the worker sets them (hold_claim).
_claims: dict[str, Claim] = {}
#: The SUCCESS document (and its TTL) of a claim with ``success_in_finish``, until the claim is released.
_successes: dict[str, tuple[str, int]] = {}


def hold_claim(task_id: str, claim: Claim) -> None:
    """From now on, the task's states are written only while ``claim`` still holds."""
    _claims[task_id] = claim


def release_claim(task_id: str) -> None:
    _claims.pop(task_id, None)
    _successes.pop(task_id, None)


def held_success(task_id: str) -> tuple[str, int] | None:
    """The SUCCESS document and TTL the task's trace left for its worker's finish script, if any."""
    return _successes.get(task_id)


def pending_meta(task_id: str) -> dict:
    return {"status": states.PENDING, "result": None, "traceback": None, "date_done": None, "task_id": task_id}


def _seconds(value: Any) -> int:
    if hasattr(value, "total_seconds"):
        value = value.total_seconds()
    return int(value) if value else 0


class RedisBackend(BaseKeyValueStoreBackend):
    """Reads and writes task state for one app; ``connection`` overrides the app's client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumer = ResultConsumer(lambda: self.app.connection)
        # Celery's per-backend cache of ready results, which code may clear; here each AsyncResult
        # caches its own ready document instead, so this stays empty.
        self._cache: dict[str, dict] = {}

    @property
    def result_consumer(self) -> ResultConsumer:
        """Celery's name for the shared pub/sub waiting (``consume_from``, ``cancel_for``...)."""
        return self.consumer

    def on_task_call(self, task_id: str) -> None:
        """A task whose result will be stored was sent: subscribe its channel now, as Celery does."""
        self.consumer.consume_from(task_id)

    @property
    def client(self) -> Redis:
        """The Redis client results are read and written with (Celery's name)."""
        return self.app.connection

    @property
    def expires(self) -> int:
        return _seconds(self.app.conf.result_expires)

    def expires_for(self, state: str) -> int:
        """Seconds a result in ``state`` is kept: ``result_failure_expires`` for a failure, when set."""
        if state == states.FAILURE and self.app.conf.get("result_failure_expires"):
            return _seconds(self.app.conf.result_failure_expires)
        return self.expires

    def get_key_for_task(self, task_id: str, key: str = "") -> bytes:
        """The Redis key of a task's result document, as bytes as Celery's."""
        return (meta_key(task_id) + key).encode()

    def encode_meta(self, task_id: str, state: str, result: Any, traceback: str | None, extra: dict | None) -> str:
        if isinstance(result, BaseException):
            result = exception_to_wire(result)
        elif callable(getattr(result, "as_tuple", None)) and callable(getattr(result, "ready", None)):
            # A task returning a result (an AsyncResult, a GroupResult) stores its tuple, as Celery does
            # (``ready`` tells a result from a Decimal, which has an ``as_tuple`` too).
            result = to_wire(result.as_tuple())
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
        expires = self.expires_for(state)
        claim = _claims.get(task_id)
        if claim is not None and claim.success_in_finish and state == states.SUCCESS and pipeline is not None:
            # The trace's own store, written with the run's end (see held_success); in the pipeline
            # it would have gone out in the same round trip, so nothing is written later than before.
            _successes[task_id] = (document, expires)
        elif claim is not None:
            # A worker running the task: write (and publish) only while its claim holds, so a
            # worker that lost the task to the recovery rule can never write over its new run.
            # EVAL, not EVALSHA: it may sit in a MULTI, where a Redis that forgot the script
            # would fail this write alone.
            final = "1" if state in states.READY_STATES else "0"
            pipe.eval(scripts.FENCED_STORE, 4, key, claim.registry, claim.job_key, claim.info_key,
                      claim.entry, document, expires, final, claim.execution_id)
        else:
            if expires:
                pipe.set(key, document, ex=expires)
            else:
                pipe.set(key, document)
            # Every state is published, progress included, so that waiting clients (AsyncResult.get,
            # the API's event stream) block on the channel instead of polling the key.
            pipe.publish(key, document)
        if pipeline is None:
            self._execute(pipe)

    def claim_holds(self, task_id: str, connection: Redis | None = None) -> bool:
        """False once the claim this process holds on the task was taken by the recovery rule.

        What a run sends after its task (callbacks, the chain's next step, errbacks) is not a
        state write, so FENCED_STORE cannot refuse it: a stale run (frozen past its heartbeat,
        then resumed before its next beat noticed) asks here first, or the callback of a task
        that was handed to another worker would run twice. Same rule as FENCED_STORE: a claim
        whose job is gone altogether (Redis lost its data) still holds, unless the task's index
        says it ended (another run succeeded, its job hash expired since). True with no claim held.
        """
        claim = _claims.get(task_id)
        if claim is None:
            return True
        conn = connection or self.app.connection

        def read() -> list:
            pipe = conn.pipeline(transaction=False)
            pipe.zscore(claim.registry, claim.entry)
            pipe.exists(claim.job_key)
            pipe.hexists(claim.info_key, finished.ENDED)
            return pipe.execute()

        score, job_exists, ended = self.retrying(read)
        return score is not None or not (job_exists or ended)

    def note_retry(self, task_id: str, retries: int, reason: str, connection: Redis | None = None) -> None:
        """Append one retry (its number, when, why) to the task's retry log, kept as long as its result."""
        key = keys.task_retries(task_id)
        # ASCII escapes: a reason holding a lone surrogate must not make the retry itself fail.
        entry = json.dumps({"at": time.time(), "retries": retries, "reason": reason[:500]})
        pipe = (connection or self.app.connection).pipeline(transaction=False)
        pipe.rpush(key, entry)
        pipe.ltrim(key, -100, -1)  # a task retried for ever keeps its last hundred reasons
        pipe.expire(key, self.expires or 86400)
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

    def get_state(self, task_id: str) -> str:
        return self.get_task_meta(task_id)["status"]

    get_status = get_state

    def get_many_meta(self, task_ids: list[str], connection: Redis | None = None) -> list[dict]:
        """Documents of several tasks in one round trip, in the order of ``task_ids``."""
        connection = connection or self.app.connection
        raws = connection.mget([meta_key(task_id) for task_id in task_ids]) if task_ids else []
        return [json.loads(raw) if raw else pending_meta(tid) for tid, raw in zip(task_ids, raws, strict=False)]

    def ensure_chords_allowed(self) -> None:
        """Chords are supported: their state lives in Redis beside the results (Celery's check)."""

    def chord_part(self, group_id: str, member_id: str, size: int | None, connection: Redis | None = None) -> bool:
        """Count a finished header leaf of chord ``group_id``; True for the one leaf that completes it.

        The state expires with the results (a day when results never expire).
        """
        connection = connection or self.app.connection
        ttl = self.expires or 86400
        keys_ = [keys.chord_counter(group_id), keys.chord_claim(group_id), keys.chord_added(group_id),
                 keys.chord_size(group_id)]
        size = -1 if size is None else int(size)
        return bool(connection.eval(CHORD_PART, len(keys_), *keys_, member_id, size, ttl))

    def set_chord_size(self, group_id: str, size: int, connection: Redis | None = None) -> None:
        """The size of a chord whose header was a generator, known once it is consumed."""
        (connection or self.app.connection).set(keys.chord_size(group_id), int(size), ex=self.expires or 86400)

    def add_to_chord(self, group_id: str, result: Any, connection: Redis | None = None) -> None:
        """One more header leaf for chord ``group_id`` (``Task.add_to_chord``): its result comes last."""
        key = keys.chord_added(group_id)
        with (connection or self.app.connection).pipeline() as pipe:
            pipe.rpush(key, result.id)
            pipe.expire(key, self.expires or 86400)
            pipe.execute()

    def chord_added(self, group_id: str, connection: Redis | None = None) -> list[str]:
        """The ids of the leaves added to chord ``group_id`` after it was sent, in order."""
        raw = (connection or self.app.connection).lrange(keys.chord_added(group_id), 0, -1)
        return [item.decode() if isinstance(item, bytes) else item for item in raw]

    def forget(self, task_id: str) -> None:
        self.consumer.cancel_for(task_id)
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
        meta = self.consumer.wait(meta_key(task_id), lambda: self.get_task_meta(task_id), timeout)
        self.consumer.cancel_for(task_id)  # the outcome is here: its send-time subscription goes
        return meta

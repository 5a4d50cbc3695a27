"""Task results: ``AsyncResult`` (read from Redis), ``EagerResult`` (run in-process), ``GroupResult``."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from . import keys, states
from ._state import current_app, current_task_request
from .exceptions import TaskRevokedError
from .serialization import exception_from_wire, from_wire, is_exception_wire


def _decode_result(meta: dict) -> Any:
    result = meta.get("result")
    if meta["status"] in states.EXCEPTION_STATES and is_exception_wire(result):
        return exception_from_wire(result)
    return from_wire(result)


def _assert_not_in_task() -> None:
    request = current_task_request()
    if request is not None and not request.is_eager and not request.called_directly:
        raise RuntimeError(
            "Never call result.get() within a task!\n"
            "See https://docs.celeryq.dev/en/latest/userguide/tasks.html#avoid-launching-synchronous-subtasks"
        )


class AsyncResult:
    """The state and outcome of a task, read from Redis; an unknown id is simply ``PENDING``."""

    #: Set by ``send_task``: the task's channel was subscribed when it was sent (see backends/consumer.py).
    _subscribed = False

    def __init__(self, id: str, backend: Any = None, task_name: str | None = None, app: Any = None,
                 parent: AsyncResult | None = None) -> None:
        if id is None:
            raise ValueError(f"AsyncResult requires valid id, not {type(id)}")
        self.app = app or current_app()
        self.id = str(id)
        self.task_id = self.id
        self.backend = backend or self.app.backend
        self.task_name = task_name
        self.parent = parent
        self.ignored = False  # set for a task sent with ignore_result: nothing will ever be stored
        self._cache: dict | None = None

    def __del__(self) -> None:
        consumer = getattr(self.__dict__.get("backend"), "consumer", None) if self._subscribed else None
        if consumer is not None:
            # A finalizer takes no lock: the consumer releases the channel at its next call.
            consumer.release_later(self.id)

    # -- reading -----------------------------------------------------------------------------
    def _get_task_meta(self) -> dict:
        if self._cache is not None:
            return self._cache
        meta = self.backend.get_task_meta(self.id)
        if meta["status"] in states.READY_STATES:
            self._cache = meta  # a ready result never changes again
        return meta

    @property
    def state(self) -> str:
        """The current state: PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED or a custom one."""
        return self._get_task_meta()["status"]

    status = state

    @property
    def result(self) -> Any:
        """The return value, the exception on failure, or the meta dict of a custom state."""
        return _decode_result(self._get_task_meta())

    info = result

    @property
    def traceback(self) -> str | None:
        return self._get_task_meta().get("traceback")

    @property
    def date_done(self) -> datetime | None:
        value = self._get_task_meta().get("date_done")
        return datetime.fromisoformat(value) if value else None

    @property
    def name(self) -> str | None:
        """The task's name, stored only with ``result_extended`` (as in Celery)."""
        return self._get_task_meta().get("name")

    @property
    def args(self) -> Any:
        return self._get_task_meta().get("args")

    @property
    def kwargs(self) -> Any:
        return self._get_task_meta().get("kwargs")

    @property
    def retries(self) -> int | None:
        return self._get_task_meta().get("retries")

    @property
    def children(self) -> list:
        """What the task started that Celery records with its result (the errbacks of a failed chord)."""
        return [result_from_tuple(child, self.app) for child in self._get_task_meta().get("children") or ()]

    @property
    def queue(self) -> str | None:
        return self._get_task_meta().get("queue")

    def ready(self) -> bool:
        return self.state in states.READY_STATES

    def successful(self) -> bool:
        return self.state == states.SUCCESS

    def failed(self) -> bool:
        return self.state == states.FAILURE

    # -- waiting -----------------------------------------------------------------------------
    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            no_ack: bool = True, follow_parents: bool = True, disable_sync_subtasks: bool = True,
            **kwargs: Any) -> Any:
        """Wait for the task and return its value; re-raise its exception when ``propagate``."""
        if disable_sync_subtasks:
            _assert_not_in_task()
        if self.ignored:
            return None  # Celery returns at once: an ignored result never arrives
        if follow_parents and propagate and self.parent is not None:
            self.parent._raise_if_failed()
        meta = self._cache or self.backend.wait_for(self.id, timeout=timeout, interval=interval)
        self._cache = meta
        if follow_parents and propagate and self.parent is not None and meta["status"] in states.PROPAGATE_STATES:
            self.parent._raise_if_failed()  # a chain or chord re-raises the original failure first
        return self._outcome(meta, propagate)

    wait = get

    def _outcome(self, meta: dict, propagate: bool) -> Any:
        value = _decode_result(meta)
        if propagate and meta["status"] in states.PROPAGATE_STATES:
            if meta["status"] == states.REVOKED and not isinstance(value, TaskRevokedError):
                value = TaskRevokedError(str(value) if value else "revoked")
            raise value
        return value

    def _raise_if_failed(self) -> None:
        if self.parent is not None:
            self.parent._raise_if_failed()
        meta = self._get_task_meta()
        if meta["status"] in states.PROPAGATE_STATES:
            self._outcome(meta, propagate=True)

    def maybe_throw(self, propagate: bool = True, callback: Any = None) -> None:
        meta = self._get_task_meta()
        if meta["status"] in states.PROPAGATE_STATES:
            self._outcome(meta, propagate)

    # -- acting ------------------------------------------------------------------------------
    def forget(self) -> None:
        """Delete the stored state: the task reads PENDING again."""
        self._cache = None
        self.backend.forget(self.id)

    def revoke(self, connection: Any = None, terminate: bool = False, signal: Any = None,
               wait: bool = False, timeout: float | None = None) -> None:
        self._cache = None
        self.app.control.revoke(self.id, terminate=terminate, signal=signal, reply=wait, timeout=timeout)

    def revoke_by_stamped_headers(self, headers: dict, connection: Any = None, terminate: bool = False,
                                  signal: Any = None, wait: bool = False, timeout: float | None = None) -> None:
        """Tell the workers to discard every task stamped with these headers (Celery's, through control)."""
        self.app.control.revoke_by_stamped_headers(headers, terminate=terminate, signal=signal,
                                                   reply=wait, timeout=timeout)

    def as_tuple(self) -> tuple:
        return ((self.id, self.parent and self.parent.as_tuple()), None)

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.id}>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AsyncResult):
            return other.id == self.id
        if isinstance(other, str):
            return other == self.id
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> tuple:
        return self.__class__, (self.id,)


class EagerResult(AsyncResult):
    """The result of a task run in-process by ``apply()`` or ``task_always_eager``; never stored."""

    def __init__(self, id: str, ret_value: Any, state: str, traceback: str | None = None,
                 name: str | None = None, app: Any = None) -> None:
        self._value = ret_value
        self._state = state
        self._traceback = traceback
        self._name = name
        super().__init__(id, backend=_NO_BACKEND, task_name=name, app=app)

    def _get_task_meta(self) -> dict:
        return {"status": self._state, "result": self._value, "traceback": self._traceback, "task_id": self.id}

    @property
    def state(self) -> str:
        return self._state

    status = state

    @property
    def result(self) -> Any:
        return self._value

    info = result

    @property
    def traceback(self) -> str | None:
        return self._traceback

    def get(self, timeout: float | None = None, propagate: bool = True, **kwargs: Any) -> Any:
        if self.successful():
            return self._value
        if propagate and self._state in states.PROPAGATE_STATES:
            raise self._value
        return self._value

    wait = get

    def forget(self) -> None:
        pass

    def revoke(self, *args: Any, **kwargs: Any) -> None:
        self._state = states.REVOKED

    def __repr__(self) -> str:
        return f"<EagerResult: {self.id}>"


class _NoBackend:
    """Stands in for the backend of eager results, which Celery never stores."""

    def get_task_meta(self, task_id: str) -> dict:
        return {"status": states.PENDING, "result": None, "task_id": task_id}


_NO_BACKEND = _NoBackend()


# Keys per MGET when a set of results is read: one round trip each, replies of bounded size.
MGET_BATCH = 500


class ResultSet:
    """Several results read together; ``get()`` returns their values in order."""

    def __init__(self, results: list[AsyncResult], app: Any = None, **kwargs: Any) -> None:
        self.app = app or current_app()
        self.results = list(results)

    @property
    def backend(self) -> Any:
        return self.app.backend

    def add(self, result: AsyncResult) -> None:
        """Add ``result`` to the set, unless it is already a member."""
        if result not in self.results:
            self.results.append(result)

    def discard(self, result: AsyncResult) -> None:
        if result in self.results:
            self.results.remove(result)

    remove = discard

    def clear(self) -> None:
        self.results.clear()

    def _metas(self) -> list[dict]:
        stored = [r for r in self.results if not isinstance(r, EagerResult)]
        metas = dict(zip((r.id for r in stored), self.app.backend.get_many_meta([r.id for r in stored]), strict=False))
        return [r._get_task_meta() if isinstance(r, EagerResult) else metas[r.id] for r in self.results]

    def completed_count(self) -> int:
        return sum(meta["status"] == states.SUCCESS for meta in self._metas())

    def ready(self) -> bool:
        return all(meta["status"] in states.READY_STATES for meta in self._metas())

    def successful(self) -> bool:
        return all(meta["status"] == states.SUCCESS for meta in self._metas())

    def failed(self) -> bool:
        return any(meta["status"] == states.FAILURE for meta in self._metas())

    def waiting(self) -> bool:
        return not self.ready()

    def _raise_if_failed(self) -> None:
        # The earliest failure first, as Celery re-raises from the root of a canvas down.
        parent = getattr(self, "parent", None)
        if parent is not None:
            parent._raise_if_failed()
        for result, meta in zip(self.results, self._metas(), strict=True):
            if meta["status"] in states.PROPAGATE_STATES:
                result._outcome(meta, propagate=True)

    def revoke(self, terminate: bool = False, **kwargs: Any) -> None:
        for result in self.results:
            result.revoke(terminate=terminate)

    def forget(self) -> None:
        for result in self.results:
            result.forget()

    def get(self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5,
            callback: Any = None, **kwargs: Any) -> list:
        """Values in submission order; the first failure is raised unless ``propagate=False``.

        The ready results are read with one MGET per batch; only those still running are waited
        for one by one (and each of those is read again in its own wait).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._prefetch()
        values = []
        for result in self.results:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            # Each member's own outcome, not its parents' (Celery's native join on Redis): a member
            # that ends a failed chain is waited for until its failure is stored.
            value = result.get(timeout=remaining, propagate=propagate, interval=interval,
                               **{"follow_parents": False, **kwargs})
            if callback is not None:  # Celery's join(callback=): called per result as it arrives
                callback(result.id, value)
            # Celery returns no values with a callback; they are kept here, which the contrib Manager.join reads.
            values.append(value)
        return values

    def _prefetch(self) -> None:
        """Fill the cache of every ready stored result, MGET_BATCH keys per round trip."""
        pending = [r for r in self.results
                   if not isinstance(r, EagerResult) and isinstance(r, AsyncResult) and r._cache is None]
        for start in range(0, len(pending), MGET_BATCH):
            batch = pending[start:start + MGET_BATCH]
            for result, meta in zip(batch, self.app.backend.get_many_meta([r.id for r in batch]), strict=True):
                if meta["status"] in states.READY_STATES:
                    result._cache = meta

    join = get
    join_native = get

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self):
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult:
        return self.results[index]


class GroupResult(ResultSet):
    """The results of a group, under the group's own id (``save()``/``restore()`` keep it)."""

    def __init__(self, id: str | None = None, results: list[AsyncResult] | None = None,
                 parent: Any = None, **kwargs: Any) -> None:
        super().__init__(results or [], **kwargs)
        self.id = id
        self.parent = parent

    def save(self, backend: Any = None) -> GroupResult:
        """Store the members' ids; a nested group (the end of a chain in a chord header) as its own list."""
        key = keys.taskset(self.id)
        self.app.connection.set(key, json.dumps(_shape(self)), ex=self.app.backend.expires or None)
        return self

    @classmethod
    def restore(cls, id: str, backend: Any = None, app: Any = None) -> GroupResult | None:
        app = app or current_app()
        raw = app.connection.get(keys.taskset(id))
        if raw is None:
            return None
        return cls(id, [_from_shape(item, app) for item in json.loads(raw)], app=app)

    def as_tuple(self) -> tuple:
        return ((self.id, self.parent and self.parent.as_tuple()), [r.as_tuple() for r in self.results])

    @property
    def children(self) -> list[AsyncResult]:
        return self.results

    def delete(self, backend: Any = None) -> None:
        self.app.connection.delete(keys.taskset(self.id))

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(r.id for r in self.results)}]>"


def _shape(result: GroupResult) -> list:
    return [{"group": r.id, "results": _shape(r)} if isinstance(r, GroupResult) else r.id for r in result.results]


def _from_shape(item: Any, app: Any) -> AsyncResult | GroupResult:
    if isinstance(item, dict):
        return GroupResult(item["group"], [_from_shape(i, app) for i in item["results"]], app=app)
    return AsyncResult(item, app=app)


def result_from_tuple(r: Any, app: Any = None) -> AsyncResult | GroupResult:
    """The result ``as_tuple()`` described: a group's when it lists members (Celery's nodes)."""
    (task_id, parent), nodes = r
    parent_result = result_from_tuple(parent, app) if parent else None
    if nodes is not None:
        return GroupResult(task_id, [result_from_tuple(node, app) for node in nodes], parent=parent_result, app=app)
    return AsyncResult(task_id, app=app, parent=parent_result)

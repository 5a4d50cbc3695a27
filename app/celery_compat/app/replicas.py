"""Waiting for replicas after a send (Redis ``WAIT``), so that an acknowledged task survives a failover.

Redis replicates asynchronously: a task written to the master, acknowledged to the caller, is
lost if the master dies before its replica received it and Sentinel promotes that replica. With
``broker_transport_options={"wait_for_replicas": 1, "wait_timeout": 0.5}`` a send ends with
``WAIT 1 500`` and returns only once a replica has the task; if none confirms in time it raises
:class:`~app.celery_compat.exceptions.NotReplicatedError` (the task is queued, but not safe).

``WAIT`` counts the replicas that acknowledged *this connection's* last write, so it must run on
the connection that sent the task, and not inside its ``MULTI`` (where Redis never blocks): the
send's pipeline is built on a connection lent by the pool for the whole send (:func:`pipeline`),
and :func:`execute` runs the transaction, then ``WAIT``, then gives the connection back.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from ..exceptions import ImproperlyConfigured, NotReplicatedError

#: Seconds ``WAIT`` blocks for when ``wait_for_replicas`` is set without ``wait_timeout``.
DEFAULT_TIMEOUT = 0.5

# Set while a worker runs a task: what it sends then (callbacks, chain steps, errbacks, chord
# bodies, the task body's own sends) does not wait. A NotReplicatedError there would come after
# the send was queued, stop the follow-ups still to send, and fail a task Celery reports SUCCESS.
_in_worker: ContextVar[bool] = ContextVar("celery_compat_sending_from_worker", default=False)


@dataclass(frozen=True)
class ReplicaWait:
    """How many replicas must confirm a send (0: none, Redis' default), and for how long to wait."""

    replicas: int = 0
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def take(cls, options: dict) -> ReplicaWait:
        """Remove the two settings from ``options`` (the rest goes to the Redis client) and return them."""
        replicas = int(options.pop("wait_for_replicas", 0) or 0)
        timeout = float(options.pop("wait_timeout", DEFAULT_TIMEOUT) or DEFAULT_TIMEOUT)
        if replicas < 0 or timeout <= 0:
            raise ImproperlyConfigured("wait_for_replicas must be >= 0 and wait_timeout > 0")
        socket_timeout = options.get("socket_timeout")
        if replicas and socket_timeout and timeout >= float(socket_timeout):
            # Else a replica slow to confirm would look like a dead master (a socket timeout).
            raise ImproperlyConfigured(f"wait_timeout ({timeout:g} s) must be shorter than "
                                       f"socket_timeout ({socket_timeout} s)")
        return cls(replicas, timeout)


@contextmanager
def not_waited() -> Iterator[None]:
    """Sends made inside this block (a worker running a task, failing what follows it) skip ``WAIT``."""
    token = _in_worker.set(True)
    try:
        yield
    finally:
        _in_worker.reset(token)


def waited() -> bool:
    """Whether a send made here may wait for replicas (False inside :func:`not_waited`)."""
    return not _in_worker.get()


class _Lent:
    """A pool that lends one connection of ``pool`` to every caller until :meth:`give_back`.

    Borrowed at the first use (the pipeline's execute), so a send abandoned before it ran holds nothing.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.connection: Any = None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.connection is None:
            self.connection = self.pool.get_connection()
        return self.connection

    def release(self, connection: Any) -> None:
        pass  # kept for the WAIT after the transaction; give_back() returns it

    def give_back(self) -> None:
        if self.connection is not None:
            self.pool.release(self.connection)
            self.connection = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pool, name)


class OneCommand:
    """A send's pipeline when the send is one script call and waits for no replica: ``execute()``
    runs it as ``client.execute_command``. The same script reaches Redis, for ~20 us less client
    CPU than a one-command pipeline (its object, command stack and packing per send); by its SHA1
    (EVALSHA), so the script's text (~1.5 kB) is not packed, sent and hashed again on every send,
    with EVAL once when Redis does not know it yet (a new or restarted server)."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._command: tuple | None = None

    def eval(self, *args: Any) -> None:
        if self._command is not None:
            raise RuntimeError("OneCommand holds one command: use a pipeline for more")
        self._command = args

    def execute(self) -> list:
        if self._command is None:
            return []
        script, *rest = self._command
        try:
            return [self._client.execute_command("EVALSHA", _sha1(script), *rest)]
        except NoScriptError:
            return [self._client.execute_command("EVAL", script, *rest)]


@functools.lru_cache(maxsize=64)
def _sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def pipeline(client: redis.Redis, wait: ReplicaWait, transaction: bool = True,
             one_command: bool = False) -> Pipeline | OneCommand:
    """A pipeline for one send: the client's own, or one on a lent connection when waiting.
    ``one_command``: the send is a single EVAL, not in a transaction (see :class:`OneCommand`)."""
    if not wait.replicas or not waited():
        if one_command and not transaction:
            return OneCommand(client)
        return client.pipeline(transaction=transaction)
    return Pipeline(_Lent(client.connection_pool), client.response_callbacks, transaction, None)


def execute(pipe: Pipeline, wait: ReplicaWait, task_ids: list[str]) -> list:
    """Run the send's transaction, then ``WAIT`` on its connection; raise NotReplicatedError if short."""
    lent = getattr(pipe, "connection_pool", None)
    if not isinstance(lent, _Lent):
        return pipe.execute()  # not built by pipeline() with a wait: nothing to wait for
    try:
        replies = pipe.execute()
        confirmed = _wait(lent.get_connection(), wait)
    finally:
        lent.give_back()
    if confirmed < wait.replicas:
        raise NotReplicatedError(task_ids, confirmed, wait.replicas, wait.timeout)
    return replies


def _wait(connection: Any, wait: ReplicaWait) -> int:
    try:
        connection.send_command("WAIT", wait.replicas, int(wait.timeout * 1000))
        return int(connection.read_response())
    except BaseException:
        connection.disconnect()  # a reply may still be on its way: never reuse this socket
        raise

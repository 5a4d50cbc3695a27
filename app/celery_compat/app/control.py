"""``app.control``: remote control of the workers, as Celery's, over Redis.

A command (``ping``, ``inspect().active()``, ``revoke``, ``rate_limit``, a user's own
``@control_command``...) is one JSON message published on the control channel
(``keys.control_channel``): every listening worker gets it, as from Celery's pidbox fanout
exchange, and the ones it names (``destination``, or ``pattern`` with ``matcher``) run it
(``worker/control.py``). With ``reply=True`` each pushes ``{node name: answer}`` to a reply
list that the caller pops until ``timeout`` seconds have passed, ``limit`` replies came, or
every live worker answered (workers list themselves in ``keys.CONTROL_NODES``; Celery always
waits out the timeout). A worker that does not listen at that moment misses the command, as
in Celery.

Revokes are also written to Redis (``keys.revoked``), so a task revoked before any worker
listens, or picked up later (a retry, an ``eta``), is still discarded.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from .. import keys, states
from ..exceptions import TaskRevokedError
from ..protocol import REVOKED_FIELD as REVOKED_FIELD

if TYPE_CHECKING:
    from .base import Celery

logger = logging.getLogger(__name__)

_NOT_STARTED = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
#: A reply list outlives its broadcast by this long, then Redis drops it (late replies included).
REPLY_TTL = 60
#: The longest single blocking pop while collecting replies (the socket's own timeout may be short).
POP_SLICE = 1.0


def flatten_reply(reply: Sequence[dict]) -> dict:
    """``[{node: answer}, ...]`` as ``{node: answer}`` (Celery's function of the same name)."""
    nodes: dict = {}
    for item in reply:
        nodes.update(item)
    return nodes


def _db_of(connection: Any) -> int:
    return int(connection.connection_pool.connection_kwargs.get("db") or 0)


class Control:
    """Worker remote control: broadcast a command, collect the workers' replies."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    # -- the transport ---------------------------------------------------------------------------
    def broadcast(self, command: str, arguments: dict | None = None, destination: Sequence[str] | None = None,
                  connection: Any = None, reply: bool = False, timeout: float = 1.0, limit: int | None = None,
                  callback: Callable | None = None, channel: Any = None, pattern: str | None = None,
                  matcher: str | None = None, **extra_kwargs: Any) -> list[dict] | None:
        """Send ``command`` to the workers; with ``reply``, return their answers as ``[{node: answer}]``."""
        if destination is not None and not isinstance(destination, (list, tuple)):
            raise ValueError(f"destination must be a list/tuple not {type(destination)}")
        if bool(pattern) != bool(matcher):
            raise ValueError("pattern and matcher are only valid together")
        connection = connection or self.app.connection
        ticket = uuid.uuid4().hex
        message = {"method": command, "arguments": dict(arguments or {}, **extra_kwargs),
                   "destination": list(destination) if destination else None, "pattern": pattern,
                   "matcher": matcher, "reply_to": keys.control_reply(ticket) if reply else None, "ticket": ticket}
        connection.publish(keys.control_channel(_db_of(connection)), json.dumps(message, default=str))
        if not reply:
            return None
        if limit is None and destination:
            limit = len(destination)
        return self._collect(connection, keys.control_reply(ticket), timeout, limit, callback, destination)

    def _collect(self, connection: Any, reply_key: str, timeout: float, limit: int | None,
                 callback: Callable | None, destination: Sequence[str] | None) -> list[dict]:
        """Pop replies until the deadline, ``limit`` replies, or an answer from every live node.

        A node whose listing was lost (a FLUSHALL) lists itself again within seconds; until then
        the caller does not wait for it.
        """
        deadline = time.monotonic() + float(timeout)
        expected = self._live_nodes(connection, destination)
        replies: list[dict] = []
        answered: set[str] = set()
        try:
            # No node listed: nobody listens (a node lists itself before it takes commands).
            while expected and not expected <= answered:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (limit is not None and len(replies) >= limit):
                    break
                popped = connection.blpop([reply_key], timeout=min(remaining, POP_SLICE))
                if popped is None:
                    continue
                answer = json.loads(popped[1])
                replies.append(answer)
                answered.update(answer)
                if callback is not None:
                    callback(answer)
        finally:
            connection.delete(reply_key)
        return replies

    def _live_nodes(self, connection: Any, destination: Sequence[str] | None) -> set[str]:
        """The nodes to wait for: those the destination names (as in Celery, until the timeout:
        a node need not be a listed worker, beat's is not), else every listening worker."""
        if destination:
            return set(destination)
        return {name.decode() for name in connection.zrangebyscore(keys.CONTROL_NODES, time.time(), "+inf")}

    # -- revoking and purging --------------------------------------------------------------------
    def revoke(self, task_id: str | list[str], destination: Sequence[str] | None = None, terminate: bool = False,
               signal: Any = None, **kwargs: Any) -> list[dict] | None:
        """Revoke tasks: a waiting one never runs; a running one is stopped only with ``terminate=True``.

        The revoke is remembered in Redis, so a worker that picks the task up later (a
        scheduled retry, a race with the dequeue) discards it as Celery's workers do; the
        workers also hear it (``inspect().revoked()``), and answer with ``reply=True``.
        """
        ids = [task_id] if isinstance(task_id, str) else [str(one) for one in task_id]
        for one_id in ids:
            self._revoke_one(str(one_id), terminate)
        return self.broadcast("revoke", destination=destination,
                              arguments={"task_id": ids, "terminate": terminate, "signal": signal}, **kwargs)

    def _revoke_one(self, task_id: str, terminate: bool) -> None:
        connection = self.app.connection
        backend = self.app.backend
        backend.mark_revoked(task_id)
        try:
            job = Job.fetch(task_id, connection=connection, serializer=JSONSerializer)
        except NoSuchJobError:
            # No job here, but a state may be: one started elsewhere keeps it (only terminate
            # stops a running task); one with none at all is REVOKED, as Celery's workers store.
            if backend.get_state(task_id) == states.PENDING:
                backend.store_result(task_id, TaskRevokedError("revoked"), states.REVOKED)
            return
        connection.hset(job.key, REVOKED_FIELD, 1)
        status = job.get_status(refresh=False)
        if status in _NOT_STARTED:
            job.cancel()
            self._store_revoked(job, "revoked")
        elif status == JobStatus.STARTED and terminate:
            self._store_revoked(job, "terminated")
            try:
                send_stop_job_command(connection, task_id, serializer=JSONSerializer)
            except InvalidJobOperation:
                logger.info("Task %s finished before it could be terminated", task_id)

    def _store_revoked(self, job: Job, reason: str) -> None:
        meta = self.app.backend.get_task_meta(job.id)
        if meta["status"] in states.READY_STATES:
            return  # Celery leaves a finished task's result alone
        self.app.backend.store_result(job.id, TaskRevokedError(reason), states.REVOKED)

    def terminate(self, task_id: str, destination: Sequence[str] | None = None, signal: str = "SIGTERM",
                  **kwargs: Any) -> list[dict] | None:
        return self.revoke(task_id, destination=destination, terminate=True, signal=signal, **kwargs)

    def revoke_by_stamped_headers(self, headers: dict, destination: Sequence[str] | None = None,
                                  terminate: bool = False, signal: Any = None,
                                  **kwargs: Any) -> list[dict] | None:
        """Tell the workers to discard the tasks stamped with these headers (``{name: [values]}``).

        As in Celery the revoke lives in the workers' memory (``worker.state.revoked_stamps``):
        a worker started later does not know it.
        """
        if terminate:
            raise NotImplementedError("revoke_by_stamped_headers(terminate=True): only waiting tasks are revoked")
        return self.broadcast("revoke_by_stamped_headers", destination=destination,
                              arguments={"headers": headers, "terminate": terminate, "signal": signal}, **kwargs)

    def purge(self) -> int:
        """Delete every waiting task in the app's default queue, of every priority; return how many there were."""
        return purge_queue(self.app, self.app.conf.task_default_queue)

    discard_all = purge

    # -- commands with Celery's names ---------------------------------------------------------------
    def ping(self, destination: Sequence[str] | None = None, timeout: float = 1.0, **kwargs: Any) -> list[dict]:
        return self.broadcast("ping", reply=True, destination=destination, timeout=timeout, **kwargs) or []

    def rate_limit(self, task_name: str, rate_limit: Any, destination: Sequence[str] | None = None,
                   **kwargs: Any) -> list[dict] | None:
        """Change a task's rate limit in the workers (``"10/m"``, ``"5/s"``, ``None`` for none)."""
        return self.broadcast("rate_limit", destination=destination,
                              arguments={"task_name": task_name, "rate_limit": rate_limit}, **kwargs)

    def time_limit(self, task_name: str, soft: float | None = None, hard: float | None = None,
                   destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        """Change a task's time limits in the workers, for the tasks they start from now on."""
        return self.broadcast("time_limit", destination=destination,
                              arguments={"task_name": task_name, "hard": hard, "soft": soft}, **kwargs)

    def add_consumer(self, queue: str, exchange: str | None = None, exchange_type: str = "direct",
                     routing_key: str | None = None, options: dict | None = None,
                     destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        """Make the workers consume from ``queue`` too."""
        return self.broadcast("add_consumer", destination=destination,
                              arguments=dict({"queue": queue, "exchange": exchange, "exchange_type": exchange_type,
                                              "routing_key": routing_key}, **(options or {})), **kwargs)

    def cancel_consumer(self, queue: str, destination: Sequence[str] | None = None,
                        **kwargs: Any) -> list[dict] | None:
        """Make the workers stop consuming from ``queue``."""
        return self.broadcast("cancel_consumer", destination=destination, arguments={"queue": queue}, **kwargs)

    def shutdown(self, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        """Warm shutdown: the workers finish their running tasks and exit."""
        return self.broadcast("shutdown", destination=destination, **kwargs)

    def pool_grow(self, n: int = 1, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("pool_grow", destination=destination, arguments={"n": n}, **kwargs)

    def pool_shrink(self, n: int = 1, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("pool_shrink", destination=destination, arguments={"n": n}, **kwargs)

    def pool_restart(self, modules: Any = None, reload: bool = False, reloader: Any = None,
                     destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("pool_restart", destination=destination,
                              arguments={"modules": modules, "reload": reload}, **kwargs)

    def autoscale(self, max: int, min: int, destination: Sequence[str] | None = None,  # noqa: A002 - Celery's
                  **kwargs: Any) -> list[dict] | None:
        return self.broadcast("autoscale", destination=destination, arguments={"max": max, "min": min}, **kwargs)

    def enable_events(self, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("enable_events", destination=destination, **kwargs)

    def disable_events(self, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("disable_events", destination=destination, **kwargs)

    def heartbeat(self, destination: Sequence[str] | None = None, **kwargs: Any) -> list[dict] | None:
        return self.broadcast("heartbeat", destination=destination, **kwargs)

    def election(self, id: str, topic: str, action: Any = None, connection: Any = None,  # noqa: A002 - Celery's
                 **kwargs: Any) -> None:
        self.broadcast("election", connection=connection, destination=None,
                       arguments={"id": id, "topic": topic, "action": action}, **kwargs)

    def inspect(self, destination: Sequence[str] | str | None = None, timeout: float = 1.0,
                callback: Callable | None = None, connection: Any = None, app: Any = None,
                limit: int | None = None, pattern: str | None = None, matcher: str | None = None) -> Inspect:
        return Inspect(destination=destination, timeout=timeout, callback=callback, connection=connection,
                       app=app or self.app, limit=limit, pattern=pattern, matcher=matcher)


class Inspect:
    """``app.control.inspect()``: ask the workers; ``{node name: answer}``, or ``None`` when none answers."""

    def __init__(self, destination: Sequence[str] | str | None = None, timeout: float = 1.0,
                 callback: Callable | None = None, connection: Any = None, app: Any = None,
                 limit: int | None = None, pattern: str | None = None, matcher: str | None = None) -> None:
        self.app = app
        self.destination = destination
        self.timeout = timeout
        self.callback = callback
        self.connection = connection
        self.limit = limit
        self.pattern = pattern
        self.matcher = matcher

    def _request(self, command: str, **kwargs: Any) -> dict | None:
        destination = self.destination
        if isinstance(destination, str):
            destination = [destination]
        reply = self.app.control.broadcast(
            command, arguments=kwargs, destination=destination, callback=self.callback, connection=self.connection,
            limit=self.limit, timeout=self.timeout, reply=True, pattern=self.pattern, matcher=self.matcher)
        if not reply:
            return None
        by_node = flatten_reply(reply)
        if isinstance(self.destination, str):
            return by_node.get(self.destination)
        return by_node

    def report(self) -> dict | None:
        return self._request("report")

    def clock(self) -> dict | None:
        return self._request("clock")

    def active(self, safe: Any = None) -> dict | None:
        """The tasks each worker is running."""
        return self._request("active", safe=safe)

    def scheduled(self, safe: Any = None) -> dict | None:
        """The tasks waiting for their ``eta``/``countdown`` in the queues each worker consumes."""
        return self._request("scheduled", safe=safe)

    def reserved(self, safe: Any = None) -> dict | None:
        """Tasks taken but not started: none, an RQ worker takes a task only when it can start it."""
        return self._request("reserved", safe=safe)

    def stats(self) -> dict | None:
        return self._request("stats")

    def revoked(self) -> dict | None:
        return self._request("revoked")

    def registered(self, *taskinfoitems: str) -> dict | None:
        return self._request("registered", taskinfoitems=taskinfoitems)

    registered_tasks = registered

    def ping(self, destination: Any = None) -> dict | None:
        if destination:
            self.destination = destination
        return self._request("ping")

    def active_queues(self) -> dict | None:
        return self._request("active_queues")

    def query_task(self, *ids: Any) -> dict | None:
        """``{node: {task id: [state, request]}}`` for the given tasks each worker holds."""
        if ids and isinstance(ids[0], (list, tuple)):
            ids = tuple(ids[0])
        return self._request("query_task", ids=list(ids))

    def conf(self, with_defaults: bool = False) -> dict | None:
        return self._request("conf", with_defaults=with_defaults)

    def hello(self, from_node: str, revoked: Any = None) -> dict | None:
        return self._request("hello", from_node=from_node, revoked=revoked)

    def memsample(self) -> dict | None:
        return self._request("memsample")

    def memdump(self, samples: int = 10) -> dict | None:
        return self._request("memdump", samples=samples)

    def objgraph(self, type: str = "Request", n: int = 200, max_depth: int = 10) -> dict | None:  # noqa: A002
        return self._request("objgraph", num=n, max_depth=max_depth, type=type)


def purge_queue(app: Any, name: str) -> int:
    """Empty all of queue ``name``'s priority lists (their jobs deleted, as RQ's ``empty``); return the count."""
    count = 0
    for step in app.amqp.priorities.steps:
        queue = app.queue(name, step)
        count += queue.count
        queue.empty()
    return count

"""The worker's side of remote control, as Celery's ``celery.worker.control``.

A node (:mod:`.pidbox`) listens on the control channel and runs the commands addressed to
it with the handlers registered here; each handler takes a :class:`ControlState` and the
command's arguments and returns the answer that is pushed to the caller's reply list. The
handlers of Celery's commands are below; a program adds its own with ``@control_command`` /
``@inspect_command``, as with Celery.

The node sees its worker through a *host* (:mod:`.hosts`): the tasks running now, the
processes, the queues, and what the commands that change something (queues, pool size,
shutdown) do in that kind of worker.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from ..app.amqp import Priorities
from ..app.config import DEFAULTS
from ..protocol import Envelope
from ..redaction import redact_url
from ..serialization import from_wire
from . import rate_limits as rates
from . import state as worker_state

logger = logging.getLogger("app.celery_compat.worker")

#: Celery's timer priority for tasks waiting for their ETA, which ``scheduled()`` reports.
ETA_TIMER_PRIORITY = 6
#: ``registered()``'s default fields of each task, as Celery's.
DEFAULT_TASK_INFO_ITEMS = ("exchange", "routing_key", "rate_limit")


@dataclass
class CommandInfo:
    """What Celery's ``Panel.meta`` says of a command."""

    name: str
    type: str = "control"
    visible: bool = True
    help: str | None = None
    args: list = field(default_factory=list)
    default_timeout: float = 1.0


class Panel:
    """The registry of commands: name -> handler, as Celery's ``Panel``."""

    data: dict[str, Callable] = {}
    meta: dict[str, CommandInfo] = {}

    @classmethod
    def register(cls, *args: Any, **kwargs: Any) -> Any:
        """``@Panel.register(name=..., type="control"|"inspect", visible=..., help=..., args=[...])``."""
        def add(handler: Callable) -> Callable:
            name = kwargs.get("name") or handler.__name__
            cls.data[name] = handler
            cls.meta[name] = CommandInfo(name, kwargs.get("type", "control"), kwargs.get("visible", True),
                                         kwargs.get("help") or (handler.__doc__ or "").strip() or None,
                                         list(kwargs.get("args") or []), kwargs.get("default_timeout", 1.0))
            return handler

        if args and callable(args[0]):  # used bare: @control_command
            return add(args[0])
        return add


def control_command(*args: Any, **kwargs: Any) -> Any:
    """Register a command that acts on the worker (``app.control.broadcast(name, ...)``)."""
    return Panel.register(*args, **dict(kwargs, type="control"))


def inspect_command(*args: Any, **kwargs: Any) -> Any:
    """Register a command that answers a question (``app.control.inspect()._request(name)``)."""
    return Panel.register(*args, **dict(kwargs, type="inspect"))


class ControlState:
    """What a handler gets as ``state``: the app, the node name, the host (Celery's ``consumer``)."""

    def __init__(self, app: Any, hostname: str, host: Any) -> None:
        self.app = app
        self.hostname = hostname
        self.host = host
        self.consumer = host  # Celery handlers reach the worker through state.consumer
        self.clock = 0
        self.started = time.time()
        #: What to do once the answer is on its way (a shutdown must not stop the node before).
        self.after_reply: list[Callable[[], None]] = []


# -- what a task looks like in a reply -----------------------------------------------------------
def request_info(task_id: str, name: str, args: Any, kwargs: Any, queue: str | None, priority: Any,
                 hostname: str, time_start: float | None, pid: int | None, redelivered: bool = False) -> dict:
    """A task as Celery's ``Request.info()`` describes it."""
    return {"id": task_id, "name": name, "args": args, "kwargs": kwargs, "type": name, "hostname": hostname,
            "time_start": time_start, "acknowledged": time_start is not None,
            "delivery_info": {"exchange": "", "routing_key": queue, "priority": priority or 0,
                              "redelivered": redelivered},
            "worker_pid": pid}


def job_info(job: Job, hostname: str, time_start: float | None, pid: int | None,
             priorities: Priorities | None = None) -> dict:
    """The task as Celery describes it; its routing key is its queue, not the priority list it waited in."""
    envelope = Envelope.of(job)
    queue = (priorities or Priorities()).queue_of(job.origin)
    return request_info(job.id, envelope.name, from_wire(envelope.args), from_wire(envelope.kwargs), queue,
                        envelope.options.get("priority"), hostname, time_start, pid)


def _fetch_jobs(connection: Any, job_ids: list[str]) -> list[Job]:
    jobs = Job.fetch_many(job_ids, connection=connection, serializer=JSONSerializer)
    return [job for job in jobs if job is not None]


# -- Celery's inspect commands -------------------------------------------------------------------
@inspect_command()
def ping(state: ControlState, **kwargs: Any) -> dict:
    return {"ok": "pong"}


@inspect_command()
def clock(state: ControlState, **kwargs: Any) -> dict:
    return {"clock": state.clock}


@inspect_command()
def hello(state: ControlState, from_node: str | None = None, revoked: Any = None, **kwargs: Any) -> dict | None:
    """Another worker says hello: take its revoked ids (stamped here), answer with ours."""
    if from_node == state.hostname:
        return None
    if revoked:
        worker_state.revoked.update(list(revoked))  # ids only: other hosts' stamps mean nothing here
    return {"revoked": list(worker_state.revoked), "clock": state.clock}


@inspect_command()
def active(state: ControlState, safe: Any = None, **kwargs: Any) -> list[dict]:
    """The tasks this worker runs now."""
    return state.host.active()


@inspect_command()
def reserved(state: ControlState, safe: Any = None, **kwargs: Any) -> list[dict]:
    # An RQ worker takes a task from its queue only when it can start it: it holds none in reserve.
    return []


@inspect_command()
def scheduled(state: ControlState, safe: Any = None, **kwargs: Any) -> list[dict]:
    """Tasks waiting for their ``eta`` (or ``countdown``, or a retry's delay) in this worker's queues.

    They wait in Redis, not in a worker: every worker of the queue lists them.
    """
    connection = state.app.connection
    priorities = state.app.amqp.priorities
    job_ids = [job_id for list_name in priorities.consume_order(state.host.queues())
               for job_id in ScheduledJobRegistry(list_name, connection=connection, serializer=JSONSerializer)
               .get_job_ids()]
    answer = []
    for job in _fetch_jobs(connection, job_ids):
        info = job_info(job, state.hostname, None, None, priorities)
        answer.append({"eta": Envelope.options_of(job).get("eta"), "priority": ETA_TIMER_PRIORITY, "request": info})
    return answer


@inspect_command()
def query_task(state: ControlState, ids: Any = (), **kwargs: Any) -> dict:
    """``{task id: ["active", request]}`` for those of ``ids`` this worker runs now."""
    wanted = {ids} if isinstance(ids, str) else set(ids or ())
    return {info["id"]: ["active", info] for info in state.host.active() if info["id"] in wanted}


@inspect_command()
def revoked(state: ControlState, **kwargs: Any) -> list[str]:
    return list(worker_state.revoked)


@inspect_command()
def registered(state: ControlState, taskinfoitems: Any = None, builtins: bool = False, **kwargs: Any) -> list[str]:
    """The names of the tasks this worker can run, with ``[field=value ...]`` when asked."""
    tasks = state.app.tasks
    fields = list(taskinfoitems or DEFAULT_TASK_INFO_ITEMS)

    def describe(task: Any) -> str:
        found = {name: str(getattr(task, name)) for name in fields if getattr(task, name, None) is not None}
        return f"{task.name} [{' '.join(f'{k}={v}' for k, v in found.items())}]" if found else task.name

    names = sorted(name for name in tasks if builtins or not name.startswith("celery."))
    return [describe(tasks[name]) for name in names]


@inspect_command()
def active_queues(state: ControlState, **kwargs: Any) -> list[dict]:
    """The queues this worker consumes, in kombu's ``Queue.as_dict()`` form."""
    return [queue_info(name) for name in state.host.queues()]


def queue_info(name: str) -> dict:
    exchange = {"name": name, "type": "direct", "arguments": None, "durable": True, "passive": False,
                "auto_delete": False, "delivery_mode": None, "no_declare": False}
    return {"name": name, "exchange": exchange, "routing_key": name, "queue_arguments": None,
            "binding_arguments": None, "consumer_arguments": None, "durable": True, "exclusive": False,
            "auto_delete": False, "no_ack": False, "alias": None, "bindings": [], "no_declare": None,
            "expires": None, "message_ttl": None, "max_length": None, "max_length_bytes": None,
            "max_priority": None}


@inspect_command()
def stats(state: ControlState, **kwargs: Any) -> dict:
    """The worker's process, pool, uptime and counts of tasks run, as Celery's ``stats()``."""
    connection_kwargs = state.app.connection.connection_pool.connection_kwargs
    host = state.host
    return {
        "pid": os.getpid(), "hostname": state.hostname, "clock": state.clock,
        "uptime": max(1, int(time.time() - state.started)),
        "pool": {"max-concurrency": host.concurrency(), "processes": host.processes(),
                 "implementation": host.implementation, "max-tasks-per-child": None, "put-guarded-by-semaphore": False,
                 "timeouts": [state.app.conf.task_soft_time_limit or 0, state.app.conf.task_time_limit or 0]},
        "total": host.totals(), "prefetch_count": host.concurrency(),
        "broker": {"transport": "redis", "hostname": connection_kwargs.get("host"),
                   "port": connection_kwargs.get("port"), "virtual_host": str(connection_kwargs.get("db") or 0),
                   "ssl": False, "connect_timeout": connection_kwargs.get("socket_connect_timeout")},
        "rusage": _rusage(),
    }


def node_info(state: ControlState) -> dict[str, str]:
    """What a node lists of itself in Redis for the monitor: host, pid, pool, size, queues, its RQ workers."""
    host = state.host
    return {
        "hostname": state.hostname, "host": socket.gethostname(), "pid": str(os.getpid()),
        "pool": host.implementation, "concurrency": str(host.concurrency()),
        "queues": json.dumps(host.queues()), "workers": json.dumps(host.worker_names()),
        "started": repr(state.started),
    }


def _rusage() -> dict:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {name: getattr(usage, f"ru_{name}") for name in ("utime", "stime", "maxrss", "minflt", "majflt",
                                                             "nvcsw", "nivcsw")}


@inspect_command()
def conf(state: ControlState, with_defaults: bool = False, **kwargs: Any) -> dict:
    """The worker's settings, passwords in URLs masked."""
    settings = {}
    for key in sorted({*DEFAULTS, *state.app.conf}):  # defaults included, whatever with_defaults says
        if key.startswith("__"):
            continue
        value = state.app.conf.get(key)
        settings[key] = redact_url(value) if isinstance(value, str) else value
    return json.loads(json.dumps(settings, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


@inspect_command()
def report(state: ControlState, **kwargs: Any) -> dict:
    return {"ok": state.app.bugreport()}


@inspect_command()
def memsample(state: ControlState, **kwargs: Any) -> str:
    return f"{_rusage()['maxrss'] / 1024:.2f}MiB"


# -- Celery's control commands -------------------------------------------------------------------
@control_command()
def revoke(state: ControlState, task_id: Any = (), terminate: bool = False, signal: Any = None,
           **kwargs: Any) -> dict:
    """Remember revoked ids (``inspect().revoked()``); the caller already marked them in Redis and,
    with ``terminate``, stopped the running one through RQ's stop-job command."""
    ids = [task_id] if isinstance(task_id, str) else list(task_id or ())
    for one in ids:
        worker_state.revoked.add(one)
    return {"ok": f"tasks {', '.join(ids)} flagged as revoked"}


@control_command()
def revoke_by_stamped_headers(state: ControlState, headers: dict | None = None, terminate: bool = False,
                              signal: Any = None, **kwargs: Any) -> dict:
    """Remember stamped headers to revoke by: a task received with one of them is discarded."""
    for name, values in (headers or {}).items():
        values = values if isinstance(values, list) else [values]
        known = worker_state.revoked_stamps.setdefault(name, [])
        known.extend(value for value in values if value not in known)
    return {"ok": f"headers {headers} flagged as revoked, but not terminated"}


@control_command()
def rate_limit(state: ControlState, task_name: str = "", rate_limit: Any = None, **kwargs: Any) -> dict:
    """Set a task's ``rate_limit`` in this worker, as Celery's command does.

    Every work process gets it (a prefork worker's are replaced), then the node's bucket starts
    afresh and the tasks it held come back now, to be charged at the new rate.
    """
    try:
        rates.rate(rate_limit)
    except ValueError as exc:
        return {"error": f"Invalid rate limit string: {exc!r}"}
    task = state.app.tasks.get(task_name)
    if task is None:
        logger.error("Rate limit attempt for unknown task %s", task_name)
        return {"error": "unknown task"}
    task.rate_limit = rate_limit
    state.host.changed()
    rates.reset(state.app.connection, state.hostname, task_name,
                state.app.amqp.priorities.consume_order(state.host.queues()))
    if not rate_limit:
        logger.info("Rate limits disabled for tasks of type %s", task_name)
        return {"ok": "rate limit disabled successfully"}
    logger.info("New rate limit for tasks of type %s: %s.", task_name, rate_limit)
    return {"ok": "new rate limit set successfully"}


@control_command()
def time_limit(state: ControlState, task_name: str = "", hard: float | None = None, soft: float | None = None,
               **kwargs: Any) -> dict:
    """Set a task's time limits in this worker, for the tasks it starts from now on.

    They win over the limits in the message, which the caller filled from its own copy of the task.
    """
    task = state.app.tasks.get(task_name)
    if task is None:
        return {"error": f"unknown task {task_name}"}
    task.time_limit, task.soft_time_limit = hard, soft
    worker_state.time_limits[task_name] = (hard, soft)
    state.host.changed()
    return {"ok": "time limits set successfully"}


@control_command()
def add_consumer(state: ControlState, queue: str = "", exchange: Any = None, exchange_type: Any = None,
                 routing_key: Any = None, **options: Any) -> dict:
    """Consume from ``queue`` too."""
    if queue in state.host.queues():
        return {"ok": f"already consuming from {queue!r}"}
    state.host.add_queue(queue)
    return {"ok": f"add consumer {queue}"}


@control_command()
def cancel_consumer(state: ControlState, queue: str = "", **kwargs: Any) -> dict:
    """Stop consuming from ``queue``."""
    state.host.cancel_queue(queue)
    return {"ok": f"no longer consuming from {queue}"}


@control_command()
def shutdown(state: ControlState, msg: str = "Got shutdown from remote", **kwargs: Any) -> dict:
    logger.warning(msg)
    state.after_reply.append(state.host.shutdown)
    return {"ok": "shutting down"}


@control_command()
def pool_grow(state: ControlState, n: int = 1, **kwargs: Any) -> dict:
    state.host.grow(int(n))
    return {"ok": "pool will grow"}


@control_command()
def pool_shrink(state: ControlState, n: int = 1, **kwargs: Any) -> dict:
    state.host.shrink(int(n))
    return {"ok": "pool will shrink"}


@control_command()
def pool_restart(state: ControlState, **kwargs: Any) -> dict:
    raise NotImplementedError("pool_restart: restart the worker instead (the adapter reloads no modules)")


@control_command()
def autoscale(state: ControlState, **kwargs: Any) -> dict:
    raise NotImplementedError("autoscale: the adapter's pools have a fixed size (use pool_grow/pool_shrink)")


@control_command()
def enable_events(state: ControlState, **kwargs: Any) -> dict:
    raise NotImplementedError("task events: the adapter sends no Celery events (use signals or the result store)")


@control_command()
def disable_events(state: ControlState, **kwargs: Any) -> dict:
    return {"ok": "task events disabled"}  # there are none to disable


@control_command()
def heartbeat(state: ControlState, **kwargs: Any) -> dict:
    return {"ok": "heartbeat sent"}  # the worker's listing in keys.CONTROL_NODES is its heartbeat


__all__ = ["ControlState", "Panel", "control_command", "inspect_command", "request_info", "job_info",
           "add_consumer", "cancel_consumer"]

"""``app.amqp``: the part of Celery's AMQP layer that means something on Redis (the queues).

Celery programs and its test suite read ``app.amqp.queues`` to see which queues an app uses.
Here a queue is an RQ list, so the other AMQP objects (producers, exchanges, the message
protocol) do not exist: asking for one raises an error that names it instead of failing later.
"""

from __future__ import annotations

import json
import zlib
from bisect import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rq.job import JobStatus

from .. import keys
from ..protocol import EXECUTE_TASK, FAILURE_CALLBACK

#: Payloads longer than this are zlib-compressed as RQ does; shorter ones gain nothing from it and
#: a zlib stream costs more than the rest of the send.
COMPRESS_ABOVE = 512


#: kombu's Redis transport: a priority goes to the highest of these steps not above it.
PRIORITY_STEPS = (0, 3, 6, 9)
#: kombu's bounds: a priority outside them is clamped (``Channel.min_priority``/``max_priority``).
MIN_PRIORITY, MAX_PRIORITY = 0, 9


@dataclass(frozen=True)
class Priorities:
    """Celery-on-Redis priorities: one list (an RQ queue of its own) per step, 0 the most urgent.

    As kombu's Redis transport: a task of priority ``n`` (clamped to 0..9) waits in the list of
    ``steps[bisect(steps, n) - 1]``; step 0's list is the queue itself, so a task without a
    priority costs what it did. Workers pop priority-major: every queue's step-0 list, then every
    queue's step-3 list, and so on (kombu's BRPOP key order).
    """

    steps: tuple[int, ...] = PRIORITY_STEPS
    sep: str = keys.PRIORITY_SEP

    @classmethod
    def of(cls, conf: Any) -> Priorities:
        """The app's, from ``broker_transport_options`` (``priority_steps``, ``sep``) as Celery reads them."""
        options = conf.get("broker_transport_options") or {}
        steps = tuple(sorted({int(step) for step in options.get("priority_steps") or PRIORITY_STEPS} | {0}))
        return cls(steps, str(options.get("sep") or keys.PRIORITY_SEP))

    def step(self, priority: Any) -> int:
        """The step a priority goes to; no priority is 0, the most urgent on Redis."""
        if priority is None:
            return 0
        clamped = max(MIN_PRIORITY, min(int(priority), MAX_PRIORITY))
        return self.steps[bisect(self.steps, clamped) - 1]

    def queue(self, name: str, priority: Any = None) -> str:
        """The name of the RQ queue a task for ``name`` with ``priority`` waits in."""
        return keys.priority_queue(name, self.step(priority), self.sep)

    def lists(self, name: str) -> list[str]:
        """Every list of queue ``name``, step 0 (the queue itself) first."""
        return [keys.priority_queue(name, step, self.sep) for step in self.steps]

    def consume_order(self, names: Iterable[str]) -> list[str]:
        """The lists a worker of ``names`` pops, priority-major."""
        names = list(dict.fromkeys(names))
        return [keys.priority_queue(name, step, self.sep) for step in self.steps for name in names]

    def queue_of(self, list_name: str) -> str:
        """The queue a list belongs to: ``default:3`` -> ``default``; any other name is a queue."""
        name, sep, step = list_name.rpartition(self.sep)
        if sep and name and step.isdigit() and int(step) in self.steps and int(step):
            return name
        return list_name

    def queues_of(self, list_names: Iterable[str]) -> list[str]:
        """The queues of these lists, each once, in order."""
        return list(dict.fromkeys(self.queue_of(name) for name in list_names))


@dataclass(frozen=True)
class QueueSpec:
    """A queue the app knows by name, for a configuration that gave only names."""

    name: str
    routing_key: str | None = None


def _named(entries: Any) -> dict[str, Any]:
    # task_queues may be a list of kombu.Queue-like objects, a dict, or plain names.
    if not entries:
        return {}
    if isinstance(entries, dict):
        return {str(name): spec for name, spec in entries.items()}
    queues = {}
    for entry in entries if isinstance(entries, Iterable) and not isinstance(entries, str) else [entries]:
        name = entry if isinstance(entry, str) else getattr(entry, "name", None)
        if name:
            queues[str(name)] = QueueSpec(entry) if isinstance(entry, str) else entry
    return queues


class AMQP:
    """What ``app.amqp`` offers here: ``queues`` (name -> queue) and the default queue's name."""

    def __init__(self, app: Any) -> None:
        self.app = app
        #: Queues sent to without being configured (Celery's task_create_missing_queues adds them too).
        self.used: set[str] = set()

    @property
    def queues(self) -> dict[str, Any]:
        """The default queue, the configured ``task_queues``, then every queue the app sent to."""
        default = self.app.conf.task_default_queue
        configured = _named(self.app.conf.task_queues)
        queues = configured or {default: QueueSpec(default, routing_key=default)}
        for name in sorted(self.used):
            queues.setdefault(name, QueueSpec(name, routing_key=name))
        return queues

    @property
    def priorities(self) -> Priorities:
        """The priority steps and list names of this app's queues (see :class:`Priorities`)."""
        return Priorities.of(self.app.conf)

    @property
    def default_queue(self) -> Any:
        return self.queues.get(self.app.conf.task_default_queue) or QueueSpec(self.app.conf.task_default_queue)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(
            f"app.amqp.{name} is part of Celery's AMQP transport, which does not exist on RQ and Redis: "
            "tasks are RQ jobs in Redis lists (only app.amqp.queues and default_queue are provided)")


def rq_timestamp(moment: datetime) -> str:
    """``moment`` (UTC) in RQ's stored format ``%Y-%m-%dT%H:%M:%S.%fZ`` (isoformat is 3x cheaper than strftime)."""
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def job_hash(queue_name: str, job_args: tuple, meta: dict, description: str, timeout: int, result_ttl: int,
             failure_ttl: int, now: datetime) -> list:
    """The RQ job hash of a queued task, flat (field, value, ...), as ``Job.to_dict()`` writes it but for defaults.

    Built directly because making an ``rq.job.Job`` per send (its protocol checks, two
    ``strftime``, a zlib stream for a 100-byte payload) was most of ``.delay()``'s own cost.
    ``data`` up to :data:`COMPRESS_ABOVE` bytes is stored uncompressed: RQ's ``Job.restore`` reads
    both forms (it falls back on ``zlib.error``), and compressing ~100 bytes of JSON saves nothing.
    """
    stamp = rq_timestamp(now)
    data = json.dumps([EXECUTE_TASK, None, list(job_args), {}]).encode()
    if len(data) > COMPRESS_ABOVE:
        data = zlib.compress(data)
    # RQ also writes seven empty fields (started_at, worker_name, ...) and the failure callback's
    # timeout, which is RQ's default: its Job.restore reads a missing field as empty, or as that
    # default, and in a hash over Redis' listpack limits (``data`` alone is) each field costs ~95
    # bytes: 1,728 -> 1,104 bytes per queued no-op task (MEMORY USAGE).
    return ["created_at", stamp, "data", data,
            "failure_callback_name", FAILURE_CALLBACK, "origin", queue_name,
            "description", description, "enqueued_at", stamp, "timeout", timeout,
            "result_ttl", result_ttl, "failure_ttl", failure_ttl,
            "status", JobStatus.QUEUED.value, "meta", json.dumps(meta).encode()]

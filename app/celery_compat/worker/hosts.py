"""What the remote control (:mod:`.control`) sees of a worker and may change in it: its *host*.

* :class:`WorkersHost`: RQ workers in this process (``-P solo``, ``-P fork``, the test worker's
  threads): their running tasks, their queues (changed in place), stopping them.
* :class:`SupervisorHost`: the prefork supervisor, whose work processes run the tasks; it
  reads what they run from their slots, and changes their queues by replacing them (each
  finishes its task first, then a fresh one starts on the new queues).
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from rq.job import Job
from rq.queue import Queue
from rq.serializers import JSONSerializer

from .. import keys
from ..app.amqp import Priorities
from . import state as worker_state
from .control import job_info

logger = logging.getLogger("app.celery_compat.worker")
#: How long a command that replaces the prefork work processes waits for the idle ones to stop.
REPLACE_WAIT = 10.0


def _started_at(job: Job) -> float | None:
    return job.started_at.timestamp() if job.started_at is not None else None


def _running_jobs(connection: Any, running: list[tuple[str, float | None, int]]) -> list[tuple[Job, float | None, int]]:
    """The jobs of ``(job id, start time, pid)`` triples, those still in Redis."""
    jobs = Job.fetch_many([job_id for job_id, _, _ in running], connection=connection, serializer=JSONSerializer)
    return [(job, started, pid) for job, (_, started, pid) in zip(jobs, running, strict=True) if job is not None]


class WorkersHost:
    """RQ workers of this process, one task at a time each."""

    def __init__(self, hostname: str, workers: list[Any], implementation: str = "solo",
                 stop: Callable[[], None] | None = None, priorities: Priorities | None = None) -> None:
        self.hostname = hostname
        self.workers = workers
        self.implementation = implementation
        self._stop = stop
        self.priorities = priorities or Priorities()

    def active(self) -> list[dict]:
        running = []
        for worker in self.workers:
            job_id = worker.get_current_job_id()
            if job_id:
                pid = getattr(worker, "horse_pid", 0) or os.getpid()  # -P fork runs it in a work horse
                running.append((job_id, None, pid))
        connection = self.workers[0].connection if self.workers else None
        return [job_info(job, self.hostname, _started_at(job) or started, pid, self.priorities)
                for job, started, pid in _running_jobs(connection, running)] if running else []

    def queues(self) -> list[str]:
        """The queues consumed, each once: the workers pop each one's priority lists."""
        return self.priorities.queues_of(queue.name for queue in self.workers[0].queues) if self.workers else []

    def processes(self) -> list[int]:
        return [os.getpid()]

    def concurrency(self) -> int:
        return len(self.workers)

    def worker_names(self) -> list[str]:
        """The RQ workers' names, whose hashes hold their heartbeats and counts."""
        return [worker.name for worker in self.workers]

    def totals(self) -> dict[str, int]:
        return dict(worker_state.total_count)

    def add_queue(self, name: str) -> None:
        self._set_queues([*self.queues(), name])

    def cancel_queue(self, name: str) -> None:
        self._set_queues([queue for queue in self.queues() if queue != name])

    def _set_queues(self, names: list[str]) -> None:
        """Pop ``names``' priority lists, priority-major, from the next task on."""
        order = self.priorities.consume_order(names)
        for worker in self.workers:
            known = {queue.name: queue for queue in worker.queues}
            queues = [known.get(list_name) or Queue(list_name, connection=worker.connection,
                                                    serializer=JSONSerializer, job_class=worker.job_class)
                      for list_name in order]
            worker.queues, worker._ordered_queues = queues, list(queues)
            started = getattr(worker, "_started_keys", None)
            if started is not None:  # the lean worker's claim script names each queue's registry
                started.update({queue.key: queue.started_job_registry.key for queue in queues})

    def changed(self) -> None:
        """A command changed the app's tasks: the workers here read them at each task already."""

    def shutdown(self) -> None:
        """A warm shutdown: the running task finishes, then the worker exits."""
        if self._stop is not None:
            self._stop()
            return
        for worker in self.workers:
            worker._stop_requested = True  # seen by a worker still starting, before its loop
        if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None):
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own handler: at once when idle

    def grow(self, n: int) -> None:
        raise NotImplementedError(f"pool_grow: the {self.implementation} pool has a fixed size (-c)")

    def shrink(self, n: int) -> None:
        raise NotImplementedError(f"pool_shrink: the {self.implementation} pool has a fixed size (-c)")


class SupervisorHost:
    """The prefork supervisor and its work processes."""

    implementation = "prefork"

    def __init__(self, hostname: str, supervisor: Any) -> None:
        self.hostname = hostname
        self.supervisor = supervisor

    def active(self) -> list[dict]:
        running = [(child.slot.current, child.slot.started.value or None, child.process.pid)
                   for child in list(self.supervisor.children)
                   if child.process is not None and child.slot.current]
        if not running:
            return []
        return [job_info(job, self.hostname, started, pid, self.supervisor.app.amqp.priorities)
                for job, started, pid in _running_jobs(self.supervisor.app.connection, running)]

    def queues(self) -> list[str]:
        return list(self.supervisor.queue_names)

    def processes(self) -> list[int]:
        return [child.process.pid for child in list(self.supervisor.children) if child.process is not None]

    def concurrency(self) -> int:
        return len(self.supervisor.children)

    def worker_names(self) -> list[str]:
        """The work processes' RQ worker names (a starting one has none yet)."""
        return [name for name in (child.slot.worker_name.value.decode() for child in list(self.supervisor.children))
                if name]

    def totals(self) -> dict[str, int]:
        # Counted in the work processes, which add them to the node's hash with their heartbeat's
        # counters (so up to one heartbeat interval behind).
        raw = self.supervisor.app.connection.hgetall(keys.node_totals(self.hostname))
        return {name.decode(): int(count) for name, count in raw.items()}

    def add_queue(self, name: str) -> None:
        self._set_queues([*self.supervisor.queue_names, name])

    def cancel_queue(self, name: str) -> None:
        self._set_queues([queue for queue in self.supervisor.queue_names if queue != name])

    def _set_queues(self, names: list[str]) -> None:
        """New work processes consume ``names``; the current ones finish their task and are replaced."""
        options = self.supervisor.options
        options.queues, options.queue_names = ",".join(names), []
        self.supervisor.queue_names = names
        self.changed()

    def changed(self) -> None:
        """Replace the work processes: new ones fork from the changed supervisor.

        Each stops after its running task and takes no other (a warm stop). Returns once the idle
        ones are gone, so that a task sent after the command's answer runs under the change.
        """
        children = self.supervisor.alive()
        idle = [child.process for child in children if not child.slot.current]
        for child in children:
            os.kill(child.process.pid, signal.SIGTERM)  # the supervisor starts a fresh one
        deadline = time.monotonic() + REPLACE_WAIT
        while any(process.is_alive() for process in idle) and time.monotonic() < deadline:
            time.sleep(0.05)

    def shutdown(self) -> None:
        self.supervisor.request_stop(signal.SIGTERM, None)

    def grow(self, n: int) -> None:
        # In the supervisor's own loop: it forks, and it alone walks its children.
        self.supervisor.pending.append(lambda: self.supervisor.grow(n))

    def shrink(self, n: int) -> None:
        # In the supervisor's own loop, as grow: it alone walks and changes its children.
        self.supervisor.pending.append(lambda: self.supervisor.shrink(n))

"""The RQ worker classes ``python worker.py`` runs, tuned for Celery's guarantees.

* :class:`ForkingWorker` (``-P fork``): RQ's ``Worker``, a fresh work horse per task.
* :class:`InProcessWorker` (the base of the lean worker, ``-P prefork`` children and ``-P solo``):
  RQ's ``SimpleWorker``, tasks run in the process itself.

Both keep a task's entry in RQ's started registry alive with short heartbeats, so that a
worker that dies with its machine is noticed within seconds instead of RQ's minutes, and
both apply :mod:`recovery` when a task's process dies.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
from datetime import datetime, timezone
from typing import Any

from rq import SimpleWorker, Worker, worker_registration
from rq.job import Job
from rq.queue import Queue
from rq.rate_limit import RateLimitRegistry
from rq.registry import DeferredJobRegistry, FailedJobRegistry, FinishedJobRegistry, ReadyJobRegistry
from rq.scheduler import RQScheduler
from rq.utils import now

from .._state import current_app
from ..exceptions import Terminated
from ..protocol import Envelope
from . import state as worker_state
from .canceled import file_terminated
from .guard import TaskJob
from .hosts import WorkersHost
from .pidbox import ControlNode, start_control
from .reach import OUTAGE, Throttle, blocking, reason
from .recovery import recover_lost_job, store_time_limit_failure

#: Seconds between heartbeats of a running task (``worker_heartbeat_interval`` overrides it).
HEARTBEAT_INTERVAL = 2
#: A running task whose heartbeat is older than this is abandoned: its worker is dead (or
#: frozen), and the task is recovered by the next sweep (``worker_heartbeat_ttl`` overrides it).
#: A dead worker's tasks are so recovered within HEARTBEAT_TTL + HEARTBEAT_INTERVAL (9 s).
HEARTBEAT_TTL = 7


def heartbeat_timing(app: Any = None) -> tuple[float, float]:
    """(seconds between beats, seconds without a beat before a task counts as abandoned), from the app's settings."""
    conf = (app or current_app()).conf
    interval = float(conf.get("worker_heartbeat_interval") or HEARTBEAT_INTERVAL)
    ttl = float(conf.get("worker_heartbeat_ttl") or HEARTBEAT_TTL)
    if ttl < 2 * interval:
        raise ValueError(f"worker_heartbeat_ttl ({ttl}) must be at least twice worker_heartbeat_interval ({interval}):"
                         " one late beat would count the worker as dead")
    return interval, ttl


#: Seconds an idle worker consuming several lists (priority lists, more queues) blocks on the
#: first before it looks at all of them (``worker_idle_poll_interval`` overrides it): the longest
#: an idle worker takes to start a task that is not on its first list.
IDLE_POLL_INTERVAL = 0.1


def idle_poll_interval(app: Any = None) -> float:
    """How long an idle worker with several lists blocks on its first one at a time (see lean._wait_and_claim)."""
    value = (app or current_app()).conf.get("worker_idle_poll_interval")
    return IDLE_POLL_INTERVAL if value is None else max(float(value), 0.01)


#: The signals that stop a process of ours (blocked across forks until the child's handlers are ready).
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


class QuietScheduler(RQScheduler):
    """RQ's scheduler process, ending with one line instead of a traceback when Redis goes away.

    The worker's maintenance starts it again (it takes the lock anew) once Redis is back.
    """

    def start(self) -> Any:
        # Stop signals wait across the fork until the scheduler's own handlers are in place: one
        # that came before would run the worker's inherited handler there and be lost, and the
        # worker's teardown would then wait for ever in its join of the scheduler.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by start() across the fork

    def work(self) -> None:
        # RQ's scheduler runs in a child of its worker; if that worker is killed (-9), nothing
        # stops the scheduler, which would live on as an orphan holding the scheduler lock.
        threading.Thread(target=self._stop_with_parent, args=(os.getppid(),), name="parent-watch",
                         daemon=True).start()
        try:
            super().work()
        except OUTAGE as exc:
            self.log.warning("Scheduler [PID %s]: Redis unreachable (%s); stopping until a worker restarts it",
                             os.getpid(), reason(exc))


    def _stop_with_parent(self, parent: int) -> None:
        while not self._stop_requested:
            if os.getppid() != parent:
                self.log.warning("Scheduler [PID %s]: its worker (PID %d) is gone; stopping", os.getpid(), parent)
                self._stop_requested = True  # the loop stops within its interval and releases the lock
                return
            time.sleep(1.0)


class OutageAware:
    """What both worker classes share: RQ's scheduler and command channel, quiet in an outage,
    and the remote control (``app.control``) of a worker that runs alone."""

    scheduler: Any
    connection: Any
    queues: Any
    serializer: Any
    log: Any
    name: str
    #: False where another answers for this worker: a prefork supervisor, a test worker's controller.
    answers_control = True
    #: Set by ``work()``: a ``--burst`` run is gone too soon to answer remote control.
    control_wanted = False
    control_node: ControlNode | None = None

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        # Listening before RQ registers the worker: one seen as started also answers app.control.
        if self.control_wanted and self.answers_control and getattr(self, "slot", None) is None:
            pool = "solo" if isinstance(self, SimpleWorker) else "fork"
            app = current_app()
            host = WorkersHost(self.name, [self], pool, priorities=app.amqp.priorities)
            self.control_node = start_control(app, self.name, host)
        super().bootstrap(*args, **kwargs)  # type: ignore[misc]

    def teardown(self) -> None:
        if self.control_node is not None:
            self.control_node.stop()
        super().teardown()  # type: ignore[misc]

    def _start_scheduler(self, burst: bool = False, logging_level: str | None = "INFO", *args: Any,
                         **kwargs: Any) -> None:
        # RQ's own, with QuietScheduler (RQ names its scheduler class inside the method).
        self.scheduler = QuietScheduler(self.queues, connection=self.connection, serializer=self.serializer,
                                        logging_level=logging_level or "INFO")
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return
        if not burst:
            self.scheduler.start()
            return
        try:
            self.scheduler.register_birth()
            self.scheduler.enqueue_scheduled_jobs()
        finally:
            self.scheduler.release_locks()
            self.scheduler.register_death()

    def clean_registries(self) -> None:
        """RQ's maintenance, minus its two unfenced recoveries.

        RQ's started-registry cleanup re-queues an abandoned job without checking that its entry
        is still expired (a sweep and a late beat could both act: the task would run twice), and
        its intermediate-queue cleanup fails a stuck job in RQ only, leaving its Celery state
        PENDING for ever. Both are done instead by the heartbeat sweep (:class:`recovery.Sweeper`),
        every few seconds and through the claim; the rest is RQ's own.
        """
        for queue in self.queues:
            if not queue.acquire_maintenance_lock():
                continue  # another worker is at it
            self.log.info("Worker %s: cleaning registries for queue: %s", self.name, queue.name)  # RQ's line
            options = {"name": queue.name, "connection": queue.connection, "job_class": queue.job_class,
                       "serializer": queue.serializer}
            for registry in (FinishedJobRegistry, FailedJobRegistry, DeferredJobRegistry, ReadyJobRegistry):
                registry(**options).cleanup()
            for rate_limit_registry in RateLimitRegistry.all(queue.connection):
                rate_limit_registry.cleanup()
            worker_registration.clean_worker_registry(queue)
            queue.release_maintenance_lock()
        self.last_cleaned_at = now()

    def dequeue_job_and_maintain_ttl(self, *args: Any, **kwargs: Any) -> Any:
        # RQ's blocking pop: a master demoted meanwhile is an outage (one line, a restart), not a traceback.
        return blocking(super().dequeue_job_and_maintain_ttl, *args, **kwargs)  # type: ignore[misc]

    def set_shutdown_requested_date(self) -> None:
        # Called from the SIGTERM handler: raising here would raise inside the running task.
        try:
            super().set_shutdown_requested_date()  # type: ignore[misc]
        except OUTAGE as exc:
            self.log.warning("Worker %s: stop requested; could not record it, Redis unreachable (%s)",
                             self.name, reason(exc))

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        # RQ logs every 2 s while Redis is away; the subscription comes back by itself.
        if not isinstance(exc, OUTAGE):
            raise exc
        if not hasattr(self, "_pubsub_say"):
            self._pubsub_say = Throttle(self.log)
        self._pubsub_say(logging.WARNING, "down", "Worker %s: command channel lost (%s); resubscribing",
                         self.name, reason(exc))
        time.sleep(2.0)


class OneLineOutage(logging.Filter):
    """Turn a log record carrying a Redis outage's traceback into one line with the reason.

    RQ's loop logs "found an unhandled exception, quitting..." with the traceback for any error
    between tasks (its suspension check, its state writes...); for an outage, the worker is
    started again once Redis answers (cli.run_worker), so the traceback is noise in the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OUTAGE):
            record.msg, record.args = f"{record.getMessage()} (Redis unreachable: {reason(error)})", ()
            record.exc_info, record.exc_text = None, None
        return True


class ForkingWorker(OutageAware, Worker):
    """RQ's forking worker with short heartbeats and Celery's rule for a horse that died."""

    job_class = TaskJob

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(isinstance(existing, OneLineOutage) for existing in self.log.filters):
            self.log.addFilter(OneLineOutage())

    def work(self, burst: bool = False, *args: Any, **kwargs: Any) -> bool:
        self.control_wanted = not burst
        return super().work(burst, *args, **kwargs)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return math.ceil(heartbeat_timing()[1])

    def set_state(self, state: str, pipeline: Any = None) -> None:
        # RQ sets IDLE right after a task; Redis going away at that moment made RQ's loop quit
        # with a traceback ("found an unhandled exception"). The state is cosmetic: the next
        # dequeue waits the outage out, and the state is written again with the next task.
        try:
            super().set_state(state, pipeline=pipeline)
        except OUTAGE as exc:
            self._state = state
            self.log.warning("Worker %s: could not record its state %r, Redis unreachable (%s)",
                             self.name, state, reason(exc))

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        # Also called right after each task: the same moment, the same cure as set_state.
        try:
            super().heartbeat(timeout, pipeline=pipeline)
        except OUTAGE as exc:
            self.log.warning("Worker %s: heartbeat failed, Redis unreachable (%s)", self.name, reason(exc))

    def handle_work_horse_killed(self, job: Job, retpid: int, ret_val: int, rusage: Any) -> None:
        if job.timeout and job.timeout > 0 and job.started_at is not None:
            ran = (datetime.now(timezone.utc) - job.started_at.replace(tzinfo=timezone.utc)).total_seconds()
            if ran >= job.timeout:  # RQ killed a task that ignored its hard time limit
                store_time_limit_failure(job, self.connection)
                return
        signum = os.WTERMSIG(ret_val) if ret_val and os.WIFSIGNALED(ret_val) else None
        reason = f"Worker exited prematurely: signal {signum}" if signum else f"Worker exited: {ret_val}"
        self._lost_outcome = recover_lost_job(self.connection, job.id, f"{reason} Job: {job.id}.")

    def handle_job_failure(self, job: Job, queue: Queue, started_job_registry: Any = None, exc_string: str = "",
                           execution: Any = None) -> None:
        # After a dead horse, recover_lost_job has already re-queued or failed the job; RQ's own
        # handling would mark a re-queued job FAILED again, so only the execution is cleaned up.
        outcome, self._lost_outcome = getattr(self, "_lost_outcome", None), None
        if outcome in ("requeued", "failed"):
            with self.connection.pipeline() as pipe:
                self.cleanup_execution(job, pipeline=pipe, execution=execution)
                pipe.execute()
            return
        stopped = self._stopped_job_id == job.id  # RQ clears it while it files the job as stopped
        super().handle_job_failure(job, queue, started_job_registry, exc_string, execution)
        if stopped:  # revoke(terminate=True): a canceled job, as a revoked waiting one
            with self.connection.pipeline() as pipe:
                file_terminated(job, pipe)
                pipe.execute()


class Slot:
    """What a supervised work process tells its supervisor: the task it runs, since when, and why it stops."""

    def __init__(self, context: Any) -> None:
        # Made in the supervisor: a child compares its parent with this, never with the parent it
        # first sees, which is already init when the supervisor died while the child started.
        self.supervisor = os.getpid()
        self.job_id = context.Array("c", 64, lock=False)
        self.started = context.Value("d", 0.0, lock=False)
        self.hard_limit = context.Value("d", 0.0, lock=False)
        self.stopping = context.Value("i", 0, lock=False)
        self.worker_name = context.Array("c", 64, lock=False)
        self.claim = context.Array("c", 128, lock=False)  # the running task's entry, <job id>:<execution id>

    def begin(self, job: Job, execution_id: str = "") -> None:
        self.stopping.value = 0
        self.claim.value = f"{job.id}:{execution_id}".encode()[:127] if execution_id else b""
        hard = Envelope.options_of(job).get("time_limit")
        hard = worker_state.time_limits.get(Envelope.name_of(job), (hard,))[0]  # the time_limit command's
        self.hard_limit.value = float(hard or 0)
        self.started.value = time.time()
        self.job_id.value = job.id.encode()[:63]

    def end(self) -> None:
        self.job_id.value = b""
        self.claim.value = b""
        self.started.value = 0.0

    @property
    def current(self) -> str | None:
        return self.job_id.value.decode() or None

    @property
    def current_claim(self) -> str | None:
        return self.claim.value.decode() or None


class InProcessWorker(OutageAware, SimpleWorker):
    """RQ's ``SimpleWorker`` with short heartbeats, reporting to a supervisor when it has one.

    The lean worker (:mod:`lean`) is the one in use; it replaces the per-task path, including
    the heartbeat (a timer thread), so only what it inherits is kept here.
    """

    slot: Slot | None = None
    job_class = TaskJob

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        return math.ceil(heartbeat_timing()[1])

    def kill_horse(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the running task (RQ's stop-job command, ``revoke(terminate=True)``).

        Under a supervisor the whole work process dies and is replaced, as a prefork child
        would; alone (``-P solo``) the task is interrupted with :class:`Terminated`.
        """
        if self.slot is not None:
            self.slot.stopping.value = 1
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)


def raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated("terminated")

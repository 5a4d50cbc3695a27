"""``-P prefork``: long-lived work processes that run tasks in-process, under a supervisor.

Each child is an :class:`InProcessWorker` and tells the supervisor, through shared memory,
which task it runs and since when. The supervisor replaces a child that exits, and:

* a child that died mid-task (a crash, ``kill -9``, the OOM killer): the task is re-queued
  or failed with ``WorkerLostError`` (:mod:`recovery`) at once, not after a heartbeat expires;
* a task past its hard time limit that did not stop by itself: the child is killed and the
  task fails with ``TimeLimitExceeded``;
* ``revoke(terminate=True)``: the child kills itself and the task stays ``REVOKED``;
* ``--max-tasks-per-child``: the child exits after that many tasks and a fresh one starts.

SIGTERM or SIGINT asks every child to finish its task and exit; after ``--grace-period``
seconds, or at a second signal, the children are killed and their tasks are recovered as
above, so a shutdown loses no task and runs none twice by itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from typing import Any

from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.serializers import JSONSerializer

from .. import keys, scripts
from ..utils.nodenames import default_nodename
from .canceled import file_terminated
from .classes import STOP_SIGNALS, InProcessWorker, Slot
from .hosts import SupervisorHost
from .pidbox import start_control
from .reach import (
    EXIT_NO_REDIS,
    EXIT_UNSURE_CLAIMS,
    FIRST_WAIT,
    MAX_WAIT,
    OUTAGE,
    Throttle,
    reason,
    sleep_unless,
    wait_for_redis,
)
from .recovery import (
    fail_what_follows,
    recover_lost_job,
    remove_from_started,
    store_time_limit_failure,
    time_limit_error,
    with_claim,
)

logger = logging.getLogger("app.celery_compat.worker")
#: Seconds a task may overrun its hard limit before the supervisor kills it (the task's own
#: SIGALRM raises TimeLimitExceeded first; this catches tasks that swallow it or block in C).
HARD_LIMIT_GRACE = 2.0
POLL_SECONDS = 0.2
#: A child that dies sooner than this after starting, with no task, is restarted after a backoff.
QUICK_DEATH_SECONDS = 5.0


class Child:
    """One work process and its slot."""

    def __init__(self, context: Any, index: int) -> None:
        self.index = index
        self.slot = Slot(context)
        self.process: Any = None
        self.started_at = 0.0
        self.restart_at: float | None = None  # a restart held back after quick deaths
        self.backoff = 0.0
        self.retiring = False  # pool_shrink: not replaced once it exits


class Supervisor:
    """Starts ``concurrency`` children, keeps them alive, and recovers the tasks of dead ones."""

    def __init__(self, app: Any, options: Any, run_child: Any, queue_names: list[str] | None = None) -> None:
        self.app = app
        self.options = options
        self.queue_names = queue_names or [app.conf.task_default_queue]
        self.run_child = run_child
        self.context = multiprocessing.get_context("fork")
        self.children = [Child(self.context, i) for i in range(options.concurrency)]
        self.stopping_since: float | None = None
        self.forced = False
        self.pending: list[Any] = []  # recoveries that waited for Redis
        self.exit_code = 0
        self.say = Throttle(logger)

    def start_child(self, child: Child) -> None:
        child.slot.end()
        child.restart_at, child.started_at = None, time.monotonic()
        # A stop signal between the fork and the child's own handler would run our handler, inherited,
        # in the child, and the stop would be lost there; one handled here while the child is being
        # made would miss it (it is not alive yet). Blocked meanwhile, a stop waits for both to be ready.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            child.process = self.context.Process(target=self.run_child, args=(child.slot, child.index),
                                                 name=f"worker-{child.index}", daemon=False)
            child.process.start()
            if self.stopping_since is not None:  # asked to stop while deciding to start it
                os.kill(child.process.pid, signal.SIGTERM)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def request_stop(self, signum: int, frame: Any) -> None:
        if self.stopping_since is None:
            logger.info("supervisor: warm shutdown, letting running tasks finish (grace %ss)",
                        self.options.grace_period)
            self.stopping_since = time.monotonic()
            for child in self.children:
                child.restart_at = None
            for child in self.alive():
                os.kill(child.process.pid, signal.SIGTERM)
        else:
            logger.warning("supervisor: second signal, stopping running tasks now")
            self.forced = True

    def alive(self) -> list[Child]:
        return [child for child in self.children if child.process is not None and child.process.is_alive()]

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        # The supervisor answers app.control for its work processes, as one node (Celery's),
        # listening before they start: a worker seen as started answers ping().
        hostname = default_nodename(getattr(self.options, "hostname", None))
        control = start_control(self.app, hostname, SupervisorHost(hostname, self))
        self._forget_totals(hostname)
        for child in self.children:
            self.start_child(child)
        try:
            return self._supervise()
        finally:
            control.stop()

    def grow(self, n: int) -> None:
        """Start ``n`` more work processes (``pool_grow``)."""
        for _ in range(n):
            child = Child(self.context, max((child.index for child in self.children), default=-1) + 1)
            self.children.append(child)
            self.start_child(child)

    def shrink(self, n: int) -> None:
        """Retire ``n`` work processes, idle ones first, keeping at least one (``pool_shrink``).

        A retired process gets a warm stop: it finishes its running task, if any, and is not replaced.
        """
        staying = [child for child in self.children if not child.retiring]
        candidates = sorted(staying, key=lambda child: (bool(child.slot.current), -child.index))
        for child in candidates[:max(0, min(n, len(staying) - 1))]:
            child.retiring = True
            child.restart_at = None
            if child.process is not None and child.process.is_alive():
                os.kill(child.process.pid, signal.SIGTERM)

    def _supervise(self) -> int:
        while True:
            self.check_children()
            self._run_pending()
            if not any(child.process is not None or child.restart_at is not None for child in self.children):
                if not self.pending:
                    return self.exit_code
                self.stopping_since = self.stopping_since or time.monotonic()  # burst mode ends here too
                if self.forced or time.monotonic() - self.stopping_since > self.options.grace_period:
                    # RQ's own maintenance (any worker) finds these tasks through their heartbeats.
                    logger.error("supervisor: Redis unreachable at shutdown; %d lost tasks left to maintenance",
                                 len(self.pending))
                    return 1
            time.sleep(POLL_SECONDS)

    def check_children(self) -> None:
        for child in list(self.children):  # a retired child leaves the list
            process = child.process
            if process is None:
                if child.retiring:
                    self.children.remove(child)  # retired while waiting for a restart
                elif self.stopping_since is not None:
                    child.restart_at = None  # a restart held back by a backoff is dropped: we are stopping
                elif child.restart_at is not None and time.monotonic() >= child.restart_at:
                    self.start_child(child)
                continue
            if process.is_alive():
                self._enforce_limits(child)
                continue
            process.join()
            exitcode = process.exitcode
            quick_death = bool(exitcode) and not child.slot.current and (
                time.monotonic() - child.started_at < QUICK_DEATH_SECONDS)
            self._after_exit(child, exitcode)
            child.process = None
            if exitcode == EXIT_NO_REDIS:
                self.exit_code = 1  # a --burst child gave up on Redis
            finished_burst = self.options.burst and exitcode in (0, EXIT_NO_REDIS, EXIT_UNSURE_CLAIMS)
            if child.retiring:
                self.children.remove(child)
            elif self.stopping_since is None and not finished_burst:
                self._restart(child, quick_death, exitcode)

    def _restart(self, child: Child, quick_death: bool, exitcode: int | None) -> None:
        """Start a replacement now, or after a backoff when children keep dying as they start."""
        child.backoff = min(max(child.backoff * 2, FIRST_WAIT), MAX_WAIT) if quick_death else 0.0
        if not child.backoff:
            self.start_child(child)
            return
        self.say(logging.WARNING, f"quick-death-{child.index}",
                 "supervisor: worker-%d exited as it started (exit code %s); restarting it in %.0f s",
                 child.index, exitcode, child.backoff)
        child.restart_at = time.monotonic() + child.backoff

    def _enforce_limits(self, child: Child) -> None:
        slot = child.slot
        job_id = slot.current
        if self.stopping_since is not None:
            overdue = time.monotonic() - self.stopping_since > self.options.grace_period
            if job_id and (self.forced or overdue):
                logger.warning("supervisor: killing worker-%d, still running %s at shutdown", child.index, job_id)
                os.kill(child.process.pid, signal.SIGKILL)
            return
        limit = slot.hard_limit.value
        if job_id and limit and time.time() - slot.started.value > limit + HARD_LIMIT_GRACE:
            logger.error("supervisor: task %s ran past its hard time limit (%ss); killing worker-%d",
                         job_id, limit, child.index)
            slot.hard_limit.value = -1.0  # remembered as the reason of the coming death
            os.kill(child.process.pid, signal.SIGKILL)

    def _after_exit(self, child: Child, exitcode: int | None) -> None:
        job_id, claim = child.slot.current, child.slot.current_claim
        stopping, hard_limit = child.slot.stopping.value, child.slot.hard_limit.value
        worker_name = child.slot.worker_name.value.decode()
        child.slot.end()
        if not job_id and exitcode == 0 and self.stopping_since is not None and not self.forced:
            return  # a warm stop between tasks: it ran nothing, and it starts no task once asked to stop
        if job_id and stopping:
            self.pending.append(lambda: self._mark_stopped(job_id, claim))
        elif job_id and hard_limit < 0:
            self.pending.append(lambda: self._mark_time_limit(job_id, claim))
        else:
            # Whatever the exit code (a forced stop exits 0 too): recover the task it ran, and any
            # it had claimed but not begun (it may die between taking a task and writing its slot).
            signum = -exitcode if exitcode and exitcode < 0 else None
            reason = f"signal {signum} ({signal.Signals(signum).name})" if signum else f"exit code {exitcode}"
            self.pending.append(lambda: self._recover(job_id, claim, worker_name, reason))
        pid = child.process.pid
        self.pending.append(lambda: self._unregister(worker_name, pid))
        self._run_pending()

    def _forget_totals(self, hostname: str) -> None:
        """``stats()["total"]`` counts since this start, as Celery's: not an earlier run's of the name."""
        try:
            self.app.connection.delete(keys.node_totals(hostname))
        except OUTAGE:
            pass  # the work processes wait for Redis anyway; the old counts then stay

    def _unregister(self, worker_name: str, pid: int) -> None:
        """Take a dead work process's registration out of RQ's worker lists.

        It died without unregistering, and RQ refuses a new worker of a live registration's name:
        the successor of a ``-n NAME -c 1`` process has that name, and would fail to start until
        the dead one's registration expired. Dashboards also stop listing a worker that is gone.
        Only the dead process's own (its pid): run late, the name may be its successor's by then.
        """
        if not worker_name:
            return
        unregister_dead(self.app.connection, worker_name, pid,
                        self.app.amqp.priorities.consume_order(self.queue_names))

    def _recover(self, job_id: str | None, claim: str | None, worker_name: str, reason: str) -> None:
        # Through the dead run's claim only: if the task was meanwhile taken from it (the process
        # froze past its heartbeat, or stopped its copy on finding it lost), it is not touched.
        if job_id:
            recover_lost_job(self.app.connection, job_id, f"Worker exited prematurely: {reason} Job: {job_id}.",
                             app=self.app, entry=claim)
        for entry in set(self._claimed_by(worker_name)) - {claim}:
            # Claimed, never begun: it did not run, so it goes back whatever its options.
            claimed = entry.split(":", 1)[0]
            if claimed != job_id:
                recover_lost_job(self.app.connection, claimed, f"Claimed by a worker that exited ({reason})",
                                 app=self.app, never_started=True, entry=entry)

    def _run_pending(self) -> None:
        """Do the recoveries owed; one that meets a Redis outage waits for the next round."""
        while self.pending:
            try:
                self.pending[0]()
            except OUTAGE as exc:
                self.say(logging.WARNING, "pending", "supervisor: Redis unreachable (%s); will recover %d lost "
                         "task(s) when it is back", reason(exc), len(self.pending))
                return
            self.pending.pop(0)
            if not self.pending:
                self.say.clear()

    def _claimed_by(self, worker_name: str) -> list[str]:
        """Started-registry entries (claims) of tasks whose job names ``worker_name`` as the worker running them."""
        if not worker_name:
            return []
        connection = self.app.connection
        entries = [entry.decode() for name in self.app.amqp.priorities.consume_order(self.queue_names)
                   for entry in connection.zrange(keys.started(name), 0, -1)]
        if not entries:
            return []
        with connection.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.hget(keys.job(entry.split(":", 1)[0]), "worker_name")
            owners = pipe.execute()
        mine = worker_name.encode()
        return [entry for entry, owner in zip(entries, owners, strict=True) if owner == mine]

    def _fetch_started(self, job_id: str) -> Job | None:
        job = Job.fetch(job_id, connection=self.app.connection, serializer=JSONSerializer)
        return job if job.get_status(refresh=False) == JobStatus.STARTED else None

    def _close_failed(self, job: Job, claim: str | None, status: JobStatus, exc_string: str,
                      time_limit: bool = False) -> None:
        # One transaction: a client that sees the task's FAILURE also sees RQ's FAILED. Through
        # the dead run's claim: a task taken from it meanwhile belongs to its new run.
        connection = self.app.connection

        def write(pipe: Any) -> None:
            if time_limit:
                store_time_limit_failure(job, connection, app=self.app, pipeline=pipe)
            record_job_failure(job, exc_string, pipe)
            if status == JobStatus.STOPPED:  # revoke(terminate=True): a canceled job, as a revoked waiting one
                file_terminated(job, pipe)
            elif status != JobStatus.FAILED:
                job.set_status(status, pipeline=pipe)

        if claim:
            if not with_claim(connection, keys.started(job.origin), claim, write):
                return  # the run is no longer ours to close: its new run decides what follows
        else:
            with connection.pipeline() as pipe:
                remove_from_started(connection, job, pipe)
                write(pipe)
                pipe.execute()
        if time_limit:
            fail_what_follows(job, time_limit_error(job), connection, self.app)

    def _mark_stopped(self, job_id: str, claim: str | None = None) -> None:
        job = self._fetch_started(job_id)
        if job is not None:
            self._close_failed(job, claim, JobStatus.STOPPED, "Stopped by revoke(terminate=True)")
        logger.info("supervisor: task %s terminated by revoke; worker replaced", job_id)

    def _mark_time_limit(self, job_id: str, claim: str | None = None) -> None:
        job = self._fetch_started(job_id)
        if job is not None:
            self._close_failed(job, claim, JobStatus.FAILED, "TimeLimitExceeded: killed by the supervisor",
                               time_limit=True)


def unregister_dead(connection: Any, worker_name: str, pid: int, list_names: list[str]) -> bool:
    """Remove ``worker_name``'s registration if it is still process ``pid``'s; True when removed."""
    worker_key = keys.worker(worker_name)
    script_keys = [worker_key, keys.WORKERS, *(keys.workers_of_queue(name) for name in list_names)]
    return bool(connection.eval(scripts.UNREGISTER_DEAD, len(script_keys), *script_keys, str(pid)))


def child_main(app: Any, options: Any, slot: Slot, index: int, make_worker: Any) -> None:
    """A work process: SIGINT is the supervisor's business (the terminal sends it to all of us).

    Until the worker installs its own handlers (after it registered and started the scheduler),
    a SIGTERM from the supervisor is only remembered: the supervisor's handler, inherited
    through fork, must never run here, and a stop that comes that early must not be lost.
    The worker is built only once Redis answers, and built again after Redis failed under it,
    so an outage costs one log line per attempt, never a traceback or a respawn.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_early = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_early.set())
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked by start_child across the fork
    app._connection = None  # never share a socket with the parent
    who, wait = f"worker-{index}", FIRST_WAIT
    unsure: dict[str, list[str]] = {}  # claims whose reply was lost, carried to the next worker built
    while True:
        signal.signal(signal.SIGTERM, lambda signum, frame: stop_early.set())
        if not wait_for_redis(lambda: app.connection, app.broker_url, burst=options.burst,
                              should_stop=stop_early.is_set, who=who):
            sys.exit(EXIT_NO_REDIS if options.burst and not stop_early.is_set() else 0)
        worker = None
        try:
            worker = make_worker(app, options, index)
            getattr(worker, "unsure_claims", {}).update(unsure)
            _work(worker, options, slot, stop_early)
            _leave(worker)
            return
        except OUTAGE as exc:
            unsure = dict(getattr(worker, "unsure_claims", unsure))
            if stop_early.is_set() or getattr(worker, "_stop_requested", False):
                _leave(worker)
                return
            if options.burst:
                logger.error("%s: Redis failed (%s); giving up (--burst)", who, reason(exc))
                sys.exit(EXIT_NO_REDIS)
            logger.warning("%s: Redis failed (%s); starting again in %.0f s", who, reason(exc), wait)
        signal.signal(signal.SIGTERM, lambda signum, frame: stop_early.set())
        if not sleep_unless(wait, stop_early.is_set):
            return
        wait = min(wait * 2, MAX_WAIT)


def _leave(worker: Any) -> None:
    """Exit non-zero if claims whose reply was lost are left: the supervisor then gives back what
    was claimed in this worker's name (``_claimed_by``), instead of the sweep failing it."""
    if getattr(worker, "unsure_claims", None):
        logger.warning("%s: leaving with tasks of lost claim replies to give back; its supervisor will",
                       getattr(worker, "name", "worker"))
        sys.exit(EXIT_UNSURE_CLAIMS)


def _work(worker: Any, options: Any, slot: Slot, stop_early: threading.Event) -> None:
    worker.stop_early = stop_early
    if not isinstance(worker, InProcessWorker):
        raise TypeError(f"the prefork pool runs InProcessWorker children, not {type(worker).__name__}")
    worker.slot = slot
    worker.node_name = default_nodename(getattr(options, "hostname", None))  # the supervisor's: its rate limits
    slot.worker_name.value = worker.name.encode()[:63]
    worker.work(burst=options.burst, logging_level=options.loglevel.upper(),
                with_scheduler=not options.without_scheduler, max_jobs=options.max_tasks_per_child)

"""The lean worker: RQ's data model, a fraction of RQ's Redis traffic per task.

:class:`LeanWorker` keeps what RQ's worker does once (registration, the command channel for
``stop-job``, maintenance, the scheduler, signals) and replaces its per-task path:

* claiming a task is one Lua call that pops its id and marks it started (when the queues are
  empty, a blocking pop first, as RQ does), and returns only the job fields the task needs
  (see claimed.py);
* the result, the end of the task and RQ's registries go to Redis in one pipelined round trip,
  which after a success also claims the next task: a busy worker makes one round trip per task;
* heartbeats and the worker's counters are written by a timer thread every few seconds, not
  per task.

RQ's per-task bookkeeping takes about 60 Redis commands; this takes about ten.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import threading
import time
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from rq import worker_registration
from rq.exceptions import StopRequested
from rq.job import Job, JobStatus, _current_job
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.utils import utcformat
from rq.worker import WorkerStatus

from .. import keys, scripts, states
from .._state import current_app
from ..backends.redis import Claim, held_success, hold_claim, release_claim
from ..finished import facts_of, job_keep_seconds
from ..protocol import Envelope
from ..serialization import scrub
from ..series import SAMPLE_STEP, TaskSeries, sample_queues
from ..stats import TaskStats
from ..utils.time import whole_second_after
from .canceled import file_terminated
from .claimed import claimed_job, complete
from .classes import InProcessWorker, heartbeat_timing, idle_poll_interval
from .guard import refuse, runnable
from .job import failure_text, requeue_delay, retry_delay, retry_list, run_job
from .rate_limits import WAIT_IN_WORKER, RateLimits
from .reach import MAX_WAIT, OUTAGE, UNANSWERED, Throttle, blocking, reason, send_once, sleep_unless, was_sent
from .recovery import Sweeper, recover_lost_job, with_claim

#: How often a supervised work process checks that its supervisor still lives (seconds).
PARENT_CHECK_INTERVAL = 1.0

logger = logging.getLogger("app.celery_compat.worker")


def _execution_id() -> str:
    """A claim's execution id: 48 random bits, as uuid4().hex[:12] was, for a fraction of its cost."""
    return os.urandom(6).hex()


def _rq_now() -> tuple[datetime, str]:
    moment = datetime.now(timezone.utc)
    return moment, utcformat(moment)


class LeanWorker(InProcessWorker):
    """An in-process RQ worker whose hot path is a few Lua calls and pipelines."""

    #: Set by a supervised child's early SIGTERM handler (see pool.child_main).
    stop_early: threading.Event | None = None
    #: The worker node this worker is part of, whose rate limits it shares (see rate_limits):
    #: the prefork supervisor's, the test worker's; alone, the worker is its own node.
    node_name: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claim_next = self.connection.register_script(scripts.CLAIM_NEXT)
        self._claim_given = self.connection.register_script(scripts.CLAIM_GIVEN)
        self._finish = self.connection.register_script(scripts.FINISH_SUCCESS)
        self._beat_script = self.connection.register_script(scripts.BEAT)
        self._running: tuple[Job, str] | None = None
        self._waiting: tuple[Job, str] | None = None  # claimed, waiting for its rate-limit slot
        self._task_active = False  # the task's own code is running (not yet its outcome being recorded)
        self._claiming = False
        # The next task's claim, made in the round trip that recorded the last success (see
        # _record_success): (the claim script's reply, its execution id, its moment), or None.
        self._next_claim: tuple[Any, str, datetime] | None = None
        self._may_claim_next = False
        # Claims whose reply was lost, by execution id: each may have taken a task that nobody
        # runs (see _give_back_unsure); with the started registries it may have entered.
        self._unsure: dict[str, list[str]] = {}
        # The loop and the heartbeat thread both give them back (whichever reaches Redis first).
        self._unsure_lock = threading.Lock()
        # Set once the loop has ended: StopRequested raised into the teardown (while it waits for
        # the scheduler's process) would kill the process with a traceback half-way through it.
        self._leaving = False
        self._done = {"successful": 0, "failed": 0, "working_time": 0.0}
        self._stats = TaskStats()
        self._series = TaskSeries()
        # Each queue's started registry, by queue key: RQ makes a registry object per access.
        self._started_keys = {queue.key: queue.started_job_registry.key for queue in self.queues}
        self._finished_keys: dict[str, str] = {}  # the same for the finished ones, filled as used
        self._queues_by_key = {queue.key.encode(): queue for queue in self.queues}  # as the claim names them
        self.beat_interval, self.beat_ttl = heartbeat_timing()
        self.idle_poll_interval = idle_poll_interval()
        self._job_keep = job_keep_seconds(current_app().conf)
        # Every worker sweeps for dead workers' tasks on each beat (see recovery.Sweeper).
        self._sweeper = Sweeper(self.connection, [queue.name for queue in self.queues], grace=self.beat_ttl)

    def _shutdown(self) -> None:
        # RQ raises StopRequested from the signal handler when the worker is not BUSY. Between
        # taking a task and starting it we are not BUSY yet, but raising there would strand the
        # task: stop after it instead, as for a running one.
        if self._claiming or self._leaving:
            self._stop_requested = True
            return
        # Also remembered: RQ code that catches Exception (its maintenance) would swallow the raise.
        self._stop_requested = True
        super()._shutdown()

    def get_current_job_id(self) -> str | None:
        """The running task's id: RQ's stop-job command (revoke with terminate) asks for it."""
        running = self._running
        return running[0].id if running else None

    # -- the loop ------------------------------------------------------------------------------
    def work(self, burst: bool = False, logging_level: str | None = "INFO", max_jobs: int | None = None,
             with_scheduler: bool = False, **kwargs: Any) -> bool:
        self.control_wanted = not burst  # bootstrap starts the remote control (classes.OutageAware)
        self.bootstrap(logging_level)
        if with_scheduler:
            self._start_scheduler(burst, logging_level)
        self._install_signal_handlers()
        if self.stop_early is not None and self.stop_early.is_set():
            self._stop_requested = True  # asked to stop while starting: take no task
        if self.slot is not None:
            # The terminal's Ctrl-C reaches every process of the group; the supervisor decides.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_beating = threading.Event()
        completed = 0
        self._rates = RateLimits(current_app(), self.connection, self.node_name or self.name)
        self._burst = burst
        try:
            # In the try: its first look at the supervisor may stop us (SIGTERM) while it starts.
            threading.Thread(target=self._beat_forever, args=(stop_beating,), name="heartbeat", daemon=True).start()
            # A next task already claimed (see _add_next_claim) runs even when a stop came meanwhile,
            # as a running one does.
            while not self._stop_requested or self._next_claim is not None:
                if self._next_claim is None and self.should_run_maintenance_tasks:
                    self._until_redis(self.run_maintenance_tasks)
                claimed = self._claim(None if burst else self.dequeue_timeout)
                if claimed is None:
                    if burst:
                        break
                    continue
                if self._over_rate(*claimed):
                    continue
                self._may_claim_next = max_jobs is None or completed + 1 < max_jobs
                self._perform(*claimed)
                completed += 1
                if max_jobs is not None and completed >= max_jobs:
                    break
        except StopRequested:
            pass
        finally:
            self._leaving = True
            stop_beating.set()
            self._give_back_next_claim()
            self._give_back_unsure_quietly()
            self._flush_counters()
            self._teardown_quietly()
        return bool(completed)

    def _give_back_next_claim(self) -> None:
        """A task claimed for next that the loop will not run (it ended by an error): back to its queue.

        Never started, so re-queued whatever its options and not counted as a redelivery; if Redis
        cannot be reached, the heartbeat sweep recovers it once its entry expires.
        """
        if self._next_claim is None:
            return
        (reply, execution_id, _), self._next_claim = self._next_claim, None
        job_id = reply[1].decode()
        try:
            recover_lost_job(self.connection, job_id, "Worker stopped before starting it", never_started=True,
                             entry=f"{job_id}:{execution_id}")
        except redis.exceptions.RedisError as exc:
            self.log.warning("Worker %s: could not give back task %s (%s)", self.name, job_id, reason(exc))

    def _unsure_of(self, execution_id: str) -> None:
        """Remember a claim that may have run in Redis though its reply was lost (see _give_back_unsure)."""
        with self._unsure_lock:
            self._unsure[execution_id] = list(self._started_keys.values())

    def _give_back_unsure(self) -> None:
        """Give back the tasks taken by claims whose reply was lost: unbegun, to the front of their queues.

        Such a claim ran in Redis or not. If it ran, its task sits in a started registry under an
        entry nobody beats, and the heartbeat sweep would take it for abandoned (WorkerLostError,
        or a counted redelivery) though it never began; Celery's broker would redeliver the
        unacknowledged message. Rare, so a scan: the started registries hold only running tasks,
        and an execution id is one claim's alone (a claim is never sent twice: see _execute_once).
        Until Redis answers, the scan fails and the caller waits, as for the claim itself. The
        heartbeat thread also calls this after each beat, before it sweeps: the loop's next claim
        may come only after a long backoff, and the sweep must not find that entry first.
        """
        with self._unsure_lock:
            # Each registry read once for every unsure claim (several pile up in a long outage).
            for registry in {registry for registries in self._unsure.values() for registry in registries}:
                for raw in self.connection.zrange(registry, 0, -1):
                    entry = raw.decode()
                    job_id, _, execution_id = entry.rpartition(":")
                    if execution_id in self._unsure:
                        self._give_back(job_id, entry)
            self._unsure.clear()  # on an error above, all again: a give-back is fenced by its entry

    @property
    def unsure_claims(self) -> dict[str, list[str]]:
        """Claims whose reply was lost, their tasks not yet given back: execution id to started registries.

        A prefork work process that leaves with some exits non-zero, so that its supervisor gives
        back the tasks claimed in its name (pool.py).
        """
        return self._unsure

    def _give_back(self, job_id: str, entry: str) -> None:
        try:
            recover_lost_job(self.connection, job_id, "its claim's reply was lost", never_started=True, entry=entry)
        except redis.exceptions.RedisError:
            raise  # the caller tries again once Redis answers
        except Exception:  # a job that cannot be read: the sweep's, as any abandoned task (never this thread's end)
            self.log.exception("Worker %s: could not give back task %s", self.name, job_id)

    def _give_back_unsure_quietly(self) -> None:
        try:
            self._give_back_unsure()
        except redis.exceptions.RedisError as exc:
            self.log.warning("Worker %s: could not look for tasks claimed by calls whose reply was lost (%s); "
                             "the heartbeat sweep will recover them", self.name, reason(exc))

    def _teardown_quietly(self) -> None:
        try:
            self.teardown()
        except OUTAGE as exc:
            # Its registration expires by itself (worker_ttl); its running task, if any, is the
            # supervisor's or maintenance's to recover.
            self.log.warning("Worker %s: stopped without unregistering, Redis unreachable (%s)",
                             self.name, reason(exc))

    def _claim(self, timeout: int | None) -> tuple[Job, Queue, str] | None:
        """The next job, already marked started, or None when the wait ran out."""
        wait = 1.0
        say = Throttle(self.log)  # one line per outage (and every 30 s), not one per retry
        while True:
            try:
                return self._claim_once(timeout)
            except OUTAGE as exc:
                # The claim is one script: it failed as a whole, so a stop may come through now.
                self._claiming = False
                if self._stop_requested:
                    raise StopRequested() from exc
                say(logging.WARNING, reason(exc), "Worker %s: cannot reach Redis (%s); retrying, up to %.0f s apart",
                    self.name, reason(exc), MAX_WAIT)
                if not sleep_unless(wait, lambda: self._stop_requested):
                    raise StopRequested() from exc
                wait = min(wait * 2, MAX_WAIT)

    def _claim_once(self, timeout: int | None) -> tuple[Job, Queue, str] | None:
        if self._unsure:  # a claim's reply was lost: its task first, before another claim
            self._give_back_unsure()
        if self._next_claim is not None:
            (claimed, execution_id, moment), self._next_claim = self._next_claim, None
            return self._claimed(claimed, execution_id, moment)
        execution_id = _execution_id()
        moment = datetime.now(timezone.utc)
        queue_keys = [queue.key for queue in self._ordered_queues]
        claimed = self._claim_from_lists(queue_keys, execution_id)
        if claimed is None:
            if timeout is None or self._stop_requested:
                # Burst mode and the queues are empty, or a stop came during the claim: without
                # this check the worker would block in the pop below for the whole timeout.
                return None
            self.set_state(WorkerStatus.IDLE)
            claimed = self._wait_and_claim(queue_keys, timeout, execution_id)
            if claimed is None:
                return None
            # Started now, not when the wait began: RQ saves this with the outcome (it read as
            # earlier than the task's creation).
            moment = datetime.now(timezone.utc)
        return self._claimed(claimed, execution_id, moment)

    def _claimed(self, claimed: Any, execution_id: str, moment: datetime) -> tuple[Job, Queue, str]:
        """The job, its queue and execution id from a claim script's reply."""
        queue_key, job_id, values, marked = claimed
        job = claimed_job(self.job_class, job_id.decode(), self.connection, self.serializer, values, moment, self.name)
        job.revoked = job.revoked or bool(marked)
        queue = self._queues_by_key.get(queue_key)
        if queue is None:  # a queue added since the start (add_consumer)
            queue = self._queues_by_key[queue_key] = next(q for q in self._ordered_queues
                                                           if q.key == queue_key.decode())
        return job, queue, execution_id

    def _claim_from_lists(self, queue_keys: list[str], execution_id: str) -> Any:
        """Pop the first id of the first non-empty list and mark it started, in one script; or None."""
        script_keys, args = self._claim_next_call(queue_keys, execution_id)[:2]
        self._claiming = True
        try:
            claimed = self._send_claim(script_keys, args)
        except BaseException as exc:
            # Cut off once sent, whatever cut it (a lost reply, a second Ctrl-C, a signal mid-read):
            # it may have run.
            if was_sent(exc):
                self._unsure_of(execution_id)
            raise
        if claimed is None:
            self._claiming = False
        return claimed

    def _send_claim(self, script_keys: list, args: list) -> Any:
        """CLAIM_NEXT alone, sent once (see _execute_once)."""
        command = [(("EVALSHA", self._claim_next.sha, len(script_keys), *script_keys, *args), {})]
        reply = send_once(self.connection, command)[0]
        if isinstance(reply, redis.exceptions.NoScriptError):  # Redis restarted and forgot it: nothing ran
            self.connection.script_load(scripts.CLAIM_NEXT)
            reply = send_once(self.connection, command)[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _claim_next_call(self, queue_keys: list[str], execution_id: str,
                         now: tuple[datetime, str] | None = None) -> tuple[list, list, datetime]:
        """CLAIM_NEXT's keys and arguments, and the moment it stamps as the start (``now``, or now)."""
        moment, stamp = now or _rq_now()
        score = round(moment.timestamp() + self.beat_ttl, 3)
        registries = [self._started_keys[key] for key in queue_keys]
        return (queue_keys + registries, [self.name, stamp, score, execution_id, keys.JOB_PREFIX,
                                          *keys.REVOKED_PREFIXES], moment)

    def _wait_and_claim(self, queue_keys: list[str], timeout: int, execution_id: str) -> Any:
        # A blocking move, as RQ's own: the id waits in RQ's intermediate list (which the
        # heartbeat sweep rescues) until the claim script takes it out, so a worker that dies in
        # between loses nothing. Redis has no blocking move from several lists (a blocking pop
        # would hand the id to this process alone): with several (a queue's priority lists, more
        # queues), the wait blocks on the first only, a short while at a time, and between waits
        # claims from all of them in priority-major order with the claim script.
        intermediate = keys.intermediate(queue_keys[0])
        deadline = time.monotonic() + timeout
        while True:
            wait = timeout if len(queue_keys) == 1 else min(self.idle_poll_interval, timeout)
            job_id = blocking(self.connection.blmove, queue_keys[0], intermediate, wait, "LEFT", "RIGHT")
            if job_id:
                break
            if len(queue_keys) == 1 or self._stop_requested:
                return None
            claimed = self._claim_from_lists(queue_keys, execution_id)
            if claimed is not None or self._stop_requested or time.monotonic() >= deadline:
                return claimed
        queue_key, lrem = queue_keys[0], "1"
        # The id is out of its queue now: claim it even if Redis fails or a stop arrives
        # meanwhile, or no queue and no registry would hold it any more.
        self._claiming = True

        # CLAIM_GIVEN may be sent again (by redis-py or by _until_redis): with the same execution
        # id, it finds its own entry and returns the same task, never another.
        def claim_popped() -> Any:
            moment, stamp = _rq_now()
            score = round(moment.timestamp() + self.beat_ttl, 3)
            started = keys.started(keys.queue_name(queue_key))
            return self._claim_given(keys=[queue_key, intermediate, started, keys.job(job_id.decode())],
                                     args=[job_id, self.name, stamp, score, execution_id, lrem,
                                           *keys.REVOKED_PREFIXES])

        claimed = self._until_redis(claim_popped)
        if claimed is None:
            self._claiming = False
        return claimed

    # -- rate limits ---------------------------------------------------------------------------
    def _over_rate(self, job: Job, queue: Queue, execution_id: str) -> bool:
        """Hold a claimed task until its slot under its task's rate limit; True when it was put back.

        Before the task is begun (no slot written, no time limit running): a near slot is waited
        for here, still claimed and its claim beaten (a ``--burst`` worker's wait may outlast the
        heartbeat TTL); a later one sends the task back to RQ's scheduled registry, as a
        ``countdown`` would, uncounted, and so does a stop during the wait. A ``--burst`` worker
        waits for every slot: it is there to drain its queues, and would leave.
        """
        interval = self._rates.interval(job)
        if not interval:
            return False
        slot = self._until_redis(self._rates.slot, job, interval)
        wait = slot - time.time()
        if wait <= WAIT_IN_WORKER or self._burst:
            if wait <= 0 or self._wait_for_slot(job, execution_id, wait):
                return False
        self._until_redis(self._put_back, job, queue, execution_id, slot)
        self._claiming = False
        return True

    def _wait_for_slot(self, job: Job, execution_id: str, wait: float) -> bool:
        """Sleep until the slot, the claim beaten meanwhile; False when a stop came first."""
        self._waiting = (job, execution_id)  # the heartbeat thread beats it, as a running task's
        try:
            return sleep_unless(wait, lambda: self._stop_requested)
        finally:
            self._waiting = None

    def _put_back(self, job: Job, queue: Queue, execution_id: str, slot: float) -> None:
        def write(pipe: Any) -> None:
            queue.schedule_job(job, whole_second_after(datetime.fromtimestamp(slot, timezone.utc)), pipeline=pipe)
            self._rates.remember(pipe, job, slot)

        if self._if_still_ours(queue, job, execution_id, write):
            self.log.info("Task %s[%s] held by its rate limit for %.1f s", Envelope.name_of(job), job.id,
                          slot - time.time())

    # -- one task ------------------------------------------------------------------------------
    def _perform(self, job: Job, queue: Queue, execution_id: str) -> None:
        self._state = WorkerStatus.BUSY
        self._claiming = False
        self._running = (job, execution_id)
        entry = f"{job.id}:{execution_id}"
        # Every state this task writes from now on is fenced with its claim (see scripts.FENCED_STORE).
        hold_claim(job.id, Claim(keys.started(job.origin), entry, job.key, execution_id, success_in_finish=True))
        if self.slot is not None:
            self.slot.begin(job, execution_id)
        started = time.monotonic()
        pipe = self.connection.pipeline(transaction=False)
        token = _current_job.set(job)
        outcome_name = "failed"
        try:
            self._task_active = True
            try:
                record, argument, outcome_name = self._run(job, pipe)
            finally:
                self._task_active = False  # from here on a missing claim means "finished" too
            self._until_redis(record, job, queue, execution_id, argument)
        except BaseException:
            # A forced stop (SystemExit, KeyboardInterrupt) is no outcome of the task: it stays
            # STARTED, and the worker-lost rule applies (the supervisor, or RQ's maintenance).
            if self.slot is None:
                self._until_redis(lambda: recover_lost_job(self.connection, job.id, "Worker stopped by force",
                                                           entry=entry))
            raise
        finally:
            release_claim(job.id)
            _current_job.reset(token)
            elapsed = time.monotonic() - started
            self._done["working_time"] += elapsed
            task_name = Envelope.name_of(job)
            self._stats.observe(task_name, elapsed, outcome_name)
            self._series.observe(task_name, elapsed, outcome_name)
            self._running = None
            if self.slot is not None:
                self.slot.end()
            self._state = WorkerStatus.IDLE

    def _run(self, job: Job, pipe: Any) -> tuple[Any, Any, str]:
        """Run the job's task and say how to record it: (record method, its argument, outcome name).

        The trace's outcome is mapped to RQ's records here, once: a success's result is already
        on ``pipe``, a failure keeps the traceback the trace formatted, a retry its delay.
        """
        try:
            if not runnable(job):
                raise refuse(job)  # never import or call what a job hash names, nor what it cannot decode
            outcome = run_job(job, pipeline=pipe)
            state = outcome.state if outcome is not None else states.SUCCESS
            if state in (states.FAILURE, states.REVOKED):
                return self._record_failure, (failure_text(outcome), pipe), "failed"
            if state == states.RETRY:
                return self._record_retry, (retry_delay(job, outcome.retry), retry_list(job, outcome.retry)), "retried"
            if state == states.REJECTED:
                if outcome.retval.requeue:  # back to the queue, as a broker does (see requeue_delay)
                    return self._record_retry, (requeue_delay(job), None), "retried"
                return self._record_failure, (failure_text(outcome), pipe), "failed"
            return self._record_success, pipe, "succeeded"
        except Exception as exc:  # every failure is recorded, as RQ does
            return self._record_failure, (scrub("".join(traceback.format_exception(exc))), pipe), "failed"

    def _until_redis(self, action: Any, *args: Any) -> Any:
        """Run ``action``, waiting out a Redis outage: a task's outcome must not be lost to one."""
        wait = 0.5
        while True:
            try:
                return action(*args)
            except OUTAGE as exc:
                self.log.warning("Worker %s: cannot reach Redis (%s); retrying in %.1f s", self.name, reason(exc), wait)
                time.sleep(wait)
                wait = min(wait * 2, 10.0)

    def _record_success(self, job: Job, queue: Queue, execution_id: str, pipe: Any) -> None:
        moment, stamp = _rq_now()
        ttl = job.get_result_ttl(self.default_result_ttl)
        facts: list[str] = []
        if self._job_keep and (ttl < 0 or ttl > self._job_keep):
            # The job hash goes before the result: the pages' facts move to the index hash.
            ttl = self._job_keep
            facts = facts_of(job, self.name, utcformat(job.started_at or moment), stamp)
        score = "+inf" if ttl < 0 else int(moment.timestamp()) + ttl
        finished = self._finished_keys.get(queue.key)
        if finished is None:
            finished = self._finished_keys[queue.key] = queue.finished_job_registry.key
        script_keys = [job.key, self._started_keys[queue.key], finished, keys.task_info(job.id), keys.meta(job.id)]
        document, expires = held_success(job.id) or ("", 0)
        args = [job.id, execution_id, stamp, ttl, score, document, expires, *facts]
        # EVALSHA, not the Script object: in a pipeline it would ask SCRIPT EXISTS every time.
        queued = list(pipe.command_stack)  # the task's result, kept to write again after an outage
        pipe.evalsha(self._finish.sha, len(script_keys), *script_keys, *args)
        finish_at = len(pipe) - 1
        next_claim = self._add_next_claim(pipe, moment, stamp)
        try:
            replies = self._execute_once(pipe) if next_claim is not None else pipe.execute(raise_on_error=False)
        except BaseException as exc:
            if next_claim is not None and was_sent(exc):  # cut off (see _claim_from_lists): it may have run
                self._unsure_of(next_claim[0])
            if isinstance(exc, UNANSWERED):
                pipe.command_stack = queued  # execute() emptied it; _until_redis calls us again
                self._claiming = False
            raise
        if next_claim is not None:  # held before any error below: a claimed task must not be dropped
            self._hold_next_claim(replies[-1], *next_claim)
        error = next((reply for reply in replies[:finish_at + 1] if isinstance(reply, Exception)), None)
        if isinstance(error, redis.exceptions.NoScriptError):  # Redis restarted and forgot it: load, write again
            self._finish(keys=script_keys, args=args)
        elif error is not None:
            raise error
        self._done["successful"] += 1

    @staticmethod
    def _execute_once(pipe: Any) -> list:
        """Run a pipeline that carries a claim, never sent twice (reach.send_once), as every claim is.

        A client that retries would send a claim again after a lost reply: the script would pop a
        second task under the same execution id, and the worker could never tell that the first
        had taken one (it would sit in the started registry until the heartbeat sweep failed it as
        WorkerLostError, though it never began). Sent once, the error comes back: the claim is
        remembered as unsure and its task, if any, given back (_give_back_unsure). The price: a
        blip during a claim waits for the worker's own retry (_claim, _until_redis: 0.5 to 1 s),
        not redis-py's immediate one. The same commands in the same round trip as execute().
        """
        if pipe.scripts:  # what execute() would do first (scripts called with the pipeline)
            pipe.load_scripts()
        try:
            return send_once(pipe, pipe.command_stack)
        finally:
            pipe.reset()

    def _add_next_claim(self, pipe: Any, moment: datetime, stamp: str) -> tuple[str, datetime] | None:
        """Queue the next task's claim after this one's record: one round trip for both instead of two.

        This is no prefetching (``--prefetch-multiplier`` still does nothing): the claim runs in
        Redis after the record, when this worker is free, as the loop's own claim would. Not when
        the worker is to stop, to leave after this task (``max_jobs``), or to run RQ's maintenance
        first: a task claimed and then left waiting is not beaten.
        """
        if not self._may_claim_next or self._stop_requested or self.should_run_maintenance_tasks:
            return None
        self._may_claim_next = False  # once: a write again after a lost reply must not claim a second task
        execution_id = _execution_id()
        script_keys, args, moment = self._claim_next_call([queue.key for queue in self._ordered_queues],
                                                          execution_id, (moment, stamp))
        pipe.evalsha(self._claim_next.sha, len(script_keys), *script_keys, *args)
        self._claiming = True  # from here a stop waits for the claimed task, as for a running one
        return execution_id, moment

    def _hold_next_claim(self, reply: Any, execution_id: str, moment: datetime) -> None:
        if reply is None or isinstance(reply, Exception):  # the queues are empty, or Redis forgot the script
            self._claiming = False
            return
        self._next_claim = (reply, execution_id, moment)

    def _record_failure(self, job: Job, queue: Queue, execution_id: str, failure: tuple[str, Any]) -> None:
        """RQ's failure record, in one transaction with the task's FAILURE document the trace queued.

        So a client that sees the task's FAILURE also finds the job in RQ's failed registry.
        """
        exc_string, task_pipe = failure
        stopped = self._stopped_job_id == job.id
        job.ended_at = datetime.now(timezone.utc)

        def write(pipe: Any) -> None:
            for args, options in task_pipe.command_stack:
                pipe.execute_command(*args, **options)
            record_job_failure(job, exc_string, pipe)
            if stopped:  # revoke(terminate=True): a canceled job, as a revoked waiting one
                file_terminated(job, pipe)

        if not self._if_still_ours(queue, job, execution_id, write) and task_pipe.command_stack:
            # Not ours any more. The task's state writes are fenced by themselves: refused if the
            # recovery rule gave the task to another run, written if Redis lost the job altogether.
            queued = list(task_pipe.command_stack)
            try:
                task_pipe.execute()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                task_pipe.command_stack = queued  # _until_redis calls us again
                raise
        self._stopped_job_id = None
        self._done["failed"] += 1

    def _record_retry(self, job: Job, queue: Queue, execution_id: str, when: tuple[int, str | None]) -> None:
        """Queue the job again, after ``interval`` seconds, in its own list or the one ``retry_list`` chose."""
        interval, list_name = when
        retries = (job.number_of_retries or 0) + 1
        # The claim is fenced in the list it was taken from (``queue``); the retry waits in ``target``.
        target = queue if list_name is None else Queue(list_name, connection=self.connection,
                                                        serializer=self.serializer, job_class=self.job_class)

        def write(pipe: Any) -> None:
            job.number_of_retries = retries
            job.origin = target.name  # RQ's scheduler moves a due job to the queue its origin names
            if interval:
                job.set_status(JobStatus.SCHEDULED, pipeline=pipe)
                target.schedule_job(job, whole_second_after(datetime.now(timezone.utc) + timedelta(seconds=interval)),
                                    pipeline=pipe)
            else:
                target._enqueue_job(job, pipeline=pipe)

        self._if_still_ours(queue, job, execution_id, write)

    def _if_still_ours(self, queue: Queue, job: Job, execution_id: str, write: Any) -> bool:
        """Take the job out of the started registry and ``write`` its outcome, atomically, once.

        Once only: if the entry is gone, the recovery rule took the job for abandoned, or this is
        a replay after a lost reply; writing again would queue a retry twice or undo that decision.
        """
        # Each writer saves the whole job (RQ's Job.save): read the fields the claim left out first.
        complete(job)
        if with_claim(self.connection, queue.started_job_registry.key, f"{job.id}:{execution_id}", write):
            return True
        self.log.warning("Worker %s: job %s is no longer ours; its outcome is not written", self.name, job.id)
        return False

    # -- the timer -----------------------------------------------------------------------------
    def _beat_forever(self, stop: threading.Event) -> None:
        """Beat for the worker and its running task, from a thread: a task busy on the CPU still beats."""
        next_beat = next_sample = 0.0
        # Sweep only after a full heartbeat TTL of talking to Redis: after an outage (or Redis
        # out of memory) every worker's entries have gone stale together, and each must get the
        # chance to beat again before any is taken for dead.
        reachable_since = time.monotonic()
        say = Throttle(self.log)
        while not stop.wait(0 if not next_beat else min(PARENT_CHECK_INTERVAL, self.beat_interval)):
            if self.slot is not None and os.getppid() != self.slot.supervisor:
                # The supervisor died (kill -9): stop after the running task rather than work on
                # unsupervised; its tasks' time limits and recovery depended on it.
                self.log.warning("Worker %s: supervisor %d is gone; stopping", self.name, self.slot.supervisor)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if time.monotonic() < next_beat:
                continue
            try:
                self._beat_once()
                next_beat = time.monotonic() + self.beat_interval
                say.clear()
                if self._unsure:
                    self._give_back_unsure()
                if time.monotonic() - reachable_since >= self.beat_ttl:
                    self._sweeper.sweep()
                if time.monotonic() >= next_sample:  # the monitor's queue graphs; one worker a minute wins
                    sample_queues(self.connection)
                    next_sample = time.monotonic() + SAMPLE_STEP / 2
            except redis.exceptions.RedisError as exc:
                # Soon again: a running task's entry expires beat_ttl after its last beat.
                say(logging.WARNING, "failing", "Worker %s: heartbeat failed (%s); will retry", self.name, reason(exc))
                next_beat = time.monotonic() + 0.5
                reachable_since = next_beat

    def _beat_once(self) -> None:
        running = self._running or self._waiting
        with self.connection.pipeline(transaction=False) as pipe:
            # Registered means a hash with a birth (RQ's set_state, each idle wait, re-creates a
            # bare one) and a name in RQ's set of workers (maintenance may have dropped it while
            # the hash was gone, even after a re-registration raced it).
            pipe.hexists(self.key, "birth")
            pipe.sismember(worker_registration.REDIS_WORKER_KEYS, self.key)
            self.heartbeat(math.ceil(self.beat_interval + self.beat_ttl), pipeline=pipe)
            beat_at = len(pipe)
            if running is not None:
                job, execution_id = running
                score = round(time.time() + self.beat_ttl, 3)
                # Only while the entry is still ours: a finished (or deleted) job is not revived.
                pipe.evalsha(self._beat_script.sha, 3, keys.started(job.origin), job.key, keys.task_info(job.id),
                             f"{job.id}:{execution_id}", score, utcformat(datetime.now(timezone.utc)))
            self._add_counters(pipe)
            try:
                replies = pipe.execute()
            except redis.exceptions.NoScriptError:  # first beat, or Redis restarted: load it for next time
                self.connection.script_load(scripts.BEAT)
                return
        if not (replies[0] and replies[1]):
            self._register_again()
        if running is not None and replies[beat_at] == 0 and self._task_active and self._running is running:
            self._lost_claim(*running)

    def _register_again(self) -> None:
        """Our registration expired (the worker was frozen, or cut off from Redis): count us again.

        Without it the worker takes tasks while ``/healthz`` and the dashboard do not see it.
        """
        self.log.warning("Worker %s: its registration had expired (frozen or cut off); registering again",
                         self.name)
        self.connection.delete(self.key)  # the beat (or an idle set_state) made a bare one
        self.register_birth()
        self.set_state(self._state)

    def _lost_claim(self, job: Job, execution_id: str) -> None:
        """The running task is no longer ours: its heartbeat expired and the recovery rule handed it on.

        Its writes are refused by the fence anyway; stop this copy so it does no more work (and
        no more side effects) than it must. A supervised work process dies and its supervisor,
        finding the claim gone, leaves the task alone and starts a fresh process; alone
        (``-P solo``), the task is interrupted with :class:`Terminated`.
        """
        self.log.error("Worker %s: lost task %s to the recovery rule (no heartbeat for %.0f s: frozen or cut off); "
                       "stopping this copy, its outcome will not be written", self.name, job.id, self.beat_ttl)
        if self.slot is not None:
            os.kill(os.getpid(), signal.SIGKILL)
        else:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)

    def _add_counters(self, pipe: Any) -> None:
        self._stats.flush(pipe, keys.node_totals(self.node_name) if self.node_name else None)
        self._series.flush(pipe)
        done, self._done = self._done, {"successful": 0, "failed": 0, "working_time": 0.0}
        if done["successful"]:
            pipe.hincrby(self.key, "successful_job_count", done["successful"])
        if done["failed"]:
            pipe.hincrby(self.key, "failed_job_count", done["failed"])
        if done["working_time"]:
            pipe.hincrbyfloat(self.key, "total_working_time", done["working_time"])

    def _flush_counters(self) -> None:
        try:
            with self.connection.pipeline(transaction=False) as pipe:
                self._add_counters(pipe)
                pipe.execute()
        except redis.exceptions.RedisError:
            pass

"""What happens to a task whose worker died under it: run it again, or fail it as WorkerLostError.

Celery's rule decides: a task with ``acks_late`` and ``reject_on_worker_lost`` (or the
``task_acks_late``/``task_reject_on_worker_lost`` settings) is safe to repeat and goes back
to its queue; any other fails with :class:`WorkerLostError` and stays in RQ's failed registry,
where an operator can retry it. A task that keeps killing its worker is re-queued at most
``worker_lost_max_redeliveries`` times (default 3), then fails.

Two paths lead here: the pool's supervisor, which sees a work process die at once, and RQ's
abandoned-job cleanup (any worker, the stock ``rq worker`` included), through the
``on_failure`` callback every job carries.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.exceptions import WatchError
from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from .. import keys, scripts, states
from .._state import find_registered
from ..app.base import current_app
from ..app.chords import fail_followers
from ..app.replicas import not_waited
from ..exceptions import TimeLimitExceeded, WorkerLostError
from ..protocol import FAILURE_CALLBACK as FAILURE_CALLBACK
from ..protocol import Envelope, count_redelivery, may_import

logger = logging.getLogger("app.celery_compat.worker")


def _task_for(app: Any, job: Job) -> Any:
    try:
        envelope = Envelope.of(job)
        if find_registered(envelope.name) is None and may_import(envelope.module):
            __import__(envelope.module)
        return app.find_task(envelope.name)
    except Exception:
        return None


def is_safe_to_repeat(app: Any, job: Job) -> bool:
    """Celery's acks_late + reject_on_worker_lost, from the task or else from the settings."""
    task = _task_for(app, job)
    if task is None:
        return bool(app.conf.task_acks_late and app.conf.task_reject_on_worker_lost)
    return bool(task.acks_late and task.reject_on_worker_lost)


def _may_requeue(app: Any, job: Job) -> bool:
    limit = app.conf.worker_lost_max_redeliveries
    redelivered = int(Envelope.options_of(job).get("redelivered") or 0)
    return is_safe_to_repeat(app, job) and redelivered < limit


def remove_from_started(connection: Any, job: Job, pipeline: Any) -> None:
    """Take the job out of RQ's started registry, whichever worker kind put it there.

    RQ's own workers record an Execution per run; the lean worker writes only the registry
    entry ``<job id>:<execution id>``, so those are found by their prefix.
    """
    StartedJobRegistry(job.origin, connection=connection).remove_executions(job, pipeline=pipeline)
    key = StartedJobRegistry(job.origin, connection=connection).key
    prefix = f"{job.id}:".encode()
    entries = [entry for entry in connection.zrange(key, 0, -1) if entry.startswith(prefix)]
    if entries:
        pipeline.zrem(key, *entries)


def with_claim(connection: Any, registry: str, entry: str, write: Any, expired_by: float | None = None) -> bool:
    """Take the claim ``entry`` out of the started ``registry`` and ``write``, atomically, if it still holds.

    This is the fence: whoever removes a claim decides the task's fate, exactly once. A worker
    finishing its task, the supervisor of a dead work process and the sweep of expired
    heartbeats all come through here (or through a script doing the same), so two of them can
    never both act on one run. ``expired_by``: act only if the entry's heartbeat is older than
    that (a beat that came meanwhile keeps the task with its worker). ``write`` is called with
    the transaction's pipeline before the removal, so fenced stores in it still see the claim;
    it may be called again after a conflict, so it only queues commands.
    """
    while True:
        with connection.pipeline() as pipe:
            try:
                pipe.watch(registry)
                score = pipe.zscore(registry, entry)
                if score is None or (expired_by is not None and score > expired_by):
                    return False
                pipe.multi()
                write(pipe)
                pipe.zrem(registry, entry)
                pipe.execute()
                return True
            except WatchError:
                continue  # the registry changed (another claim or finish): look again


def _rule_writes(app: Any, job: Job, reason: str, never_started: bool) -> tuple[str, Any]:
    """Celery's rule for a lost task, decided once: (``requeued``/``failed``, a function queueing its writes)."""
    queue = Queue(job.origin, connection=job.connection, serializer=JSONSerializer)
    if never_started or _may_requeue(app, job):
        if not never_started:
            count_redelivery(job)  # once, before any retry of the transaction
        # A task that never began was first in line: back to the front, as RQ's own rescue does.
        return "requeued", lambda pipe: queue._enqueue_job(job, pipeline=pipe, at_front=never_started)

    def fail(pipe: Any) -> None:
        app.backend.store_result(job.id, WorkerLostError(reason), states.FAILURE, None, pipeline=pipe)
        record_job_failure(job, f"WorkerLostError: {reason}", pipe)

    return "failed", fail


def _log_rule(job: Job, outcome: str, reason: str, never_started: bool) -> None:
    if never_started:
        logger.warning("Task %s[%s] re-queued, never begun (%s)", Envelope.name_of(job), job.id, reason)
    elif outcome == "requeued":
        count = int(Envelope.options_of(job).get("redelivered") or 0)
        logger.warning("Task %s[%s] re-queued after its worker died (%s); redelivery %d",
                       Envelope.name_of(job), job.id, reason, count)
    else:
        logger.error("Task %s[%s] failed: worker lost (%s)", Envelope.name_of(job), job.id, reason)


def recover_lost_job(connection: Any, job_id: str, reason: str, app: Any = None, never_started: bool = False,
                     entry: str | None = None, expired_by: float | None = None) -> str:
    """Re-queue or fail a job whose work process died; returns ``requeued``, ``failed`` or ``done``.

    ``never_started``: the job was claimed but its task never began, so it is re-queued whatever
    its options, and that is not counted as a redelivery. ``entry``: the dead run's claim
    (``<job id>:<execution id>``); only if it still holds is anything done, so a run that another
    worker has meanwhile taken over is left alone. Without it (RQ's forking worker), every
    started entry of the job is taken.
    """
    app = app or current_app()
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return "done"
    if entry is None and job.get_status(refresh=False) != JobStatus.STARTED:
        return "done"  # it ended, or RQ already handled it
    outcome, writes = _rule_writes(app, job, reason, never_started)
    if entry is not None:
        if not with_claim(connection, keys.started(job.origin), entry, writes, expired_by):
            return "done"
    else:
        with connection.pipeline() as pipe:
            remove_from_started(connection, job, pipe)
            writes(pipe)
            pipe.execute()
    if outcome == "failed":
        fail_what_follows(job, WorkerLostError(reason), connection, app)
    _log_rule(job, outcome, reason, never_started)
    return outcome


def reap_expired(connection: Any, queue_name: str, app: Any = None, now: float | None = None) -> list[str]:
    """Recover every task of ``queue_name`` whose heartbeat expired (its whole worker died or froze).

    Each is taken through its claim, atomically, so it is recovered once even when several
    workers sweep at the same moment, and never while its worker's beat is still fresh.
    Returns the ids recovered.
    """
    now = time.time() if now is None else now
    registry = keys.started(queue_name)
    recovered = []
    for raw in connection.zrangebyscore(registry, 0, now):
        entry = raw.decode()
        job_id = entry.split(":", 1)[0]
        outcome = recover_lost_job(connection, job_id, f"Worker exited prematurely: heartbeat lost. Job: {job_id}.",
                                   app=app, entry=entry, expired_by=now)
        if outcome == "done":
            # No such job any more, or the claim changed hands: drop a leftover entry only if still expired.
            with_claim(connection, registry, entry, lambda pipe: None, expired_by=now)
            continue
        recovered.append(job_id)
    return recovered


def rescue_stuck(connection: Any, queue_key: str, job_id: str) -> bool:
    """Put a job id stuck in RQ's intermediate list back at the front of its queue.

    Its worker died between RQ's blocking pop and the claim, so the task never began: it goes
    back whatever its options (the recovery rule for a task that never started), and no state
    needs writing (a queued task reads PENDING, as it should).
    """
    rescued = connection.eval(scripts.RESCUE_STUCK, 2, keys.intermediate(queue_key), queue_key, job_id)
    if rescued:
        logger.warning("Task %s put back in its queue: its worker died between taking it and starting it", job_id)
    return bool(rescued)


class Sweeper:
    """What every lean worker does on each heartbeat: recover the tasks of dead workers.

    * a started entry whose heartbeat expired: its worker died or froze; the recovery rule
      applies through the claim (:func:`reap_expired`);
    * an id left in RQ's intermediate list (single-queue blocking pop) by a worker that died
      before claiming it: seen there on two sweeps at least ``grace`` seconds apart, it goes
      back to its queue (:func:`rescue_stuck`); a live worker that claims it meanwhile finds it
      gone and leaves it (CLAIM_GIVEN).
    """

    def __init__(self, connection: Any, queue_names: list[str], grace: float, app: Any = None) -> None:
        self.connection = connection
        self.queue_names = queue_names
        self.grace = grace
        self.app = app
        self.stuck_since: dict[tuple[str, str], float] = {}

    def sweep(self) -> None:
        for name in self.queue_names:
            reap_expired(self.connection, name, app=self.app)
        self._rescue()

    def _rescue(self) -> None:
        moment = time.monotonic()
        seen: dict[tuple[str, str], float] = {}
        for name in self.queue_names:
            queue_key = keys.queue(name)
            for raw in self.connection.lrange(keys.intermediate(queue_key), 0, -1):
                spot = (queue_key, raw.decode())
                first = self.stuck_since.get(spot, moment)
                if moment - first >= self.grace:
                    rescue_stuck(self.connection, queue_key, spot[1])
                else:
                    seen[spot] = first
        self.stuck_since = seen


def store_time_limit_failure(job: Job, connection: Any, app: Any = None, pipeline: Any = None) -> None:
    """Record Celery's hard time limit outcome for a task whose process had to be killed.

    With a ``pipeline``, the caller calls :func:`fail_what_follows` once it has executed it.
    """
    error = time_limit_error(job)
    (app or current_app()).backend.store_result(job.id, error, states.FAILURE, None,
                                                connection=connection, pipeline=pipeline)
    if pipeline is None:
        fail_what_follows(job, error, connection, app)


def time_limit_error(job: Job) -> TimeLimitExceeded:
    return TimeLimitExceeded(Envelope.options_of(job).get("time_limit") or job.timeout)


def fail_what_follows(job: Job, exc: BaseException, connection: Any, app: Any = None) -> None:
    """A task failed without running its trace (worker lost, killed at its time limit): what follows it
    (the rest of its chain, its chord) must not wait for ever. Call it once the failure is stored."""
    with not_waited():  # a worker's write, as the task's own sends (README: Not waited for)
        fail_followers(app or current_app(), job.id, Envelope.options_of(job), exc, connection)


def on_job_failure(job: Job, connection: Any, exc_type: type, exc_value: BaseException, traceback: Any) -> None:
    """RQ's failure callback: only abandoned jobs (a dead worker found by maintenance) concern us.

    RQ re-queues the job after this callback when ``retries_left`` is positive, else records
    the failure; we set it, or store WorkerLostError for Celery's clients.
    """
    if not (isinstance(exc_value, AbandonedJobError) or exc_type is AbandonedJobError):
        return
    app = current_app()
    if _may_requeue(app, job):
        count_redelivery(job)
        job.retries_left = 1
        job.retry_intervals = [0]
        logger.warning("Task %s[%s] abandoned by a dead worker; re-queued", Envelope.name_of(job), job.id)
        return
    error = WorkerLostError("Worker exited prematurely: abandoned job")
    app.backend.store_result(job.id, error, states.FAILURE, None, connection=connection)
    fail_what_follows(job, error, connection, app)

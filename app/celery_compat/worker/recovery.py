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
from typing import Any

from rq.exceptions import AbandonedJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.job_lifecycle import record_job_failure
from rq.queue import Queue
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from .. import states
from .._state import find_registered
from ..app.base import current_app
from ..app.chords import fail_followers
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


def recover_lost_job(connection: Any, job_id: str, reason: str, app: Any = None, never_started: bool = False) -> str:
    """Re-queue or fail a job whose work process died; returns ``requeued``, ``failed`` or ``done``.

    ``never_started``: the job was claimed but its task never began, so it is re-queued whatever
    its options, and that is not counted as a redelivery.
    """
    app = app or current_app()
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return "done"
    if job.get_status(refresh=False) != JobStatus.STARTED:
        return "done"  # it ended, or RQ already handled it
    queue = Queue(job.origin, connection=connection, serializer=JSONSerializer)
    with connection.pipeline() as pipe:
        remove_from_started(connection, job, pipe)
        if never_started or _may_requeue(app, job):
            count = int(Envelope.options_of(job).get("redelivered") or 0) if never_started else count_redelivery(job)
            queue._enqueue_job(job, pipeline=pipe)
            pipe.execute()
            logger.warning("Task %s[%s] re-queued after its worker died (%s); redelivery %d",
                           Envelope.name_of(job), job.id, reason, count)
            return "requeued"
        error = WorkerLostError(reason)
        app.backend.store_result(job.id, error, states.FAILURE, None, pipeline=pipe)
        record_job_failure(job, f"WorkerLostError: {reason}", pipe)
        pipe.execute()
    fail_what_follows(job, error, connection, app)
    logger.error("Task %s[%s] failed: worker lost (%s)", Envelope.name_of(job), job.id, reason)
    return "failed"


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

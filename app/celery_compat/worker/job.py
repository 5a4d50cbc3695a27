"""The RQ entry point of every task: read the message, trace the task, and report to RQ.

:func:`execute_task` is the function every RQ job of this package names (its path is stored
in each queued job, so it never moves): RQ's own workers (``-P fork``, the stock ``rq worker``)
call it and get the outcome in RQ's form (a return value, a raised error, an ``rq.Retry``).
The lean worker calls :func:`run_job` instead and maps the :class:`~.trace.Outcome` itself,
in its pipelined round trip. The tracing proper is :mod:`trace`.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import redis
from rq import Retry as RQRetry
from rq import get_current_job

from .. import signals, states
from .._state import Context, current_app, find_registered
from ..app.chords import chord_part_return, fail_followers
from ..app.replicas import not_waited
from ..app.trace import HOSTNAME, Outcome, trace_task
from ..exceptions import EncodeError, NotRegistered, Retry, TaskRevokedError
from ..protocol import META_FIELD, Envelope, may_import, set_arguments
from ..serialization import from_wire, scrub, to_wire
from . import state as worker_state

if TYPE_CHECKING:
    from rq.job import Job

    from ..app.task import Task

logger = logging.getLogger("app.celery_compat.worker")

#: Celery's UNKNOWN_TASK_ERROR, up to the message dump (the message is in RQ's job hash).
UNKNOWN_TASK_ERROR = """\
Received unregistered task of type %r.
The message has been ignored and discarded.

Did you remember to import the module containing this task?
Or maybe you're using relative imports?"""

#: A task that rejects with requeue runs again at once the first time, then after 1, 2, 4 ...
#: seconds up to this: Celery's broker would hand it back at once, for ever, at full speed.
REQUEUE_DELAY_MAX = 30


def execute_task(*_message: Any) -> Any:
    """The RQ job function: find the task, run it with Celery's semantics, report to RQ.

    A failure is re-raised so that RQ records it too (its failed registry is what operators
    retry from); a Celery retry becomes an RQ ``Retry`` of the same job id. RQ passes the
    message's parts as arguments; they are read from the job instead, through one
    :class:`Envelope` that also refuses a malformed message cleanly.
    """
    job = get_current_job()
    return to_rq(job, run_job(job))


def run_job(job: Job, pipeline: Any = None) -> Outcome | None:
    """Run the task a job carries and return how it ended (None: discarded, revoked or expired).

    What the task sends meanwhile (its body's sends, callbacks, chain steps, errbacks, a chord's
    body) does not wait for replicas: see :func:`..app.replicas.not_waited`.

    A ``pipeline`` receives the success's store instead of Redis.

    The lean worker passes one so that the result and RQ's bookkeeping reach Redis in a
    single round trip; a task with callbacks, a chain or a chord stores at once anyway,
    since what follows it reads that result.
    """
    with not_waited():
        return _run_job(job, pipeline)


def _run_job(job: Job, pipeline: Any) -> Outcome | None:
    connection = job.connection
    app = current_app()
    try:
        envelope = Envelope.of(job)
        task = _find_task(app, envelope.name, envelope.module)
    except KeyError as exc:  # NotRegistered, MalformedMessage
        _fail_unknown(app, job, exc)
        raise
    name, options = envelope.name, envelope.options
    args, kwargs = from_wire(envelope.args), from_wire(envelope.kwargs)
    logger.info("Task %s[%s] received", name, job.id)
    request = _request_for(job, name, args, kwargs, options, connection)
    if signals.task_received.receivers:
        signals.task_received.send(sender=None, request=request)
    if pipeline is not None and not (request.callbacks or request.errbacks or request.chain or request.chord):
        request.pipeline = pipeline
    if _discard_if_revoked(task, request, options, job):
        return None
    worker_state.task_accepted(request)
    outcome = None
    try:
        outcome = trace_task(task, request, args, kwargs, store=True)
        return outcome
    except redis.exceptions.RedisError:
        raise  # an outage: the worker waits it out and records the outcome then
    except Exception as exc:
        _internal_error(task, request, exc)
        raise
    finally:
        worker_state.task_ready(request, successful=outcome is not None and outcome.state == states.SUCCESS)


def _internal_error(task: Task, request: Context, exc: Exception) -> None:
    """Celery's "INTERNAL ERROR": the tracing itself failed, so store FAILURE rather than stay PENDING."""
    logger.critical("Task %s[%s] INTERNAL ERROR: %r", task.name, request.id, exc, exc_info=exc)
    if request.pipeline is not None and len(request.pipeline):
        return  # the task's own outcome is already on its way, with the failure record
    meta = task.backend.get_task_meta(request.id, connection=request.connection)
    if meta.get("status") not in states.READY_STATES:  # an outcome already stored stands
        task.backend.store_result(request.id, exc, states.FAILURE, connection=request.connection)


def _find_task(app: Any, name: str, module: str | None) -> Task:
    if find_registered(name) is None and may_import(module):  # registered: nothing to look up
        try:
            __import__(module)
        except Exception:  # noqa: BLE001 - a module that does not import leaves the task unregistered
            logger.exception("Importing %r for task %r failed", module, name)
    return app.find_task(name)


def _fail_unknown(app: Any, job: Job, exc: KeyError) -> None:
    """Celery's ``on_unknown_task``: log at ERROR, store FAILURE with NotRegistered(name), signal."""
    name = Envelope.name_of(job)
    logger.error(UNKNOWN_TASK_ERROR, name, exc_info=True)
    error = exc if isinstance(exc, NotRegistered) else NotRegistered(name)
    app.backend.store_result(job.id, error, states.FAILURE, connection=job.connection)
    # What follows it would otherwise wait for ever: the rest of its chain, its chord.
    fail_followers(app, job.id, Envelope.options_of(job), error, job.connection)
    signals.task_unknown.send(sender=None, message=job, exc=exc, name=name, id=job.id)


def _request_for(job: Job, name: str, args: list, kwargs: dict, options: dict, connection: Any) -> Context:
    requeued = int(options.get("requeued") or 0)
    priority = options.get("priority")
    hard, soft = worker_state.time_limits.get(name, (options.get("time_limit"), options.get("soft_time_limit")))
    properties = {**options.get("properties", {}), "correlation_id": job.id, "priority": priority}
    return Context(
        # A requeue travels as an RQ retry (it counts in number_of_retries) but is no Celery retry.
        id=job.id, task=name, args=args, kwargs=kwargs, retries=max(0, (job.number_of_retries or 0) - requeued),
        is_eager=False, called_directly=False, hostname=HOSTNAME, connection=connection,
        delivery_info={"exchange": "", "routing_key": current_app().amqp.priorities.queue_of(job.origin),
                       "priority": priority, "redelivered": bool(requeued)},
        eta=options.get("eta"), expires=options.get("expires"), priority=priority, properties=properties,
        headers=options.get("headers"), correlation_id=job.id, reply_to=properties.get("reply_to"),
        replaced_task_nesting=int(options.get("replaced_task_nesting") or 0),
        time_limit=hard, soft_time_limit=soft, timelimit=(hard, soft),
        ignore_result=bool(options.get("ignore_result")), callbacks=from_wire(options.get("link")),
        errbacks=from_wire(options.get("link_error")), group=options.get("group_id"),
        root_id=options.get("root_id") or job.id, parent_id=options.get("parent_id"), origin=job.origin,
        # The canvas around the task travels as JSON with its arguments' types kept (bytes, dates...).
        chain=from_wire(options.get("chain")), chord=from_wire(options.get("chord")), task_name=name,
        stamped_headers=options.get("stamped_headers") or [], stamps=from_wire(options.get("stamps") or {}),
    )


def _discard_if_revoked(task: Task, request: Context, options: dict, job: Job | None = None) -> bool:
    """Celery's worker drops a revoked or expired task instead of running it, and says so."""
    expires = options.get("expires")
    expired = bool(expires) and datetime.fromisoformat(expires) < datetime.now(timezone.utc)
    revoked = getattr(job, "revoked", None)  # the lean worker learnt it while claiming the job
    if revoked is None:
        revoked = task.backend.is_revoked(request.id, connection=request.connection)
    revoked = revoked or _stamp_revoked(options.get("stamps"))
    if not expired and not revoked:
        return False
    reason = "expired" if expired else "revoked"
    if not request.ignore_result:
        task.backend.store_result(request.id, TaskRevokedError(reason), states.REVOKED,
                                  connection=request.connection)
    signals.task_revoked.send(sender=task, request=request, terminated=False, signum=None, expired=expired)
    if request.chord:
        chord_part_return(task, request)
    logger.info("Discarding %s task %s[%s]", reason, task.name, request.id)
    return True


def _stamp_revoked(stamps: dict | None) -> bool:
    """Does a stamped header of the task match one revoked by ``revoke_by_stamped_headers``?"""
    if not stamps or not worker_state.revoked_stamps:
        return False
    for name, value in stamps.items():
        values = value if isinstance(value, list) else [value]
        if any(one in worker_state.revoked_stamps.get(name, ()) for one in values):
            return True
    return False


# -- the outcome in RQ's form, for RQ's own workers -------------------------------------------
def to_rq(job: Job, outcome: Outcome | None) -> Any:
    """What RQ's worker expects of a job function: a value, a raised error, or an ``rq.Retry``."""
    if outcome is None:
        return None
    if outcome.state in (states.FAILURE, states.REVOKED):
        if outcome.traceback and scrub(outcome.traceback) != outcome.traceback:
            # RQ would fail to write this traceback to Redis and leave the job STARTED.
            raise EncodeError(f"the failure of task {job.id} is not UTF-8: {scrub(outcome.traceback)}") from None
        raise outcome.retval  # RQ records it too: FAILED, or STOPPED after a stop-job command
    if outcome.state == states.REJECTED:
        if outcome.retval.requeue:
            return RQRetry(max=(job.number_of_retries or 0) + 1, interval=requeue_delay(job))
        raise outcome.retval  # dropped for good: FAILURE stored, RQ records it too
    if outcome.state == states.RETRY:
        # RQ gives up once number_of_retries reaches max; Celery's own limit was already applied.
        return RQRetry(max=(job.number_of_retries or 0) + 1, interval=retry_delay(job, outcome.retry))
    if outcome.state == states.SUCCESS:
        try:
            return to_wire(outcome.retval)
        except EncodeError:
            return repr(outcome.retval)
    return None


def failure_text(outcome: Outcome) -> str:
    """The failure as RQ records it (``exc_info``): the traceback the trace formatted, storable."""
    exc = outcome.retval
    return scrub(outcome.traceback or f"{type(exc).__name__}: {exc}")


def requeue_delay(job: Job) -> int:
    """Count one requeue in the job's options (saved with the job) and return the seconds to wait."""
    options = dict(Envelope.options_of(job))
    requeued = options["requeued"] = int(options.get("requeued") or 0) + 1
    job.meta[META_FIELD] = options
    return 0 if requeued == 1 else min(REQUEUE_DELAY_MAX, 2 ** (requeued - 2))


def retry_delay(job: Job, retry: Retry) -> int:
    """Seconds until Celery's retry runs again under the same job id; new arguments go into the job."""
    sig = retry.sig or {}
    eta = sig.get("eta")
    if eta is not None:
        if eta.tzinfo is None:
            eta = eta.replace(tzinfo=timezone.utc)
        countdown = (eta - datetime.now(timezone.utc)).total_seconds()
    else:
        countdown = sig.get("countdown") or 0
    envelope = Envelope.of(job)
    if sig.get("args") is not None and (sig["args"] != envelope.args or sig["kwargs"] != envelope.kwargs):
        set_arguments(job, to_wire(sig["args"]), to_wire(sig["kwargs"]))
    return max(0, math.ceil(countdown))


def retry_list(job: Job, retry: Retry) -> str | None:
    """The RQ list a retry goes to when ``retry(queue=..., priority=...)`` routes it anew, else None.

    Celery hands a retry's options to ``apply_async``: a queue or a priority given there routes
    the retry. The new priority goes into the job's options, so the retried task reads it in
    ``self.request`` and its own retries keep it.
    """
    options = (retry.sig or {}).get("options") or {}
    if options.get("queue") is None and options.get("priority") is None:
        return None
    app = current_app()
    celery_options = dict(Envelope.options_of(job))
    if options.get("priority") is not None:
        celery_options["priority"] = int(options["priority"])
        job.meta[META_FIELD] = celery_options
    queue = options.get("queue")
    name = app.route(Envelope.name_of(job), queue) if queue is not None else app.amqp.priorities.queue_of(job.origin)
    target = app.amqp.priorities.queue(name, celery_options.get("priority"))
    return None if target == job.origin else target


__all__ = ["execute_task", "run_job", "to_rq", "failure_text", "retry_delay", "retry_list", "requeue_delay"]

"""Running a task with Celery's semantics: states, hooks, signals, retries, links and limits.

:func:`execute_task` is the function every RQ job of this package calls, in whatever worker
runs it (``python worker.py`` or the stock ``rq worker``). :func:`run_eagerly` is the same
trace without Redis, for ``apply()`` and ``task_always_eager``.
"""

from __future__ import annotations

import inspect
import logging
import math
import os
import random
import socket
import time
import traceback as traceback_module
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from rq import Retry as RQRetry
from rq import get_current_job

from . import signals, states
from .app import current_app
from .canvas import send_step, signature
from .chords import chord_part_return, fail_steps
from .exceptions import (
    EncodeError,
    Ignore,
    NotRegistered,
    Reject,
    Retry,
    TaskPredicate,
    TaskRevokedError,
    Terminated,
    TimeLimitExceeded,
)
from .guard import may_import
from .limits import time_limits
from .serialization import from_wire, scrub, to_wire
from .task import Context, Task, _current

if TYPE_CHECKING:
    from rq.job import Job

logger = logging.getLogger("app.celery_compat.worker")
HOSTNAME = f"celery@{socket.gethostname()}"


@dataclass
class Outcome:
    """How one run of a task ended."""

    state: str
    retval: Any = None
    traceback: str | None = None
    retry: Retry | None = None


class ExceptionInfo:
    """Celery's ``einfo``: the exception, its type and the formatted traceback."""

    def __init__(self, exc: BaseException) -> None:
        self.exception = exc
        self.type = type(exc)
        self.tb = exc.__traceback__
        self.traceback = "".join(traceback_module.format_exception(type(exc), exc, exc.__traceback__))

    def __str__(self) -> str:
        return self.traceback


def backoff_countdown(factor: int, retries: int, maximum: int, full_jitter: bool) -> int:
    """Celery's ``get_exponential_backoff_interval``: ``min(maximum, factor * 2**retries)``, jittered."""
    countdown = min(maximum, factor * (2**retries))
    if full_jitter:
        countdown = random.randrange(countdown + 1)
    return max(0, countdown)


def _call(task: Task, request: Context, args: list, kwargs: dict) -> Any:
    soft, hard = request.timelimit[1], request.timelimit[0]
    try:
        with time_limits(soft, hard):
            if type(task).__call__ is not Task.__call__:
                return task(*args, **kwargs)
            return task.run(*args, **kwargs)
    except Exception as exc:
        if _should_autoretry(task, exc):
            retry_kwargs = dict(task.retry_kwargs or {})
            if task.retry_backoff:
                retry_kwargs["countdown"] = backoff_countdown(
                    int(task.retry_backoff), request.retries, task.retry_backoff_max, task.retry_jitter)
            task.retry(exc=exc, **retry_kwargs)
        raise


def _should_autoretry(task: Task, exc: Exception) -> bool:
    if not task.autoretry_for or isinstance(exc, TaskPredicate):
        return False
    return isinstance(exc, tuple(task.autoretry_for)) and not isinstance(exc, tuple(task.dont_autoretry_for or ()))


def trace_task(task: Task, request: Context, args: list, kwargs: dict, store: bool) -> Outcome:
    """Run ``task`` once under ``request`` and record the outcome as Celery's worker does."""
    task_id = request.id
    store = store and not (request.ignore_result or task.ignore_result)
    task.push_request(request.as_dict())
    stack = _current.__dict__.setdefault("stack", [])
    stack.append((task, task.request))
    signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs)
    started = time.monotonic()
    outcome = Outcome(states.PENDING)
    if not request.is_eager:
        logger.info("Task %s[%s] started", task.name, task_id)
    try:
        task.before_start(task_id, args, kwargs)
        if store and _tracks_started(task):
            task.backend.store_result(task_id, {"pid": os.getpid(), "hostname": HOSTNAME}, states.STARTED,
                                      connection=request.connection)
        try:
            retval = _call(task, request, args, kwargs)
        except Retry as retry:
            outcome = _handle_retry(task, request, retry, store)
        except Ignore:
            outcome = Outcome(states.IGNORED)
        except Reject as reject:
            outcome = Outcome(states.REJECTED, reject)
        except Terminated as exc:
            # revoke(terminate=True) already stored REVOKED; the task must not overwrite it.
            signals.task_revoked.send(sender=task, request=request, terminated=True, signum=None, expired=False)
            outcome = Outcome(states.REVOKED, exc)
        except Exception as exc:
            outcome = _handle_failure(task, request, exc, store)
        else:
            outcome = _handle_success(task, request, retval, store)
        _log_outcome(task, task_id, outcome, time.monotonic() - started)
        return outcome
    finally:
        if outcome.state in states.READY_STATES:
            _safely(task.after_return, outcome.state, outcome.retval, task_id, args, kwargs, None)
        signals.task_postrun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs,
                                  retval=outcome.retval, state=outcome.state)
        stack.pop()
        task.pop_request()


def _tracks_started(task: Task) -> bool:
    return bool(task.track_started)


def _extended(task: Task, request: Context) -> dict | None:
    if not task.app.conf.result_extended:
        return None
    return {"name": task.name, "args": to_wire(request.args), "kwargs": to_wire(request.kwargs),
            "worker": request.hostname, "retries": request.retries,
            "queue": (request.delivery_info or {}).get("routing_key")}


def _handle_success(task: Task, request: Context, retval: Any, store: bool) -> Outcome:
    if store:
        try:
            task.backend.store_result(request.id, retval, states.SUCCESS, extra=_extended(task, request),
                                      connection=request.connection, pipeline=request.pipeline)
        except EncodeError as exc:
            exc = EncodeError(f"The result of task {task.name}[{request.id}] {exc}")
            return _handle_failure(task, request, exc, store)
    _safely(task.on_success, retval, request.id, request.args, request.kwargs)
    signals.task_success.send(sender=task, result=retval)
    # What follows a success must reach Redis even through an outage, or a chain or chord stops.
    retrying = task.backend.retrying
    for callback in request.callbacks or ():
        sig = signature(callback, app=task.app)
        retrying(sig.apply_async, () if sig.immutable else (retval,), parent_id=request.id,
                 root_id=request.root_id or request.id)
    if request.chain:
        next_step, rest = request.chain[0], request.chain[1:]
        retrying(send_step, signature(next_step, app=task.app), (retval,), {}, chain=rest, parent_id=request.id,
                 root_id=request.root_id or request.id)
    if request.chord:
        retrying(chord_part_return, task, request)
    return Outcome(states.SUCCESS, retval)


def _handle_failure(task: Task, request: Context, exc: Exception, store: bool) -> Outcome:
    einfo = ExceptionInfo(exc)
    # A hard time limit kills the process in Celery, so no traceback is stored for it.
    traceback = None if isinstance(exc, TimeLimitExceeded) else einfo.traceback
    if store or task.store_errors_even_if_ignored:
        _store_failure(task, request, exc, traceback)
    _safely(task.on_failure, exc, request.id, request.args, request.kwargs, einfo)
    signals.task_failure.send(sender=task, task_id=request.id, exception=exc, args=request.args,
                              kwargs=request.kwargs, traceback=exc.__traceback__, einfo=einfo)
    for errback in request.errbacks or ():
        _call_errback(task, request, signature(errback, app=task.app), exc, einfo)
    if request.chain:
        task.backend.retrying(fail_steps, task, request.chain, exc, einfo.traceback, request.connection)
    if request.chord:
        task.backend.retrying(chord_part_return, task, request)
    return Outcome(states.FAILURE, exc, einfo.traceback)


def _store_failure(task: Task, request: Context, exc: Exception, traceback: str | None) -> None:
    """Store the failure; one that cannot be encoded as it is is stored as the EncodeError it raised.

    Celery does the same: the task still ends FAILURE, with a message that says what could not
    be stored, instead of staying STARTED for ever.
    """
    extra = _extended(task, request)
    try:
        task.backend.store_result(request.id, exc, states.FAILURE, traceback, extra=extra,
                                  connection=request.connection)
    except EncodeError as error:
        unstorable = EncodeError(f"{type(exc).__name__} of task {task.name}[{request.id}] {error}")
        task.backend.store_result(request.id, unstorable, states.FAILURE, scrub(traceback), extra=scrub(extra),
                                  connection=request.connection)


def _call_errback(task: Task, request: Context, errback: Any, exc: Exception, einfo: ExceptionInfo) -> None:
    """Celery's rule: an errback still taking (request, exc, traceback) runs here; others are queued with the id."""
    errback_task = errback.type
    if _errback_runs_inline(errback_task, errback):
        _safely(errback_task, request, exc, einfo.traceback, *errback.args, **errback.kwargs)
    else:
        errback.apply_async((request.id,))


def _errback_runs_inline(errback_task: Task, errback: Any) -> bool:
    # Celery counts the positional parameters the failure still has to fill; bound tasks are
    # always queued (Celery's workaround so that errbacks can retry).
    if getattr(errback_task, "bind", False):
        return False
    try:
        spec = inspect.getfullargspec(errback_task.run)
    except TypeError:
        return False
    if spec.varargs:
        return True
    remaining = list(spec.args)
    if not errback.immutable:
        remaining = [name for name in remaining[len(errback.args):] if name not in errback.kwargs]
    return len(remaining) > 1


def _handle_retry(task: Task, request: Context, retry: Retry, store: bool) -> Outcome:
    # Celery stores and hands on_retry the exc given to retry(), but the signal and
    # task_postrun get the Retry itself.
    einfo = ExceptionInfo(retry)
    if store:
        task.backend.store_result(request.id, retry.exc, states.RETRY, einfo.traceback,
                                  connection=request.connection)
    _safely(task.on_retry, retry.exc, request.id, request.args, request.kwargs, einfo)
    signals.task_retry.send(sender=task, request=request, reason=retry, einfo=einfo)
    return Outcome(states.RETRY, retry, einfo.traceback, retry)


def _safely(hook: Any, *args: Any, **kwargs: Any) -> None:
    """Run a user hook; its error is logged, never allowed to change the task's recorded outcome."""
    try:
        hook(*args, **kwargs)
    except Exception:
        logger.exception("Hook %r raised", hook)


def _log_outcome(task: Task, task_id: str, outcome: Outcome, runtime: float) -> None:
    if outcome.state == states.SUCCESS:
        logger.info("Task %s[%s] succeeded in %.3fs: %.200r", task.name, task_id, runtime, outcome.retval)
    elif outcome.state == states.FAILURE:
        expected = isinstance(outcome.retval, tuple(task.throws or ()))
        logger.log(logging.INFO if expected else logging.ERROR, "Task %s[%s] failed in %.3fs: raised unexpected: %r",
                   task.name, task_id, runtime, outcome.retval, exc_info=None if expected else outcome.retval)
    elif outcome.state == states.RETRY:
        logger.info("Task %s[%s] retried after %.3fs: %s", task.name, task_id, runtime, outcome.retry)
    elif outcome.state == states.REVOKED:
        logger.info("Task %s[%s] revoked (terminated) after %.3fs", task.name, task_id, runtime)


# -- in the worker ---------------------------------------------------------------------------
def execute_task(name: str, args: list, kwargs: dict) -> Any:
    """The RQ job function: find the task, run it with Celery's semantics, report to RQ.

    A failure is re-raised so that RQ records it too (its failed registry is what operators
    retry from); a Celery retry becomes an RQ ``Retry`` of the same job id.
    """
    return run_job(get_current_job(), name, args, kwargs)


def run_job(job: Job, name: str, args: list, kwargs: dict, pipeline: Any = None) -> Any:
    """Run the task a job carries; a ``pipeline`` receives the success's store instead of Redis.

    The lean worker passes one so that the result and RQ's bookkeeping reach Redis in a
    single round trip; a task with callbacks, a chain or a chord stores at once anyway,
    since what follows it reads that result.
    """
    options = job.meta.get("celery", {}) if job is not None else {}
    connection = job.connection if job is not None else None
    app = current_app()
    try:
        if not (isinstance(name, str) and isinstance(args, list) and isinstance(kwargs, dict)):
            raise NotRegistered(f"malformed task message: {type(name).__name__} name, "
                                f"{type(args).__name__} args, {type(kwargs).__name__} kwargs")
        task = _find_task(app, name, options.get("module"))
    except KeyError as exc:
        app.backend.store_result(job.id, exc, states.FAILURE, connection=connection)
        logger.error("Received unregistered task of type %r", name)
        raise
    args, kwargs = from_wire(args), from_wire(kwargs)
    logger.info("Task %s[%s] received", name, job.id)
    request = _request_for(job, name, args, kwargs, options, connection)
    if pipeline is not None and not (request.callbacks or request.chain or request.chord):
        request.pipeline = pipeline
    if _discard_if_revoked(task, request, options, job):
        return None
    outcome = trace_task(task, request, args, kwargs, store=True)
    return _report_to_rq(job, outcome)


def _find_task(app: Any, name: str, module: str | None) -> Task:
    if may_import(module):
        from .app import all_tasks, shared_tasks

        if name not in all_tasks and name not in shared_tasks:
            __import__(module)
    return app.find_task(name)


def _request_for(job: Job, name: str, args: list, kwargs: dict, options: dict, connection: Any) -> Context:
    return Context(
        id=job.id, task=name, args=args, kwargs=kwargs, retries=job.number_of_retries or 0,
        is_eager=False, called_directly=False, hostname=HOSTNAME, connection=connection,
        delivery_info={"exchange": "", "routing_key": job.origin, "priority": None, "redelivered": False},
        eta=options.get("eta"), expires=options.get("expires"),
        timelimit=(options.get("time_limit"), options.get("soft_time_limit")),
        ignore_result=bool(options.get("ignore_result")), callbacks=options.get("link"),
        errbacks=options.get("link_error"), group=options.get("group_id"), root_id=options.get("root_id") or job.id,
        parent_id=options.get("parent_id"), origin=job.origin, chain=options.get("chain"),
        chord=options.get("chord"),
    )


def _discard_if_revoked(task: Task, request: Context, options: dict, job: Job | None = None) -> bool:
    """Celery's worker drops a revoked or expired task instead of running it, and says so."""
    expires = options.get("expires")
    expired = bool(expires) and datetime.fromisoformat(expires) < datetime.now(timezone.utc)
    revoked = getattr(job, "revoked", None)  # the lean worker learnt it while claiming the job
    if revoked is None:
        revoked = task.backend.is_revoked(request.id, connection=request.connection)
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


def _report_to_rq(job: Job, outcome: Outcome) -> Any:
    if outcome.state in (states.FAILURE, states.REVOKED):
        if outcome.traceback and scrub(outcome.traceback) != outcome.traceback:
            # RQ would fail to write this traceback to Redis and leave the job STARTED.
            raise EncodeError(f"the failure of task {job.id} is not UTF-8: {scrub(outcome.traceback)}") from None
        raise outcome.retval  # RQ records it too: FAILED, or STOPPED after a stop-job command
    if outcome.state == states.RETRY:
        return _rq_retry(job, outcome.retry)
    if outcome.state == states.SUCCESS:
        try:
            return to_wire(outcome.retval)
        except EncodeError:
            return repr(outcome.retval)
    return None


def _rq_retry(job: Job, retry: Retry) -> RQRetry:
    """Turn Celery's retry into RQ's: same job id, run again after the countdown (RQ's scheduler)."""
    sig = retry.sig or {}
    eta = sig.get("eta")
    if eta is not None:
        if eta.tzinfo is None:
            eta = eta.replace(tzinfo=timezone.utc)
        countdown = (eta - datetime.now(timezone.utc)).total_seconds()
    else:
        countdown = sig.get("countdown") or 0
    if sig.get("args") is not None and (sig["args"] != job.args[1] or sig["kwargs"] != job.args[2]):
        job.args = [job.args[0], to_wire(sig["args"]), to_wire(sig["kwargs"])]
    retries_so_far = job.number_of_retries or 0
    # RQ gives up once number_of_retries reaches max; Celery's own limit was already applied.
    return RQRetry(max=retries_so_far + 1, interval=max(0, math.ceil(countdown)))


# -- in this process (apply / task_always_eager) ---------------------------------------------
def run_eagerly(task: Task, args: list, kwargs: dict, task_id: str, retries: int, throw: bool,
                link: Any = None, link_error: Any = None) -> Any:
    """Run ``task`` here, retrying at once as Celery's ``apply()`` does, and wrap it in an EagerResult."""
    from .result import EagerResult

    while True:
        request = Context(
            id=task_id, task=task.name, args=args, kwargs=kwargs, retries=retries, is_eager=True,
            called_directly=False, hostname=HOSTNAME, delivery_info={"is_eager": True},
            callbacks=_as_list(link), errbacks=_as_list(link_error), root_id=task_id,
            timelimit=(None, None),
        )
        outcome = trace_task(task, request, args, kwargs, store=bool(task.app.conf.task_store_eager_result))
        if outcome.state == states.RETRY and outcome.retry is not None and outcome.retry.sig is not None:
            args, kwargs = outcome.retry.sig["args"], outcome.retry.sig["kwargs"]
            retries += 1
            continue
        break
    if throw and outcome.state == states.FAILURE:
        raise outcome.retval
    state = outcome.state if outcome.state in states.ALL_STATES else states.SUCCESS
    return EagerResult(task_id, outcome.retval, state, traceback=outcome.traceback, name=task.name, app=task.app)


def _as_list(value: Any) -> list | None:
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [dict(item) for item in items]


__all__ = ["execute_task", "run_job", "run_eagerly", "trace_task", "ExceptionInfo", "backoff_countdown"]

"""Tracing a task, as Celery's ``app/trace.py``: run it with Celery's semantics and record how it ended.

One run of a task under a request: the hooks (``before_start``, ``on_success``, ``on_failure``,
``on_retry``, ``after_return``), the signals, autoretry, time limits, the stored states and what
follows a success or a failure (links, chains, chords). The result is an :class:`Outcome`; the
worker side maps it to RQ's form once, in whichever worker class runs the job
(:mod:`execution` for RQ's own workers, the lean worker for its pipelined path).
:func:`run_eagerly` is the same trace without a worker, for ``apply()`` and ``task_always_eager``.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import traceback as traceback_module
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import signals, states
from .._state import Context, task_stack
from ..canvas import send_step, signature
from ..exceptions import (
    EncodeError,
    Ignore,
    Reject,
    Retry,
    TaskPredicate,
    Terminated,
    TimeLimitExceeded,
)
from ..result import EagerResult
from ..serialization import scrub, to_wire
from .chords import chord_part_return, errback_takes_request, fail_steps
from .limits import time_limits

if TYPE_CHECKING:
    from .task import Task

logger = logging.getLogger("app.celery_compat.worker")
HOSTNAME = f"celery@{socket.gethostname()}"
EAGER_STATES = states.ALL_STATES | {states.REJECTED, states.IGNORED}


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
            if task.custom_call:
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
    # The caller's explicit choice (apply_async(ignore_result=...)) wins over the task's, as in Celery.
    ignored = task.ignore_result if request.ignore_result is None else request.ignore_result
    store = store and not ignored
    task.push_request(request.as_dict())
    stack = task_stack()
    stack.append((task, task.request))
    signals.task_prerun.send(sender=task, task_id=task_id, task=task, args=args, kwargs=kwargs)
    started = time.monotonic()
    outcome = Outcome(states.PENDING)
    if not request.is_eager:
        logger.info("Task %s[%s] started", task.name, task_id)
    try:
        if store and _tracks_started(task):
            task.backend.store_result(task_id, {"pid": os.getpid(), "hostname": HOSTNAME}, states.STARTED,
                                      connection=request.connection)
        try:
            # Celery runs before_start inside the task's own try: its error is the task's failure.
            task.before_start(task_id, args, kwargs)
            retval = _call(task, request, args, kwargs)
        except Retry as retry:
            outcome = _handle_retry(task, request, retry, store)
        except Ignore as exc:
            outcome = Outcome(states.IGNORED, exc)
        except Reject as reject:
            outcome = _handle_reject(task, request, reject, store)
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
    if _still_ours(task, request):
        _send_follow_ups(task, request, retval)
    if request.chord:  # counted once per leaf whichever run counts it: no fence needed
        task.backend.retrying(chord_part_return, task, request)
    return Outcome(states.SUCCESS, retval)


def _send_follow_ups(task: Task, request: Context, retval: Any) -> None:
    # What follows a success must reach Redis even through an outage, or a chain stops.
    retrying = task.backend.retrying
    for callback in request.callbacks or ():
        sig = signature(callback, app=task.app)
        retrying(sig.apply_async, () if sig.immutable else (retval,), parent_id=request.id,
                 root_id=request.root_id or request.id)
    if request.chain:
        next_step, rest = request.chain[0], request.chain[1:]
        retrying(send_step, signature(next_step, app=task.app), (retval,), {}, chain=rest, parent_id=request.id,
                 root_id=request.root_id or request.id)


def _still_ours(task: Task, request: Context) -> bool:
    """Whether this run may send what follows its task (see RedisBackend.claim_holds)."""
    if not (request.callbacks or request.errbacks or request.chain) or request.is_eager:
        return True  # nothing to send: no round trip
    if task.backend.claim_holds(request.id, request.connection):
        return True
    logger.warning("Task %s[%s]: this run lost its claim (the task went to another worker); "
                   "its callbacks and next steps are left to that run", task.name, request.id)
    return False


def _handle_failure(task: Task, request: Context, exc: Exception, store: bool) -> Outcome:
    einfo = ExceptionInfo(exc)
    # A hard time limit kills the process in Celery, so no traceback is stored for it.
    traceback = None if isinstance(exc, TimeLimitExceeded) else einfo.traceback
    if store or task.store_errors_even_if_ignored:
        _store_failure(task, request, exc, traceback)
    _safely(task.on_failure, exc, request.id, request.args, request.kwargs, einfo)
    signals.task_failure.send(sender=task, task_id=request.id, exception=exc, args=request.args,
                              kwargs=request.kwargs, traceback=exc.__traceback__, einfo=einfo)
    if _still_ours(task, request):
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
                                  connection=request.connection, pipeline=request.pipeline)
    except EncodeError as error:
        unstorable = EncodeError(f"{type(exc).__name__} of task {task.name}[{request.id}] {error}")
        task.backend.store_result(request.id, unstorable, states.FAILURE, scrub(traceback), extra=scrub(extra),
                                  connection=request.connection, pipeline=request.pipeline)


def _call_errback(task: Task, request: Context, errback: Any, exc: Exception, einfo: ExceptionInfo) -> None:
    """Celery's rule: an errback still taking (request, exc, traceback) runs here; others are queued with the id."""
    errback_task = errback.type
    if errback_takes_request(errback_task, errback):
        # Called as Celery calls the signature: an immutable errback keeps only its own arguments.
        _safely(errback, request, exc, einfo.traceback)
    else:
        errback.apply_async((request.id,))


def _handle_reject(task: Task, request: Context, reject: Reject, store: bool) -> Outcome:
    """Celery's ``Request.on_failure`` for a Reject: dropped for good is a FAILURE, requeued stores nothing.

    A message rejected without requeue never runs again, so Celery 5.7 stores FAILURE with the
    Reject itself (no traceback), sends ``task_failure`` and fails what waits on it (chain,
    chord, errbacks), without calling the task's ``on_failure``. With requeue the message goes
    back to the queue and the task runs again: the worker side requeues the job.
    """
    if reject.requeue or request.is_eager:  # apply(): no broker to hand the message back to
        return Outcome(states.REJECTED, reject)
    if store or task.store_errors_even_if_ignored:
        _store_failure(task, request, reject, None)
    einfo = ExceptionInfo(reject)
    signals.task_failure.send(sender=task, task_id=request.id, exception=reject, args=request.args,
                              kwargs=request.kwargs, traceback=reject.__traceback__, einfo=einfo)
    if _still_ours(task, request):
        for errback in request.errbacks or ():
            _call_errback(task, request, signature(errback, app=task.app), reject, einfo)
        if request.chain:
            task.backend.retrying(fail_steps, task, request.chain, reject, None, request.connection)
    if request.chord:
        task.backend.retrying(chord_part_return, task, request)
    return Outcome(states.REJECTED, reject, einfo.traceback)


def _handle_retry(task: Task, request: Context, retry: Retry, store: bool) -> Outcome:
    # Celery stores and hands on_retry the exc given to retry(), but the signal and
    # task_postrun get the Retry itself.
    einfo = ExceptionInfo(retry)
    if store:
        task.backend.store_result(request.id, retry.exc, states.RETRY, einfo.traceback,
                                  connection=request.connection)
        if not request.is_eager:
            # The RETRY document is overwritten by the next run; monitors keep each retry's reason here.
            reason = f"{type(retry.exc).__name__}: {retry.exc}" if retry.exc is not None else str(retry)
            task.backend.note_retry(request.id, (request.retries or 0) + 1, reason, connection=request.connection)
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
    elif outcome.state == states.REJECTED:
        # Celery's log_policy_reject: "Task name[id] Reject(...)" at WARNING, with the traceback.
        logger.warning("Task %s[%s] %r", task.name, task_id, outcome.retval, exc_info=outcome.retval)
    elif outcome.state == states.REVOKED:
        logger.info("Task %s[%s] revoked (terminated) after %.3fs", task.name, task_id, runtime)


# -- in this process (apply / task_always_eager) ---------------------------------------------
def run_eagerly(task: Task, args: list, kwargs: dict, task_id: str, retries: int, throw: bool,
                link: Any = None, link_error: Any = None) -> EagerResult:
    """Run ``task`` here, retrying at once as Celery's ``apply()`` does, and wrap it in an EagerResult."""
    # Called from inside a task (apply() in a task's body): that task is the parent, as in Celery.
    parent = task_stack()[-1][1] if task_stack() else None
    parent_id = parent.id if parent is not None else None
    root_id = (parent.root_id or parent.id) if parent is not None else task_id
    while True:
        request = Context(
            id=task_id, task=task.name, args=args, kwargs=kwargs, retries=retries, is_eager=True,
            called_directly=False, hostname=HOSTNAME, delivery_info={"is_eager": True},
            callbacks=_as_list(link), errbacks=_as_list(link_error), root_id=root_id, parent_id=parent_id,
            timelimit=(None, None), ignore_result=None,
        )
        outcome = trace_task(task, request, args, kwargs, store=bool(task.app.conf.task_store_eager_result))
        if outcome.state == states.RETRY and outcome.retry is not None and outcome.retry.sig is not None:
            args, kwargs = outcome.retry.sig["args"], outcome.retry.sig["kwargs"]
            retries += 1
            continue
        break
    if throw and outcome.state == states.FAILURE:
        raise outcome.retval
    # Celery's apply() reports REJECTED and IGNORED as they are, with the exception as the result.
    state = outcome.state if outcome.state in EAGER_STATES else states.SUCCESS
    return EagerResult(task_id, outcome.retval, state, traceback=outcome.traceback, name=task.name, app=task.app)


def _as_list(value: Any) -> list | None:
    if not value:
        return None
    items = value if isinstance(value, (list, tuple)) else [value]
    return [dict(item) for item in items]

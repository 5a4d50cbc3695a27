"""What the Cancel and Retry buttons do, shared by the pages, the bulk actions and the API."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.celery_compat import view
from app.celery_compat.result import AsyncResult
from app.web.contract import validate
from app.web.forms import InvalidForm, parse_email
from app.web.schemas import LongRunningRequest
from app.web.status import FINISHED_STATES, RETRYABLE_STATES, task_status
from app.web.submit import EMAIL, LONG_RUNNING, submit


class Conflict(RuntimeError):
    """Raised when a task is asked to do what its state forbids, such as cancelling a finished one."""


def cancel_task(task_id: str) -> str:
    """Revoke the task, terminating it if it runs, and return its state after.

    Raises :class:`app.web.status.UnknownTask`, or :class:`Conflict` once the task has finished.
    """
    status = task_status(task_id)
    if status["state"] in FINISHED_STATES:
        raise Conflict(f"the task has already finished ({status['state']})")
    result = AsyncResult(task_id, app=current_app.extensions["celery"])
    result.revoke(terminate=True)
    # REVOKED, unless the task finished in the meantime: then its own result stands, as in Celery.
    return result.state


def retry_task(task_id: str, arguments: dict[str, Any] | None = None) -> str:
    """Submit a copy of a failed or cancelled task and return the new task's id.

    ``arguments`` replaces the task's own (Retry with edited arguments): for the web app's kinds the
    form's fields (``{"duration": 5}``), for any other task ``{"args": [...], "kwargs": {...}}``.
    A task a Celery program sent is sent again by its name, to its queue, through the adapter.

    Raises :class:`app.web.status.UnknownTask`, :class:`Conflict` in any other state, or
    :class:`InvalidForm` when edited arguments break the task's rules.
    """
    status = task_status(task_id)
    if status["state"] not in RETRYABLE_STATES:
        raise Conflict(f"only a failed or cancelled task can be retried, not one in {status['state']}")
    if status["kind"] in (LONG_RUNNING, EMAIL):
        given = status["arguments"] if arguments is None else _checked(status["kind"], arguments)
        return submit(status["kind"], given)
    return _resend(task_id, arguments)


def _checked(kind: str, arguments: dict[str, Any]) -> dict[str, Any]:
    # The same rules as the forms and the API: an edited retry is a new submission.
    if kind == LONG_RUNNING:
        return {"duration": validate(LongRunningRequest, arguments).duration}
    return parse_email(arguments)


def _resend(task_id: str, arguments: dict[str, Any] | None) -> str:
    celery = current_app.extensions["celery"]
    job = view.job_facts(celery, task_id)
    if job is None or job.name is None:
        raise Conflict("its message is gone (expired), so there is nothing to send again")
    args, kwargs = (job.args or [], job.kwargs or {}) if arguments is None else _call_arguments(arguments)
    return celery.send_task(job.name, args, kwargs, queue=job.queue, subscribe_result=False).id


def _call_arguments(arguments: dict[str, Any]) -> tuple[list, dict]:
    errors = {}
    args, kwargs = arguments.get("args", []), arguments.get("kwargs", {})
    if not isinstance(args, list):
        errors["args"] = "must be a JSON array"
    if not isinstance(kwargs, dict):
        errors["kwargs"] = "must be a JSON object"
    unknown = set(arguments) - {"args", "kwargs"}
    if unknown:
        errors["arguments"] = f"may hold only args and kwargs, not {', '.join(sorted(unknown))}"
    if errors:
        raise InvalidForm(errors)
    return args, kwargs

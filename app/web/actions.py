"""What the Cancel and Retry buttons do, shared by the pages and the API."""

from __future__ import annotations

from flask import current_app

from app.celery_compat.result import AsyncResult
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


def retry_task(task_id: str) -> str:
    """Submit a copy of a failed or cancelled task and return the new task's id.

    Raises :class:`app.web.status.UnknownTask`, or :class:`Conflict` in any other state.
    """
    status = task_status(task_id)
    if status["state"] not in RETRYABLE_STATES:
        raise Conflict(f"only a failed or cancelled task can be retried, not one in {status['state']}")
    if status["kind"] not in (LONG_RUNNING, EMAIL):
        raise Conflict(f"tasks of kind {status['kind']!r} are not submitted from here")
    return submit(status["kind"], status["arguments"])

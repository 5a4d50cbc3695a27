"""A task's status as the API returns it and the task page shows it, read through Celery's ``AsyncResult``."""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.celery_compat.result import AsyncResult

#: States after which nothing changes any more (Celery's READY_STATES).
FINISHED_STATES = frozenset({"SUCCESS", "FAILURE", "REVOKED"})


def _progress(state: str, info: Any) -> dict[str, Any] | None:
    if state == "PROGRESS" and isinstance(info, dict):
        return {"current": info.get("current"), "total": info.get("total"), "percent": info.get("percent")}
    if state == "SUCCESS":
        total = info.get("total") if isinstance(info, dict) else None
        return {"current": total, "total": total, "percent": 100}
    if state in FINISHED_STATES:
        return None  # how far a failed task got is not recorded once it fails
    return {"current": 0, "total": None, "percent": 0}


def task_status(task_id: str) -> dict[str, Any]:
    """Return ``{"id", "state", "progress", "result", "error", "traceback"}`` for ``task_id``.

    As in Celery, an id nobody has heard of is ``PENDING``. Raises redis' ConnectionError or
    TimeoutError while Redis is unreachable; the app's error handler turns those into a 503.
    """
    result = AsyncResult(task_id, app=current_app.extensions["celery"])
    state = result.state
    info = result.info
    failed = state == "FAILURE"
    return {
        "id": task_id,
        "state": state,
        "progress": _progress(state, info),
        "result": info if state == "SUCCESS" else None,
        "error": f"{type(info).__name__}: {info}" if failed and isinstance(info, BaseException) else None,
        "traceback": result.traceback if failed else None,
    }

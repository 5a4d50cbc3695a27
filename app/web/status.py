"""A task's status as the API returns it and the pages show it.

The state, progress and outcome come from Celery's ``AsyncResult`` (the result document in Redis);
the kind and arguments from the web app's own record (:mod:`app.web.history`); the timestamps, the
worker and the redelivery count from the RQ job that carries the task. Everything about a task is
read through the adapter's public read API (:mod:`app.celery_compat.view`): no Redis key and no
job layout is spelled here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask import current_app

from app.celery_compat import states, view
from app.celery_compat.result import AsyncResult
from app.redis import get_redis
from app.web import history
from app.web.submit import kind_of

#: States after which nothing changes any more (Celery's READY_STATES).
FINISHED_STATES = frozenset(states.READY_STATES)

#: Every state a task of this app can be in, in the order a task goes through them.
ALL_STATES = ("PENDING", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED")

#: The states whose tasks the Retry button may submit again.
RETRYABLE_STATES = frozenset({states.FAILURE, states.REVOKED})


class UnknownTask(LookupError):
    """Raised when no task has the given id: not submitted here, not queued, no result stored."""


def progress(state: str, info: Any) -> dict[str, Any] | None:
    """``{"current", "total", "percent"}`` for a task in ``state`` whose Celery info is ``info``."""
    if state == "PROGRESS" and isinstance(info, dict):
        current, total, percent = info.get("current"), info.get("total"), info.get("percent")
        if percent is None and isinstance(current, (int, float)) and isinstance(total, (int, float)) and total > 0:
            percent = round(100 * current / total)  # Celery programs often report only current and total
        return {"current": current, "total": total, "percent": percent}
    if state == states.SUCCESS:
        total = info.get("steps", info.get("total")) if isinstance(info, dict) else None
        return {"current": total, "total": total, "percent": 100}
    if state in FINISHED_STATES:
        return None  # how far a failed or cancelled task got is not recorded once it ends
    return {"current": 0, "total": None, "percent": 0}


def _iso(moment: datetime | float | None) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # RQ stores naive UTC times
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _error(state: str, info: Any, traceback: str | None) -> dict[str, Any] | None:
    # RETRY carries the error that made the task try again, e.g. a mail server that was away.
    if state not in (states.FAILURE, states.REVOKED, states.RETRY):
        return None
    if isinstance(info, BaseException):
        return {"type": type(info).__name__, "message": str(info), "traceback": traceback}
    return {"type": "Error", "message": "" if info is None else str(info), "traceback": traceback}


def _read_result(task_id: str) -> tuple[str, Any, str | None, datetime | None, bool]:
    celery = current_app.extensions["celery"]
    result = AsyncResult(task_id, app=celery)
    state, info = result.state, result.info
    if result.state != state:  # it finished between the two reads: a finished result is cached, so read again
        state, info = result.state, result.info
    stored = view.task_document(celery, task_id) is not None if state == states.PENDING else True
    return state, info, result.traceback, result.date_done, stored


def task_status(task_id: str) -> dict[str, Any]:
    """Return the full status of ``task_id``, as ``GET /api/tasks/<id>`` answers it.

    Raises :class:`UnknownTask` for an id that nothing in Redis knows, and Redis' ConnectionError
    or TimeoutError while Redis is unreachable (the app turns those into a 503).
    """
    state, info, traceback, date_done, stored = _read_result(task_id)
    known = history.load(get_redis(), task_id)
    job = view.job_facts(current_app.extensions["celery"], task_id)
    if not stored and known is None and job is None:
        raise UnknownTask(task_id)
    if known is not None:
        kind, arguments = known.kind, known.arguments
    else:
        kind = kind_of(job.name if job is not None else None)
        arguments = {"args": job.args, "kwargs": job.kwargs} if job is not None and job.args is not None else {}
    finished = date_done or (job.ended_at if job is not None and state in FINISHED_STATES else None)
    return {
        "id": task_id,
        "kind": kind,
        "arguments": arguments,
        "state": state,
        "progress": progress(state, info),
        "result": info if state == states.SUCCESS else None,
        "error": _error(state, info, traceback),
        "created_at": _iso(known.created if known is not None else job.created_at if job is not None else None),
        "started_at": _iso(job.started_at if job is not None else None),
        "finished_at": _iso(finished) if state in FINISHED_STATES else None,
        "worker": job.worker if job is not None else None,
        "last_heartbeat": _iso(job.last_heartbeat if job is not None else None),
        "redelivered": job.redelivered if job is not None else 0,
    }


def with_document(status: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """``status`` brought up to date by a document a worker published, without reading Redis again.

    For the event stream: progress documents (the frequent ones) change only the state, progress,
    result and error. The RQ-side facts (worker, start, heartbeat) change when a task starts or
    ends, so for those states the stream reads :func:`task_status` afresh instead.
    """
    decoded = view.outcome(document)
    state, info = decoded.state, decoded.info
    return {
        **status,
        "state": state,
        "progress": progress(state, info),
        "result": info if state == states.SUCCESS else None,
        "error": _error(state, info, decoded.traceback),
        "finished_at": _iso(decoded.date_done) if state in FINISHED_STATES else None,
    }


def _runtime(sent: view.Sent, state: str) -> float | None:
    """Seconds the last run took (or has taken so far, while it runs)."""
    if sent.started_at is None:
        return None
    if state in FINISHED_STATES:
        end = sent.ended_at
    else:
        end = datetime.now(timezone.utc) if sent.status == "started" else None
    if end is None or end < sent.started_at:
        return None  # a retry waiting: its last start is newer than its last end
    return round((end - sent.started_at).total_seconds(), 3)


def summaries(found: list[history.Found]) -> list[dict[str, Any]]:
    """Short statuses for the task list, from what :func:`history.find` read plus one pipeline of web records."""
    records = history.load_many(get_redis(), [one.sent.id for one in found])
    rows = []
    for one, known in zip(found, records, strict=True):
        sent, document = one.sent, one.document or {}
        state = document.get("status") or states.PENDING
        date_done = document.get("date_done")
        rows.append({
            "id": sent.id,
            "kind": known.kind if known is not None else kind_of(sent.name),
            "name": sent.name,
            "queue": sent.queue,
            "arguments": sent.arguments,
            "state": state,
            "progress": progress(state, document.get("result")),
            "worker": sent.worker,
            "retries": sent.retries,
            "created_at": _iso(sent.sent),
            "started_at": _iso(sent.started_at),
            "finished_at": _iso(datetime.fromisoformat(date_done)) if date_done else None,
            "runtime": _runtime(sent, state),
        })
    return rows


def task_page(query: history.Query) -> tuple[list[dict[str, Any]], float | None, float | None]:
    """One page of the task list, newest first: ``(rows, older cursor, newer cursor)``, None where none.

    Its cost does not grow with the number of tasks: see :mod:`app.web.history`.
    """
    page = history.find(get_redis(), query)
    return summaries(page.found), page.older, page.newer

"""The JSON API: submit tasks and poll their status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for

from app.tasks.long_running import long_running
from app.web.forms import InvalidForm, parse_long_running
from app.web.status import task_status

bp = Blueprint("api", __name__, url_prefix="/api")

#: The keys of a status answer; the traceback stays on the HTML page.
STATUS_KEYS = ("id", "state", "progress", "result", "error")


class MalformedRequest(ValueError):
    """Raised when a request body is not a JSON object."""


def _json_object() -> dict[str, Any]:
    # force: a client that forgets the Content-Type still means JSON; silent: we word the 400 ourselves.
    data = request.get_json(force=True, silent=True)
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    return data


@bp.errorhandler(MalformedRequest)
def malformed_request(exc: MalformedRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(InvalidForm)
def invalid_form(exc: InvalidForm) -> tuple[Response, int]:
    return jsonify(errors=exc.errors), 422


@bp.post("/tasks/long-running")
def submit_long_running() -> tuple[Response, int, dict[str, str]]:
    """Enqueue a long-running task of ``{"duration": seconds}``; answer 202 with its id and where to poll."""
    duration = parse_long_running(_json_object())
    result = long_running.delay(duration)
    url = url_for("api.task_status_view", task_id=result.id)
    return jsonify(id=result.id, state="PENDING", url=url), 202, {"Location": url}


@bp.get("/tasks/<task_id>")
def task_status_view(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """The task's ``{"id", "state", "progress", "result", "error"}``; an unknown id is PENDING, as in Celery."""
    status = task_status(task_id)
    # Polled every second or so: a cached answer would freeze the progress bar.
    return jsonify({key: status[key] for key in STATUS_KEYS}), 200, {"Cache-Control": "no-store"}

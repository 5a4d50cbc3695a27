"""The JSON API: submit tasks, read their status, follow it live, cancel or retry them, list them.

Every endpoint is described by the OpenAPI document at ``/api/openapi.json`` (:mod:`app.web.openapi`).
POST requests carry a JSON body with ``Content-Type: application/json``; that is what exempts them
from CSRF tokens, since a cross-site HTML form cannot send that content type. Any other POST must
carry a CSRF token, as the pages' forms do.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.routing import BaseConverter

from app.celery_compat import states
from app.web import forms
from app.web.actions import Conflict, cancel_task, retry_task
from app.web.events import stream_response
from app.web.forms import InvalidForm
from app.web.openapi import openapi_document
from app.web.status import UnknownTask, task_page, task_status
from app.web.submit import EMAIL, LONG_RUNNING, PING, submit

bp = Blueprint("api", __name__, url_prefix="/api")


class TaskIdConverter(BaseConverter):
    """A task id in a URL: what RQ accepts as a job id, and never the name of a submit endpoint.

    Anything else is a 404 from the router. Without it ``GET /api/tasks/long-running`` would read
    the status of a task called "long-running" instead of answering 405 for the POST-only endpoint,
    and an id RQ refuses (``;``) would raise inside RQ.
    """

    regex = r"(?!(?:long-running|email|ping)(?:/|$))[A-Za-z0-9_-]+"

NO_STORE = {"Cache-Control": "no-store"}


class MalformedRequest(ValueError):
    """Raised when a request body is not a JSON object."""


def _json_object() -> dict[str, Any]:
    # silent: we word the 400 ourselves. The content type was checked by require_json_or_token.
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the parser's own limit, near a thousand levels: not a ValueError, so not silenced
        raise MalformedRequest(f"the request body nests deeper than {forms.MAX_JSON_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise MalformedRequest("the request body must be a JSON object")
    try:
        forms.check_json_document(data)  # nesting (400), and text no UTF-8 can carry (422 naming the field)
    except forms.TooDeep as exc:
        raise MalformedRequest(str(exc)) from None
    return data


@bp.before_request
def require_json_or_token() -> None:
    """Let JSON POSTs through without a CSRF token; hold any other POST to the token, as forms are."""
    if request.method != "POST" or request.mimetype == "application/json":
        return
    current_app.extensions["csrf"].protect()


@bp.errorhandler(CSRFError)
def not_json(exc: CSRFError) -> tuple[Response, int]:
    return jsonify(error="send a JSON body with Content-Type: application/json"), 400


@bp.errorhandler(MalformedRequest)
def malformed_request(exc: MalformedRequest) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 400


@bp.errorhandler(InvalidForm)
def invalid_form(exc: InvalidForm) -> tuple[Response, int]:
    return jsonify(errors=exc.errors), 422


@bp.errorhandler(UnknownTask)
def unknown_task(exc: UnknownTask) -> tuple[Response, int]:
    return jsonify(error=f"no task has the id {exc}"), 404


@bp.errorhandler(Conflict)
def conflict(exc: Conflict) -> tuple[Response, int]:
    return jsonify(error=str(exc)), 409


def _accepted(task_id: str) -> tuple[Response, int, dict[str, str]]:
    url = url_for("api.task_status_view", task_id=task_id)
    return jsonify(id=task_id, state=states.PENDING, url=url), 202, {"Location": url}


@bp.get("/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3 description of this API."""
    return jsonify(openapi_document(current_app.config))


@bp.post("/tasks/long-running")
def submit_long_running() -> tuple[Response, int, dict[str, str]]:
    """Enqueue a long-running task of ``{"duration": seconds}``; answer 202 with its id and where to poll."""
    duration = forms.parse_long_running(_json_object())
    return _accepted(submit(LONG_RUNNING, {"duration": duration}))


@bp.post("/tasks/email")
def submit_email() -> tuple[Response, int, dict[str, str]]:
    """Enqueue an email of ``{"to", "subject", "body"}``; answer 202 with its id and where to poll."""
    return _accepted(submit(EMAIL, forms.parse_email(_json_object())))


@bp.post("/tasks/ping")
def submit_ping() -> tuple[Response, int, dict[str, str]]:
    """Enqueue the smallest task, ``{"token": "batch:n"}``: an end-to-end check, and the load test's task."""
    return _accepted(submit(PING, forms.parse_ping(_json_object())))


@bp.get("/tasks")
def task_list() -> tuple[Response, int, dict[str, str]]:
    """A page of the tasks, newest first: ``{"tasks": [...], "next": older cursor, "prev": newer cursor}``.

    Filters: ``state``, ``name``, ``queue``, ``id``, ``q`` (text in the arguments); ``cursor=<next>``
    goes to older tasks, ``after=<prev>`` to newer ones; null where there are none.
    """
    rows, older, newer = task_page(forms.parse_task_query(request.args))
    for row in rows:
        row["url"] = url_for("api.task_status_view", task_id=row["id"])
    return jsonify(tasks=rows, next=None if older is None else repr(older),
                   prev=None if newer is None else repr(newer)), 200, NO_STORE


@bp.get("/tasks/<task_id:task_id>")
def task_status_view(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """The task's status; ``404`` for an id nothing knows."""
    # Polled every second or so: a cached answer would freeze the progress bar.
    return jsonify(task_status(task_id)), 200, NO_STORE


@bp.post("/tasks/<task_id:task_id>/cancel")
def cancel(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """Stop a waiting or running task (``202``); ``409`` once it has finished."""
    return jsonify(id=task_id, state=cancel_task(task_id)), 202, NO_STORE


@bp.post("/tasks/<task_id:task_id>/retry")
def retry(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """Submit a failed or cancelled task again, as a new task (``202``); ``409`` in any other state."""
    return _accepted(retry_task(task_id))


@bp.get("/tasks/<task_id:task_id>/events")
def task_events(task_id: str) -> Response | tuple[Response, int, dict[str, str]]:
    """``text/event-stream``: a ``status`` event at once and at each change, then ``end`` once finished.

    ``503`` with ``Retry-After`` when this server already serves its share of streams: poll instead.
    """
    return stream_response(task_id)  # raises UnknownTask (404) before the stream starts

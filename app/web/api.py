"""The JSON API: submit tasks, read their status, follow it live, cancel or retry them, list them.

Every endpoint is described by the OpenAPI document at ``/api/openapi.json`` (:mod:`app.web.openapi`).
POST requests carry a JSON body with ``Content-Type: application/json``; that is what exempts them
from CSRF tokens, since a cross-site HTML form cannot send that content type. Any other POST must
carry a CSRF token, as the pages' forms do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.routing import BaseConverter

from app.celery_compat import states
from app.celery_compat.backend import META_PREFIX
from app.redis import UNAVAILABLE_ERRORS, get_redis
from app.web import forms
from app.web.actions import Conflict, cancel_task, retry_task
from app.web.forms import InvalidForm
from app.web.openapi import openapi_document
from app.web.status import FINISHED_STATES, UnknownTask, task_page, task_status
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

#: The event stream waits this long on the task's channel before looking around (keep-alive, deadline).
EVENTS_WAIT_SECONDS = 1.0
#: ...and re-reads the task this often even without a message, in case one was lost.
EVENTS_REREAD_SECONDS = 5.0
#: A comment line this often keeps proxies from closing an idle stream.
EVENTS_KEEPALIVE_SECONDS = 15
#: A stream ends after this long even if the task has not; the browser's EventSource reconnects by itself.
EVENTS_MAX_SECONDS = 300


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
    return jsonify(openapi_document())


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
    """A page of the recent tasks, newest first: ``{"tasks": [...], "next": cursor or null}``."""
    state, limit, cursor = forms.parse_task_query(request.args)
    rows, next_cursor = task_page(state, limit, cursor)
    for row in rows:
        row["url"] = url_for("api.task_status_view", task_id=row["id"])
    return jsonify(tasks=rows, next=None if next_cursor is None else repr(next_cursor)), 200, NO_STORE


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
def task_events(task_id: str) -> Response:
    """``text/event-stream``: a ``status`` event at once and at each change, then ``end`` once finished."""
    first = task_status(task_id)  # raises UnknownTask (404) before the stream starts
    stream = _events(current_app._get_current_object(), task_id, first)  # type: ignore[attr-defined]
    return Response(stream, mimetype="text/event-stream", headers={**NO_STORE, "X-Accel-Buffering": "no"})


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _events(app: Flask, task_id: str, status: dict[str, Any]) -> Iterator[str]:
    # The worker publishes every state it stores (progress included) on the result key's channel,
    # so the stream blocks on that channel; it re-reads the key now and then in case a message
    # was lost while the subscription reconnected.
    with app.app_context():
        conn = get_redis()
        key = f"{META_PREFIX}{task_id}"
        started = last_sent = last_read = time.monotonic()
        pubsub = conn.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(key)
            status = task_status(task_id)  # after subscribing: no change can slip in between
            yield "retry: 1000\n" + _event("status", status)
            while status["state"] not in FINISHED_STATES:
                now = time.monotonic()
                if now - started > EVENTS_MAX_SECONDS:
                    return
                if now - last_sent > EVENTS_KEEPALIVE_SECONDS:
                    last_sent = now
                    yield ": keep-alive\n\n"
                message = pubsub.get_message(timeout=EVENTS_WAIT_SECONDS)
                if message is None and time.monotonic() - last_read < EVENTS_REREAD_SECONDS:
                    continue
                last_read = time.monotonic()
                new_status = task_status(task_id)
                if new_status != status:
                    status, last_sent = new_status, time.monotonic()
                    yield _event("status", status)
            yield _event("end", {"state": status["state"]})
        except UNAVAILABLE_ERRORS:
            # Redis went away mid-stream: say so and stop; the page falls back to polling, which
            # answers 503 until Redis is back.
            yield _event("unavailable", {"error": "Redis is unreachable"})
        finally:
            pubsub.close()

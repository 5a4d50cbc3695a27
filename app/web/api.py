"""The JSON API: submit tasks, read their status, follow it live, cancel or retry them, list them.

Each endpoint is one view declared with ``contract.route``: its request models (:mod:`app.web.schemas`)
validate the body and the query string before it runs, and the OpenAPI document at
``/api/openapi.json`` (:mod:`app.web.openapi`) is generated from the same declarations.
POST requests carry a JSON body with ``Content-Type: application/json``; that is what exempts them
from CSRF tokens, since a cross-site HTML form cannot send that content type. Any other POST must
carry a CSRF token, as the pages' forms do.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from flask_wtf.csrf import CSRFError
from werkzeug.routing import BaseConverter

from app.celery_compat import states
from app.web import answers, schemas
from app.web.actions import Conflict, cancel_task, retry_task
from app.web.contract import Answer, Contract, MalformedRequest
from app.web.detail import task_timeline
from app.web.events import stream_response
from app.web.forms import InvalidForm, task_query
from app.web.openapi import openapi_document
from app.web.status import UnknownTask, task_page, task_status
from app.web.submit import EMAIL, LONG_RUNNING, PING, submit

bp = Blueprint("api", __name__, url_prefix="/api")
contract = Contract(bp)


class TaskIdConverter(BaseConverter):
    """A task id in a URL: what RQ accepts as a job id, and never the name of a submit endpoint.

    Anything else is a 404 from the router. Without it ``GET /api/tasks/long-running`` would read
    the status of a task called "long-running" instead of answering 405 for the POST-only endpoint,
    and an id RQ refuses (``;``) would raise inside RQ.
    """

    regex = r"(?!(?:long-running|email|ping)(?:/|$))[A-Za-z0-9_-]+"

NO_STORE = {"Cache-Control": "no-store"}


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


_NOT_FOUND = Answer("No task has this id", answers.Error)
_SUBMITTED = {
    202: Answer("Queued; poll its status at `url` (also the Location header)", answers.Submitted, ("Location",)),
    422: Answer("A field is missing, of the wrong type or out of range", answers.ValidationErrors),
    429: Answer("Over SUBMIT_RATE_LIMIT or MAX_QUEUED_TASKS; retry after Retry-After", answers.RateLimitedError,
                ("Retry-After",)),
}


def _accepted(task_id: str) -> tuple[Response, int, dict[str, str]]:
    url = url_for("api.task_status_view", task_id=task_id)
    return jsonify(id=task_id, state=states.PENDING, url=url), 202, {"Location": url}


@contract.route("GET", "/openapi.json", answers={200: Answer("This document (OpenAPI 3.1)", answers.Document)})
def openapi() -> Response:
    """The OpenAPI 3.1 description of this API."""
    return jsonify(openapi_document(contract, current_app.config))


@contract.route("POST", "/tasks/long-running", body=schemas.LongRunningRequest, answers=_SUBMITTED)
def submit_long_running(body: schemas.LongRunningRequest) -> tuple[Response, int, dict[str, str]]:
    """Queue a task that works for `duration` seconds, reporting its progress."""
    return _accepted(submit(LONG_RUNNING, {"duration": body.duration}))


@contract.route("POST", "/tasks/email", body=schemas.EmailRequest, answers=_SUBMITTED)
def submit_email(body: schemas.EmailRequest) -> tuple[Response, int, dict[str, str]]:
    """Queue an email.

    Addresses are checked as the mail task checks them, and must be plain ASCII addresses.
    """
    return _accepted(submit(EMAIL, body.model_dump()))


@contract.route("POST", "/tasks/ping", body=schemas.PingRequest, answers=_SUBMITTED)
def submit_ping(body: schemas.PingRequest) -> tuple[Response, int, dict[str, str]]:
    """Queue the smallest task (an end-to-end check); it records its token and returns pong."""
    return _accepted(submit(PING, body.model_dump()))


@contract.route("GET", "/tasks", query=schemas.TaskQuery, answers={
    200: Answer("A page of tasks, newest first", answers.TaskPage),
    422: Answer("A query parameter is invalid", answers.ValidationErrors),
})
def task_list(query: schemas.TaskQuery) -> tuple[Response, int, dict[str, str]]:
    """Recent tasks, newest first, from any producer.

    Filters: `state`, `name`, `queue`, `id`, `q` (text in the arguments), and the send time from
    `since` (inclusive) to `until` (exclusive). `cursor=<next>` goes to older tasks, `after=<prev>`
    to newer ones, within the time range; `next` and `prev` are null where there are none.
    """
    rows, older, newer = task_page(task_query(query))
    for row in rows:
        row["url"] = url_for("api.task_status_view", task_id=row["id"])
    return jsonify(tasks=rows, next=None if older is None else repr(older),
                   prev=None if newer is None else repr(newer)), 200, NO_STORE


@contract.route("GET", "/tasks/<task_id:task_id>", answers={
    200: Answer("The task's status", answers.TaskStatus), 404: _NOT_FOUND})
def task_status_view(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """A task's state, progress, result or error."""
    # Polled every second or so: a cached answer would freeze the progress bar.
    return jsonify(task_status(task_id)), 200, NO_STORE


@contract.route("GET", "/tasks/<task_id:task_id>/timeline", answers={
    200: Answer("The task's timeline", answers.Timeline), 404: _NOT_FOUND})
def task_timeline_view(task_id: str) -> tuple[Response, int, dict[str, str]]:
    """What happened to the task so far, oldest first: sent, each retry with its reason, started, ended.

    The task page reads it again whenever the task's state changes.
    """
    events = task_timeline(task_status(task_id))
    return jsonify(events=[asdict(event) for event in events]), 200, NO_STORE


@contract.route("POST", "/tasks/<task_id:task_id>/cancel", body=schemas.ActionRequest, answers={
    202: Answer("Cancelled (or it finished in the meantime: `state` says which)", answers.Cancelled),
    404: _NOT_FOUND,
    409: Answer("The task has already finished", answers.Error),
})
def cancel(task_id: str, body: schemas.ActionRequest) -> tuple[Response, int, dict[str, str]]:
    """Stop a waiting or running task.

    The body is `{}` (or empty, with Content-Type: application/json): the content type is what
    shows the request is not a cross-site form.
    """
    return jsonify(id=task_id, state=cancel_task(task_id)), 202, NO_STORE


@contract.route("POST", "/tasks/<task_id:task_id>/retry", body=schemas.ActionRequest, answers={
    **_SUBMITTED,
    202: Answer("The new task", answers.Submitted, ("Location",)),
    404: _NOT_FOUND,
    409: Answer("The task neither failed nor was cancelled", answers.Error),
})
def retry(task_id: str, body: schemas.ActionRequest) -> tuple[Response, int, dict[str, str]]:
    """Submit a failed or cancelled task again, as a new task.

    The body is `{}` (or empty, with Content-Type: application/json), as for cancel.
    """
    return _accepted(retry_task(task_id))


@contract.route("GET", "/tasks/<task_id:task_id>/events", answers={
    200: Answer("The event stream: each event is one of these (`data` is JSON)", media_type="text/event-stream",
                one_of=answers.TASK_EVENTS),
    404: _NOT_FOUND,
    503: Answer("Redis is unreachable, or this process serves its most streams already: poll `poll` instead; "
                "retry after Retry-After", answers.StreamBusy, ("Retry-After",)),
})
def task_events(task_id: str) -> Response | tuple[Response, int, dict[str, str]]:
    """Server-Sent Events: `status` at once and at each change, then `end` once the task finished.

    A `retry` field comes with the first event; `unavailable` ends the stream if Redis goes away.
    """
    return stream_response(task_id)  # raises UnknownTask (404) before the stream starts

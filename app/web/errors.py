"""Errors as the user sees them: Redis outages, HTTP errors in the caller's language, never a 500.

Text that UTF-8 cannot encode (stored before the door refused it) is sent escaped, not as a 500.
For Redis outages, every page and API call answers 503 with a clear message, never a hang; so does
a write refused because Redis is out of memory (its own message, and a longer ``Retry-After``).

Two parts: a cheap PING before each request, so that pages which would not otherwise touch Redis
(the form, the dashboard views that swallow connection errors and answer 200) report the outage
too; and error handlers for whatever a view raises when Redis goes away mid-request. Both use the
app's client with its short timeouts, so the answer comes within a few seconds, and both recover
by themselves: the next request simply connects again.
"""

from __future__ import annotations

from typing import Any

import flask
import redis
from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from app.celery_compat.exceptions import NotReplicatedError
from app.redis import UNAVAILABLE_ERRORS, get_redis

#: Seconds a client should wait before retrying while Redis is down.
RETRY_AFTER = 5

UNAVAILABLE_MESSAGE = "Redis is unreachable, so tasks can be neither queued nor read. Retry in a few seconds."
OUT_OF_MEMORY_MESSAGE = ("Redis is out of memory (its maxmemory limit is reached), so no task can be queued now; "
                         "tasks already queued keep running. Retry in a little while.")
#: Seconds a client should wait before retrying while Redis is out of memory (memory frees as results expire
#: or an operator acts: not within seconds).
OUT_OF_MEMORY_RETRY_AFTER = 30

#: Endpoints that must answer while Redis is down: stylesheets for the error page, and /healthz,
#: which reports the outage in its own words.
_NO_PING_ENDPOINTS = ("static", "rq_dashboard.static", "rq_dashboard_guard.static", "health.healthz")

#: The API's submits: their one Redis round trip (queue the task, record it) goes through a
#: client with the same short timeouts (app.jobs.make_celery), so an outage still ends in the 503
#: below; a PING before it was a second round trip on the busiest path (issue 19).
_SELF_CHECKING_ENDPOINTS = frozenset({"api.submit_ping", "api.submit_long_running", "api.submit_email"})


def require_redis() -> None:
    """Ping Redis before the view runs; an outage raises, and the handler below answers 503."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in _NO_PING_ENDPOINTS or endpoint in _SELF_CHECKING_ENDPOINTS:
        return
    get_redis().ping()


def redis_unavailable(exc: Exception) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 503: JSON under /api, an HTML page elsewhere. Rendering touches nothing in Redis."""
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    if request.path.startswith("/api/"):
        return jsonify(error=UNAVAILABLE_MESSAGE), 503, headers
    return render_template("error.html", title="Service unavailable", message=UNAVAILABLE_MESSAGE,
                           retry_after=RETRY_AFTER), 503, headers


def not_replicated(exc: Exception) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 503 when REDIS_WAIT_REPLICAS replicas did not confirm a submit: it may run, or be lost."""
    headers = {"Retry-After": str(RETRY_AFTER), "Cache-Control": "no-store"}
    message = ("Redis did not copy the task to a replica in time: it is queued, but would be lost if Redis "
               "failed over now. Check the task before submitting it again.")
    task_ids = getattr(exc, "task_ids", [])
    if request.path.startswith("/api/"):
        return jsonify(error=message, id=task_ids[0] if task_ids else None), 503, headers
    return render_template("error.html", title="Service unavailable", message=message,
                           retry_after=RETRY_AFTER), 503, headers


def redis_out_of_memory(exc: Exception) -> tuple[Response | str, int, dict[str, str]]:
    """Answer 503 with the reason when Redis refuses writes at its memory limit (not a 500)."""
    headers = {"Retry-After": str(OUT_OF_MEMORY_RETRY_AFTER), "Cache-Control": "no-store"}
    if request.path.startswith("/api/"):
        return jsonify(error=OUT_OF_MEMORY_MESSAGE), 503, headers
    return (render_template("error.html", title="Service unavailable", message=OUT_OF_MEMORY_MESSAGE), 503,
            headers)


#: The pages whose forms are shown again, with the reason, when what they post is too large.
_FORM_ENDPOINTS = {"pages.submit_long_running": "duration", "pages.submit_email": "body"}


class TolerantResponse(flask.Response):
    """Flask's response, except that text UTF-8 cannot encode goes out escaped (``\\ud800``).

    Lone surrogates are refused at the door, but tasks stored before that was so still hold them;
    their pages show the rest instead of failing whole with a 500.
    """

    def set_data(self, value: bytes | str) -> None:
        if isinstance(value, str):
            value = value.encode("utf-8", "backslashreplace")
        super().set_data(value)


def _form_too_large() -> tuple[str, int]:
    # The body was not read (that is the point), so what was typed is lost: say so beside the field.
    from app.web.forms import EmailForm, LongRunningForm

    limit = request.max_content_length or 0
    message = (f"What was sent is larger than the {limit // 1024} kB this server accepts, so it was not read; "
               "shorten it and send it again.")
    forms: dict[str, Any] = {"form": LongRunningForm(formdata=None), "email_form": EmailForm(formdata=None)}
    form = forms["email_form" if request.endpoint == "pages.submit_email" else "form"]
    form[_FORM_ENDPOINTS[request.endpoint]].errors = [message]
    return render_template("index.html", **forms), 413


def http_error(exc: HTTPException) -> Response | tuple[Response | str, int]:
    """Answer HTTP errors (404, 405, 413, ...) in the language of the caller: JSON under /api, HTML elsewhere;
    a form posted too large is shown again with the reason."""
    if exc.code is None or exc.code < 400:
        return exc.get_response()
    if isinstance(exc, RequestEntityTooLarge) and request.endpoint in _FORM_ENDPOINTS:
        return _form_too_large()
    response = exc.get_response()  # keeps headers such as Allow on a 405
    if request.path.startswith("/api/"):
        body = jsonify(error=exc.description)
    else:
        body = render_template("error.html", title=f"{exc.code} {exc.name}", message=exc.description)
    response.set_data(body.get_data() if isinstance(body, Response) else body)
    response.mimetype = "application/json" if isinstance(body, Response) else "text/html"
    return response


def init_app(app: Flask) -> None:
    """Register the hook and the handlers on ``app``; register them last, so that auth hooks run first."""
    app.response_class = TolerantResponse
    app.before_request(require_redis)
    app.register_error_handler(HTTPException, http_error)
    for error in UNAVAILABLE_ERRORS:
        app.register_error_handler(error, redis_unavailable)
    app.register_error_handler(redis.exceptions.OutOfMemoryError, redis_out_of_memory)
    app.register_error_handler(NotReplicatedError, not_replicated)

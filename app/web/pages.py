"""The HTML pages: the two forms, a task's status page (with Cancel and Retry), and the task list."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from app.web import forms, history, ratelimit
from app.web.actions import Conflict, cancel_task, retry_task
from app.web.detail import task_detail
from app.web.forms import MAX_JSON_DEPTH, EmailForm, InvalidForm, LongRunningForm, TooDeep, check_json_document
from app.web.ratelimit import RateLimited
from app.web.status import ALL_STATES, FINISHED_STATES, RETRYABLE_STATES, UnknownTask, task_page, task_status
from app.web.submit import EMAIL, LONG_RUNNING, submit

bp = Blueprint("pages", __name__)


def _index(long_running: LongRunningForm | None = None, email: EmailForm | None = None,
           status: int = 200, notice: str | None = None) -> tuple[str, int]:
    # A form is bound to request.form when built, so the one that was not submitted is built empty.
    return render_template(
        "index.html",
        form=long_running or LongRunningForm(formdata=None),
        email_form=email or EmailForm(formdata=None),
        notice=notice,
    ), status


@bp.errorhandler(RateLimited)
def rate_limited(exc: RateLimited) -> tuple[Response | str, int, dict[str, str]]:
    """429: the submitted form again, with what was typed and why it was not sent; Retry-After as the API."""
    if request.endpoint == "pages.submit_long_running":
        page, status = _index(long_running=LongRunningForm(), status=429, notice=str(exc))
    elif request.endpoint == "pages.submit_email":
        page, status = _index(email=EmailForm(), status=429, notice=str(exc))
    else:
        return ratelimit.rate_limited(exc)
    return page, status, {"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"}


@bp.get("/")
def index() -> tuple[str, int]:
    """The forms that submit a long-running task and an email."""
    return _index()


@bp.post("/tasks/long-running")
def submit_long_running() -> Response | tuple[str, int]:
    """Enqueue the task and redirect to its page, or show the form again with the errors (422)."""
    form = LongRunningForm()
    if not form.validate_on_submit():
        return _index(long_running=form, status=422)
    task_id = submit(LONG_RUNNING, {"duration": form.duration.data})
    return redirect(url_for("pages.task", task_id=task_id), code=303)


@bp.post("/tasks/email")
def submit_email() -> Response | tuple[str, int]:
    """Enqueue the email and redirect to its page, or show the form again with the errors (422)."""
    form = EmailForm()
    if form.validate_on_submit():
        try:
            arguments = forms.parse_email({name: form[name].data or "" for name in ("to", "subject", "body")})
        except InvalidForm as exc:
            for name, message in exc.errors.items():
                field = form._fields.get(name)
                if field is not None:  # "To is required", not a bare "is required" beside the field
                    field.errors = [*field.errors, f"{field.label.text} {message}"]
        else:
            return redirect(url_for("pages.task", task_id=submit(EMAIL, arguments)), code=303)
    return _index(email=form, status=422)


def _task_page(task_id: str, edited: str | None = None, edit_errors: dict[str, str] | None = None) -> str:
    try:
        status = task_status(task_id)
    except UnknownTask:
        abort(404, description=f"No task has the id {task_id}.")
    detail = task_detail(status)
    if edited is not None:
        detail["edit_arguments"] = edited  # what was typed stays, beside why it was refused
    return render_template(
        "task.html",
        task=status,
        detail=detail,
        edit_errors=edit_errors or {},
        finished=status["state"] in FINISHED_STATES,
        retryable=status["state"] in RETRYABLE_STATES,
        form=FlaskForm(formdata=None),
    )


@bp.get("/tasks/<task_id:task_id>")
def task(task_id: str) -> str:
    """The task's page: state, arguments, a live progress bar, then the result or the error."""
    return _task_page(task_id)


@bp.post("/tasks/<task_id:task_id>/retry-edited")
def retry_edited(task_id: str) -> Response | tuple[str, int]:
    """Retry with edited arguments: the new task's page, or this page again (422) saying what is wrong."""
    text = request.form.get("arguments", "")
    try:
        arguments = json.loads(text)
        if not isinstance(arguments, dict):
            raise InvalidForm({"arguments": "must be a JSON object, as shown before editing"})
        check_json_document(arguments)
        new_id = retry_task(task_id, arguments)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, InvalidForm and TooDeep are ValueErrors
        if isinstance(exc, InvalidForm):
            errors = exc.errors
        elif isinstance(exc, TooDeep | RecursionError):
            errors = {"arguments": f"nest deeper than {MAX_JSON_DEPTH} levels"}
        else:
            errors = {"arguments": f"are not valid JSON: {exc}"}
        return _task_page(task_id, edited=text, edit_errors=errors), 422
    except UnknownTask:
        abort(404, description=f"No task has the id {task_id}.")
    except Conflict as exc:
        abort(409, description=str(exc).capitalize() + ".")
    return redirect(url_for("pages.task", task_id=new_id), code=303)


def _act(task_id: str, action: str) -> Response:
    # CSRFProtect has checked the form's token before the view ran.
    try:
        if action == "cancel":
            cancel_task(task_id)
            new_id = task_id
        else:
            new_id = retry_task(task_id)
    except UnknownTask:
        abort(404, description=f"No task has the id {task_id}.")
    except Conflict as exc:
        abort(409, description=str(exc).capitalize() + ".")
    return redirect(url_for("pages.task", task_id=new_id), code=303)


@bp.post("/tasks/<task_id:task_id>/cancel")
def cancel(task_id: str) -> Response:
    """The Cancel button: revoke the task (terminating it if it runs) and show its page again."""
    return _act(task_id, "cancel")


@bp.post("/tasks/<task_id:task_id>/retry")
def retry(task_id: str) -> Response:
    """The Retry button: submit a failed or cancelled task again and show the new task's page."""
    return _act(task_id, "retry")


@bp.get("/tasks")
def task_list() -> tuple[str, int] | Response:
    """Every task sent, newest first, filterable by state, name, queue, argument text and send time, a page at a time.

    A search by id opens that task's page. A time range that cannot be read, or ends before it
    begins, shows the form again (422) with the reason beside the field.
    """
    typed = {field: request.args.get(field, "") for field in ("since", "until", "tz")}
    try:
        query = forms.parse_task_query(forms.in_zone(request.args))
        forms.check_range(query)
    except InvalidForm as exc:
        if not set(exc.errors) <= {"since", "until"}:
            abort(400, description="; ".join(f"{name} {why}" for name, why in exc.errors.items()))
        query = forms.parse_task_query({k: v for k, v in request.args.items() if k not in typed})
        return _task_list(query, typed, exc.errors), 422
    if query.task_id:
        return redirect(url_for("pages.task", task_id=query.task_id))
    return _task_list(query, typed, {}), 200


def _task_list(query: history.Query, typed: dict[str, str], errors: dict[str, str]) -> str:
    # With a refused range no page is read: the form comes back with what was typed and why.
    rows, older, newer = task_page(query) if not errors else ([], None, None)
    now = datetime.now(timezone.utc)
    for row in rows:
        row["age"] = _age(now, datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")))
    filters = {"state": query.state, "name": query.name, "queue": query.queue, "q": query.search,
               "limit": query.limit, **{field: value for field, value in typed.items() if value}}
    return render_template(
        "tasks.html", tasks=rows, query=query, filters=filters, states=ALL_STATES, typed=typed, errors=errors,
        older=None if older is None else repr(older), newer=None if newer is None else repr(newer),
        first_page=query.before is None and query.after is None,
    )


def _age(now: datetime, then: datetime) -> str:
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"

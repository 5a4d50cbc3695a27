"""The HTML pages: the submit form and a task's status page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from werkzeug.wrappers import Response

from app.tasks.long_running import long_running
from app.web.forms import LongRunningForm
from app.web.status import FINISHED_STATES, task_status

bp = Blueprint("pages", __name__)


@bp.get("/")
def index() -> str:
    """The form that submits a long-running task."""
    return render_template("index.html", form=LongRunningForm())


@bp.post("/tasks/long-running")
def submit_long_running() -> Response | tuple[str, int]:
    """Enqueue the task and redirect to its page, or show the form again with the errors (422)."""
    form = LongRunningForm()
    if not form.validate_on_submit():
        return render_template("index.html", form=form), 422
    result = long_running.delay(form.duration.data)
    return redirect(url_for("pages.task", task_id=result.id), code=303)


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> str:
    """The task's state and progress; the page reloads itself until the task has finished."""
    status = task_status(task_id)
    return render_template("task.html", task=status, finished=status["state"] in FINISHED_STATES)

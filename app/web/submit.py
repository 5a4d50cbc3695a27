"""Submitting tasks from the web: the kinds of task the pages and the API offer, and how each is queued.

Both front doors (the forms and the JSON API) and the Retry button come through :func:`submit`,
which queues the task through the project's Celery-style API and records it in
:mod:`app.web.history` in the same Redis round trip, then returns without waiting for a worker.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

from app.web import history

LONG_RUNNING = "long-running"
EMAIL = "email"
PING = "ping"

#: Task name (its dotted path) -> the kind the pages and the API call it by.
KINDS = {
    "app.tasks.long_running.long_running": LONG_RUNNING,
    "app.tasks.email.send_email": EMAIL,
    "app.tasks.ping.ping": PING,
}


class UnknownKind(ValueError):
    """Raised when asked to submit a kind of task the web app does not offer."""


def kind_of(task_name: str | None) -> str | None:
    """The kind of the task called ``task_name``; a task the web app does not know keeps its own name."""
    if task_name is None:
        return None
    return KINDS.get(task_name, task_name)


def _task(kind: str) -> Any:
    # Imported when used: the email task lives in its own package, which the web app need not load
    # to serve a page.
    if kind == LONG_RUNNING:
        from app.tasks.long_running import long_running

        return long_running
    if kind == EMAIL:
        from app.tasks.email import send_email

        return send_email
    if kind == PING:
        from app.tasks.ping import ping

        return ping
    raise UnknownKind(kind)


def _keep_seconds(celery: Any) -> int:
    # As long as the results themselves (Celery's result_expires, a day by default); never forever.
    return celery.backend.expires or 86400


def submit(kind: str, arguments: dict[str, Any]) -> str:
    """Queue a task of ``kind`` with keyword ``arguments``, record it, and return its id.

    Raises :class:`UnknownKind`, Redis' connection errors while Redis is down (a 503), or
    ``NotReplicatedError`` when ``REDIS_WAIT_REPLICAS`` replicas did not confirm it in time (a 503).
    """
    task = _task(kind)
    celery = current_app.extensions["celery"]
    pipe = celery.send_pipeline()
    # The request answers with the id and never waits on the result here: no subscription to it
    # (Celery's send-time SUBSCRIBE and its UNSUBSCRIBE were ~9% of a submit's CPU).
    result = task.apply_async(kwargs=arguments, pipeline=pipe, subscribe_result=False)
    history.record(pipe, result.id, kind, arguments, _keep_seconds(celery))
    celery.execute_send(pipe, [result.id])  # with REDIS_WAIT_REPLICAS, once a replica has it
    return result.id

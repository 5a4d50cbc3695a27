"""A task's live event stream (Server-Sent Events), and the bound that keeps streams from starving the app.

A stream holds a server thread for as long as it lasts: gunicorn's gthread worker has a fixed
number of them (``WEB_THREADS``), and when open streams took them all, every other request, /healthz
included, waited in line. So each process serves at most ``EVENT_STREAMS_PER_WORKER`` streams at
once (at most half its threads, checked in app/config.py); one more gets an immediate 503 with
``Retry-After``, and the page polls ``/api/tasks/<id>`` instead (static/progress.js). A stream also
ends after ``EVENT_STREAM_MAX_SECONDS``, freeing its slot for others; the browser reconnects by itself.

The slot is taken before the stream starts and given back when the server closes the response
(``call_on_close``), which happens when the stream ends, when writing to a vanished client fails
(seen at the next keep-alive), or when the server shuts down.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, current_app, jsonify, url_for

from app.celery_compat import states, view
from app.redis import UNAVAILABLE_ERRORS
from app.web.status import FINISHED_STATES, task_status, with_document

EXTENSION = "event_stream_slots"

NO_STORE = {"Cache-Control": "no-store"}

#: The event stream waits this long on the task's channel before looking around (keep-alive, deadline).
EVENTS_WAIT_SECONDS = 1.0
#: ...and re-reads the task this often even without a message, in case one was lost.
EVENTS_REREAD_SECONDS = 5.0
#: A comment line this often keeps proxies from closing an idle stream, and finds clients that left:
#: writing to a closed connection fails, which frees the slot.
EVENTS_KEEPALIVE_SECONDS = 5
#: What a refused stream is told: poll meanwhile, and try streaming again after this many seconds.
STREAMS_BUSY_RETRY_AFTER = 10


#: Documents in these states change the RQ-side facts (worker, start, end), so the stream re-reads
#: the task; any other (a custom state such as PROGRESS, the frequent one) is applied as published.
_REREAD_STATES = frozenset({states.STARTED, states.RETRY, *states.READY_STATES})


def _slots(app: Flask) -> threading.BoundedSemaphore:
    # One per process (gunicorn forks its workers before they build the app, so each has its own).
    slots = app.extensions.get(EXTENSION)
    if slots is None:
        slots = app.extensions[EXTENSION] = threading.BoundedSemaphore(int(app.config["EVENT_STREAMS_PER_WORKER"]))
    return slots


def init_app(app: Flask) -> None:
    """Create ``app``'s stream slots now, not racily on the first stream."""
    _slots(app)


def stream_response(task_id: str) -> Response | tuple[Response, int, dict[str, str]]:
    """The ``text/event-stream`` response for ``task_id``, or 503 when this process serves enough streams.

    Raises :class:`app.web.status.UnknownTask` (404) for an id nothing knows.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    slots = _slots(app)
    if not slots.acquire(blocking=False):
        return _busy(task_id)
    try:
        first = task_status(task_id)
        stream = _events(app, task_id, first)
        response = Response(stream, mimetype="text/event-stream", headers={**NO_STORE, "X-Accel-Buffering": "no"})
    except BaseException:
        slots.release()
        raise
    response.call_on_close(slots.release)
    return response


def _busy(task_id: str) -> tuple[Response, int, dict[str, str]]:
    poll = url_for("api.task_status_view", task_id=task_id)
    body = jsonify(error="too many live streams on this server; poll the task's status instead", poll=poll)
    return body, 503, {**NO_STORE, "Retry-After": str(STREAMS_BUSY_RETRY_AFTER)}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _events(app: Flask, task_id: str, status: dict[str, Any]) -> Iterator[str]:
    # The worker publishes every document it stores (progress included) on the task's channel, so
    # the stream blocks on that and applies a progress document as it is, reading nothing; a start
    # or an end changes the RQ-side facts too, so those (and a quiet spell, in case a message was
    # lost while the subscription reconnected) re-read the task.
    with app.app_context():
        lifetime = float(app.config["EVENT_STREAM_MAX_SECONDS"])
        started = last_sent = last_read = time.monotonic()
        try:
            with view.subscribe(app.extensions["celery"], task_id) as updates:
                status = task_status(task_id)  # after subscribing: no change can slip in between
                yield "retry: 1000\n" + _event("status", status)
                while status["state"] not in FINISHED_STATES:
                    now = time.monotonic()
                    if now - started > lifetime:
                        return
                    if now - last_sent > EVENTS_KEEPALIVE_SECONDS:
                        last_sent = now
                        yield ": keep-alive\n\n"
                    document = updates.next(timeout=EVENTS_WAIT_SECONDS)
                    if document is None and time.monotonic() - last_read < EVENTS_REREAD_SECONDS:
                        continue
                    if document is not None and document.get("status") not in _REREAD_STATES:
                        new_status = with_document(status, document)
                    else:
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

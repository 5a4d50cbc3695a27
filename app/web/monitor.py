"""The monitor's pages: Workers (with Shutdown and pool grow/shrink), Queues (with graphs), Periodic tasks.

Everything shown is read from what workers and beat keep in Redis (:mod:`app.web.fleet`,
:mod:`app.web.queues`, :mod:`app.web.periodic`): the history is there whether or not anyone
watched. The buttons go through the adapter's remote control (``app.control``), as a Celery
operator's own scripts would: a GET shows what will happen and asks to confirm, and the POST
(with the app's CSRF token, behind the app's authentication outside development) sends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from app.redis import get_redis
from app.web import fleet, periodic, queues

bp = Blueprint("monitor", __name__)

#: How long a button waits for the worker's answer: it answers before it acts, so this is plenty.
REPLY_TIMEOUT = 3.0


@dataclass(frozen=True)
class Action:
    """A button of the Workers page: the remote control command it sends, and how the page names it."""

    command: str
    verb: str
    explanation: str
    arguments: tuple[tuple[str, int], ...] = ()


ACTIONS = {
    "shutdown": Action("shutdown", "Shut down",
                       "The worker finishes its running tasks, takes no new one, and exits. "
                       "Nothing restarts it unless your process manager does."),
    "grow": Action("pool_grow", "Add a process", "The worker starts one more work process.", (("n", 1),)),
    "shrink": Action("pool_shrink", "Remove a process",
                     "The worker retires one work process (an idle one if it can) after its running task; "
                     "it keeps at least one.", (("n", 1),)),
}


@bp.app_template_filter("monitor_iso")
def monitor_iso(moment: datetime | str) -> str:
    """UTC ISO time with milliseconds and a ``Z``, as /tasks writes it (times.js makes it readable)."""
    if isinstance(moment, str):
        return moment
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@bp.get("/workers")
def workers() -> str:
    """Every worker node: host, pid, pool, processes, running tasks, counts, last heartbeat."""
    return render_template("workers.html", nodes=fleet.nodes(get_redis()), actions=ACTIONS)


def _action(name: str, node: str) -> Action:
    action = ACTIONS.get(name)
    if action is None:
        abort(404)
    if node not in fleet.node_names(get_redis()):
        abort(404, description=f"No worker {node} listens to the remote control now.")
    return action


@bp.get("/workers/<path:node>/<name>")
def confirm(node: str, name: str) -> str:
    """What the button will do, and a form to confirm it."""
    return render_template("worker_action.html", node=node, name=name, action=_action(name, node))


@bp.post("/workers/<path:node>/<name>")
def act(node: str, name: str) -> Response:
    """Send the command to that one node; back to the Workers page with its answer."""
    action = _action(name, node)
    control = current_app.extensions["celery"].control
    replies = control.broadcast(action.command, arguments=dict(action.arguments), destination=[node],
                                reply=True, timeout=REPLY_TIMEOUT) or []
    answer = next((reply[node] for reply in replies if node in reply), None)
    # Flashed in the session, not put in the URL: a link could then make the page say anything.
    if answer is None:
        flash(f"{node} did not answer ({action.verb.lower()}) within {REPLY_TIMEOUT:g} s", "failed")
    elif "error" in answer:
        flash(f"{node}: {answer['error']}", "failed")
    else:
        flash(f"{node}: {answer.get('ok', 'done')}", "done")
    return redirect(url_for("monitor.workers"), code=303)


@bp.get("/queues")
def queue_list() -> str:
    """Each queue's lists now and over the last hour or day; per task name, throughput and run time."""
    window = request.args.get("window", "hour")
    if window not in queues.WINDOWS:
        abort(404)
    conn = get_redis()
    names = queues.queue_names(conn)
    return render_template("queues.html", window=window, now=queues.lengths_now(conn, names),
                           parts=queues.PARTS, lengths=queues.length_charts(conn, names, window),
                           tasks=queues.task_charts(conn, window))


@bp.get("/periodic")
def periodic_list() -> str:
    """The beat schedule: each entry's task, schedule, last run and next run."""
    configured = current_app.extensions["celery"].conf.get("beat_schedule") or {}
    return render_template("periodic.html", entries=periodic.entries(get_redis(), configured))

"""What a task's page shows beyond its status: its timeline, its relatives, its arguments to edit.

All from what is already stored: the status (:mod:`app.web.status`), the RQ job's Celery options
(parent, root, group, chord), the retry log the worker appends to on each retry, and the children
noted when each was sent. Two round trips more than the status, whatever the task.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app

from app.celery_compat import view
from app.redis import get_redis
from app.web.submit import EMAIL, LONG_RUNNING

#: What the timeline calls a task that ended in each state.
ENDINGS = {"SUCCESS": "Succeeded", "FAILURE": "Failed", "REVOKED": "Cancelled"}


@dataclass(frozen=True)
class Event:
    """One line of the timeline: what happened, when (ISO, UTC), and any detail (a retry's reason)."""

    what: str
    at: str
    detail: str = ""


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def timeline(status: dict[str, Any], retries: list[view.Retried]) -> list[Event]:
    """Sent, each retry with its reason, the last run's start, the end: oldest first."""
    events = []
    if status["created_at"]:
        events.append(Event("Sent", status["created_at"]))
    events += [Event(f"Retry {one.retries}", _iso(one.at), one.reason) for one in retries]
    if status["started_at"]:
        events.append(Event("Started" if not retries else f"Started (run {len(retries) + 1})", status["started_at"]))
    if status["finished_at"]:
        events.append(Event(ENDINGS.get(status["state"], status["state"].capitalize()), status["finished_at"]))
    # ISO times in one form sort as text; a stable sort keeps Sent first when times tie.
    return sorted(events, key=lambda event: event.at)


def task_timeline(status: dict[str, Any]) -> list[Event]:
    """The timeline of the task ``status`` describes, with its retries read from Redis (one round trip)."""
    return timeline(status, view.retries_of(get_redis(), status["id"]))


def links(task_id: str, job: view.JobFacts | None, children: list[str]) -> list[tuple[str, str, bool]]:
    """``(label, id, is a task)`` for the task's relatives: parent, root, group, chord body, children."""
    found: list[tuple[str, str, bool]] = []
    if job is not None:
        for label, other in (("Parent", job.parent_id), ("Root", job.root_id), ("Chord body", job.chord_body_id)):
            if other and other != task_id:
                found.append((label, other, True))
        if job.group_id:
            found.append(("Group", job.group_id, False))  # a group is not a task: shown, not linked
    found += [("Child", child, True) for child in children]
    return found


def editable_arguments(status: dict[str, Any], job: view.JobFacts | None) -> str:
    """The task's arguments as the Retry-with-edits form shows them: the form's fields, or args/kwargs."""
    if status["kind"] in (LONG_RUNNING, EMAIL):
        return json.dumps(status["arguments"], indent=2, ensure_ascii=False)
    args = job.args if job is not None and job.args is not None else []
    kwargs = job.kwargs if job is not None and job.kwargs is not None else {}
    return json.dumps({"args": args, "kwargs": kwargs}, indent=2, ensure_ascii=False)


def task_detail(status: dict[str, Any]) -> dict[str, Any]:
    """The timeline, relatives, name, queue and editable arguments of the task ``status`` describes."""
    task_id = status["id"]
    conn = get_redis()
    job = view.job_facts(current_app.extensions["celery"], task_id)
    children, all_children = view.children_of(conn, task_id)
    return {
        "name": job.name if job is not None else None,
        "queue": job.queue if job is not None else None,
        "timeline": task_timeline(status),
        "links": links(task_id, job, children),
        "more_children": all_children - len(children),
        "edit_arguments": editable_arguments(status, job),
    }

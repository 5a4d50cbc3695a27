"""The task list's data: every task any producer sent, and the web app's own record of its submissions.

Every task is indexed when it is sent, whoever sends it (the web app, a Celery program's
``.delay()``, beat, a canvas's children): ``Celery.send_task`` adds it in the same round trip as
the job, by time, by name and by queue, trimmed by age and count (``task_index_expires``,
``task_index_max_tasks``). This module reads that index through :mod:`app.celery_compat.view`
and finds a page of it:

* without a state filter, a page costs three round trips whatever the number of tasks: the ids
  (one range on the right sorted set), their small facts (one pipeline), their documents (one MGET);
* with a state filter, a search in the arguments, or a name and a queue together, one script
  looks through the index in Redis (``scripts.SCAN_TASKS``): each task's RQ status first rules
  out those that cannot be in that state, and only the rest's documents are read; at most
  :data:`MAX_SCANNED` tasks are examined per request, and the page's cursors go on from there;
* a time range (``since``, ``until``) bounds the ranges and the script themselves, so the cursors
  page within it and the cost per page stays the same.

The web app also keeps ``web:task:<id>``, a small hash with the kind and the arguments a form
submitted, which the status page shows while no worker has written anything yet.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import redis

from app.celery_compat import states, view

RECORD_PREFIX = "web:task:"

#: How many tasks one request examines at most while looking for a state, a queue within a name, or
#: an argument, so that a rare one cannot make a page read the whole index; its cursors go on from there.
MAX_SCANNED = 5_000

#: The Celery states a task may be in, by its RQ job's status: a superset (the document decides),
#: so that tasks in other states are ruled out without reading their documents. "started" and a
#: job that is gone may be in any state.
MAY_BE: dict[str, frozenset[str]] = {
    "queued": frozenset({states.PENDING, states.RECEIVED, states.RETRY, states.REVOKED}),
    "deferred": frozenset({states.PENDING, states.REVOKED}),
    "scheduled": frozenset({states.PENDING, states.RETRY, states.REVOKED}),
    "finished": frozenset({states.SUCCESS, states.PENDING}),  # PENDING: a result that was not kept
    "failed": frozenset({states.FAILURE, states.REVOKED}),
    "stopped": frozenset({states.FAILURE, states.REVOKED}),
    "canceled": frozenset({states.REVOKED}),
}


@dataclass(frozen=True)
class Record:
    """What the web app knows about a task it submitted."""

    id: str
    kind: str
    arguments: dict[str, Any]
    created: float


def record_key(task_id: str) -> str:
    return f"{RECORD_PREFIX}{task_id}"


def record(pipe: Any, task_id: str, kind: str, arguments: dict[str, Any], keep_seconds: int,
           now: float | None = None) -> None:
    """Queue on ``pipe`` the commands that keep the kind and arguments of a task the web app submitted."""
    now = time.time() if now is None else now
    key = record_key(task_id)
    pipe.hset(key, mapping={"kind": kind, "arguments": json.dumps(arguments), "created": repr(now)})
    pipe.expire(key, keep_seconds)


def _parse(task_id: str, fields: dict[bytes, bytes]) -> Record | None:
    if not fields:
        return None
    try:
        return Record(
            id=task_id,
            kind=fields[b"kind"].decode(),
            arguments=json.loads(fields[b"arguments"]),
            created=float(fields[b"created"]),
        )
    except (KeyError, ValueError):  # written by something else: treat as unknown rather than fail the page
        return None


def load(conn: redis.Redis, task_id: str) -> Record | None:
    """The record of one task, or ``None`` if the web app did not submit it (or it expired)."""
    return _parse(task_id, conn.hgetall(record_key(task_id)))


def load_many(conn: redis.Redis, task_ids: list[str]) -> list[Record | None]:
    """The records of several tasks in one round trip, in order."""
    pipe = conn.pipeline(transaction=False)
    for task_id in task_ids:
        pipe.hgetall(record_key(task_id))
    return [_parse(task_id, fields) for task_id, fields in zip(task_ids, pipe.execute(), strict=True)]


@dataclass(frozen=True)
class Query:
    """What the list is asked for: filters (all optional) and where the page starts."""

    state: str | None = None
    name: str | None = None
    queue: str | None = None
    task_id: str | None = None
    search: str | None = None
    limit: int = 20
    before: float | None = None
    after: float | None = None
    #: Only tasks sent from ``since`` (inclusive) to ``until`` (exclusive), epoch seconds; the cursors page within.
    since: float | None = None
    until: float | None = None

    @property
    def within(self) -> view.Range:
        return view.Range(self.since, self.until)


@dataclass(frozen=True)
class Found:
    """A task on a page: what the index and its job say, and its stored document (None: none stored)."""

    sent: view.Sent
    document: dict[str, Any] | None


@dataclass(frozen=True)
class Page:
    """A page, newest first, and the cursors of the pages either side (None where there is none)."""

    found: list[Found]
    older: float | None
    newer: float | None


def _statuses(state: str | None) -> tuple[str, ...]:
    return tuple(status for status, may_be in MAY_BE.items() if state in may_be) if state else ()


def _locate(conn: redis.Redis, query: Query) -> tuple[list[tuple[str, float]], list[float]]:
    """The page's ``(id, send time)`` newest first, and the send times examined to find them."""
    if query.task_id is not None:
        sent = view.sent_send_time(conn, query.task_id)
        return ([(query.task_id, sent)] if sent is not None else []), []
    if query.state or query.search or (query.name and query.queue):
        scan = view.scan_sent(conn, query.limit, MAX_SCANNED, query.name, query.queue, query.before, query.after,
                              query.state, _statuses(query.state), query.search, within=query.within)
        return scan.found, [edge for edge in (scan.oldest, scan.newest) if edge is not None]
    found = view.sent_ids(conn, query.limit, query.name, query.queue, before=query.before, after=query.after,
                          within=query.within)
    return found, [score for _, score in found]


def find(conn: redis.Redis, query: Query) -> Page:
    """One page of the task list for ``query``, newest first, with the cursors either side."""
    located, examined = _locate(conn, query)
    facts = view.sent_facts(conn, located)
    documents = view.documents_on(conn, [sent.id for sent in facts])
    found = [Found(sent, document) for sent, document in zip(facts, documents, strict=True)]
    return Page(found, *_cursors(conn, query, examined))


def _cursors(conn: redis.Redis, query: Query, examined: list[float]) -> tuple[float | None, float | None]:
    if query.task_id is not None or not examined:
        return None, None  # a search by id, or nothing beyond the cursor (the page links to the newest)
    oldest, newest = min(examined), max(examined)
    older, newer = view.sent_around(conn, oldest, newest, query.name, query.queue, within=query.within)
    return (oldest if older else None), (newest if newer else None)

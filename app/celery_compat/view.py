"""A read-only view of tasks for pages and APIs: a task's document, its RQ-side facts, its updates.

What a dashboard needs and Celery's ``AsyncResult`` does not give: whether anything is stored
at all (an unknown id and a queued task are both ``PENDING`` to Celery), what the RQ job knows
(when it was created and started, on which worker, how often it was redelivered), and a
subscription that yields each document a worker publishes. Callers never spell a Redis key or
decode the job layout: this module and :mod:`protocol` do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from . import finished, keys, scripts
from .protocol import Envelope
from .result import _decode_result


@dataclass(frozen=True)
class JobFacts:
    """What the RQ job carrying a task knows; the task's arguments are in their JSON form."""

    name: str | None
    args: list | None
    kwargs: dict | None
    status: str | None
    created_at: datetime | None
    enqueued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    last_heartbeat: datetime | None
    worker: str | None
    redelivered: int
    queue: str | None = None
    parent_id: str | None = None
    root_id: str | None = None
    group_id: str | None = None
    chord_body_id: str | None = None


@dataclass(frozen=True)
class Retried:
    """One retry of a task, as the worker noted it: when, which retry it was, and why."""

    at: datetime
    retries: int
    reason: str


def retries_of(connection: Any, task_id: str) -> list[Retried]:
    """Each retry of the task, oldest first (empty for a task that never retried, or once they expired)."""
    found = []
    for raw in connection.lrange(keys.task_retries(task_id), 0, -1):
        try:
            entry = json.loads(raw)
            found.append(Retried(datetime.fromtimestamp(float(entry["at"]), timezone.utc), int(entry["retries"]),
                                 str(entry["reason"])))
        except (ValueError, KeyError, TypeError):
            continue  # written by something else: leave it out rather than fail the page
    return found


#: Children read at most for a task's page: a parent of 50,000 children made a 4.5 MB page.
CHILDREN_SHOWN = 100


def children_of(connection: Any, task_id: str, limit: int = CHILDREN_SHOWN) -> tuple[list[str], int]:
    """Up to ``limit`` ids of the tasks sent with this task as their parent (a chain's next step, a
    callback...), sorted, and how many there are in all. Which ones, past ``limit``, is arbitrary."""
    key = keys.task_children(task_id)
    with connection.pipeline(transaction=False) as pipe:
        pipe.srandmember(key, limit)  # distinct members, all of them when the set holds no more
        pipe.scard(key)
        some, total = pipe.execute()
    return sorted(member.decode() for member in some), total


def task_document(app: Any, task_id: str) -> dict[str, Any] | None:
    """The task's stored document (status, result, traceback, date_done...), or None when none is stored."""
    raw = app.connection.get(keys.meta(task_id))
    return json.loads(raw) if raw else None


@dataclass(frozen=True)
class Outcome:
    """A document decoded as ``AsyncResult`` decodes it: an error comes back as the exception."""

    state: str
    info: Any
    traceback: str | None
    date_done: datetime | None


def outcome(document: dict[str, Any]) -> Outcome:
    """Decode a task's document (one read, or one published to a :class:`Subscription`)."""
    date_done = document.get("date_done")
    return Outcome(document["status"], _decode_result(document), document.get("traceback"),
                   datetime.fromisoformat(date_done) if date_done else None)


def task_documents(app: Any, task_ids: list[str]) -> list[dict[str, Any]]:
    """Documents of several tasks in one round trip, in order; a task with none reads as PENDING."""
    return app.backend.get_many_meta(task_ids)


def documents_on(connection: Any, task_ids: list[str]) -> list[dict[str, Any] | None]:
    """Stored documents of several tasks in one MGET, in order; None where none is stored.

    For tools that hold a Redis connection rather than a Celery app (the mounted rq-dashboard).
    """
    raws = connection.mget([keys.meta(task_id) for task_id in task_ids]) if task_ids else []
    return [json.loads(raw) if raw else None for raw in raws]


@dataclass(frozen=True)
class Running:
    """A task a worker runs now, as RQ's started registry and the job hash say."""

    task_id: str
    worker: str
    started_at: datetime | None


def running_on(connection: Any, queue_names: list[str]) -> dict[str, Running]:
    """What each worker runs now, by worker name: two round trips whatever the number of queues.

    The lean worker does not write RQ's per-task ``current_job`` field to its worker hash (that
    is most of the traffic it saves); the started registries and the job hashes say the same.
    """
    with connection.pipeline(transaction=False) as pipe:
        for name in queue_names:
            pipe.zrange(keys.started(name), 0, -1)
        members = [member.decode() for found in pipe.execute() for member in found]
    task_ids = [member.rsplit(":", 1)[0] for member in members]
    with connection.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hmget(keys.job(task_id), "worker_name", "started_at")
        fields = pipe.execute()
    found: dict[str, Running] = {}
    for task_id, (worker, started_at) in zip(task_ids, fields, strict=True):
        if worker:
            stamp = started_at.decode() if started_at else ""
            found[worker.decode()] = Running(task_id, worker.decode(),
                                             datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else None)
    return found


@dataclass(frozen=True)
class Sent:
    """A task in the index of sent tasks, with what its RQ job says now (None once the job is gone)."""

    id: str
    sent: float
    name: str | None
    queue: str | None
    arguments: str | None
    status: str | None
    worker: str | None
    started_at: datetime | None
    ended_at: datetime | None
    retries: int


def _index_key(name: str | None, queue_name: str | None) -> str:
    # One sorted set per filter; with both, the name's (the other is checked on each task).
    if name:
        return keys.tasks_by_name(name)
    return keys.tasks_by_queue(queue_name) if queue_name else keys.TASKS


@dataclass(frozen=True)
class Range:
    """Send times a list is bounded to: from ``since`` (inclusive) to ``until`` (exclusive); None: open."""

    since: float | None = None
    until: float | None = None


EVER = Range()


def _older_bounds(before: float | None, within: Range) -> tuple[str, str]:
    # Older than the cursor (exclusive), within the range: the nearer of the cursor and ``until`` is the start.
    edges = [edge for edge in (before, within.until) if edge is not None]
    start = f"({min(edges)!r}" if edges else "+inf"
    return start, "-inf" if within.since is None else repr(within.since)


def _newer_bounds(after: float, within: Range) -> tuple[str, str]:
    # Newer than the cursor (exclusive), unless the range begins later: then from its ``since`` (inclusive).
    start = repr(within.since) if within.since is not None and within.since > after else f"({after!r}"
    return start, "+inf" if within.until is None else f"({within.until!r}"


def sent_ids(connection: Any, count: int, name: str | None = None, queue_name: str | None = None,
             before: float | None = None, after: float | None = None, within: Range = EVER) -> list[tuple[str, float]]:
    """Up to ``count`` ``(task id, send time)`` sent ``within`` the range, newest first.

    Older than ``before``, or, with ``after``, the ``count`` tasks just newer than it. One
    command, O(log n + count), whatever the number of tasks indexed.
    """
    key = _index_key(name, queue_name)
    if after is not None:
        start, end = _newer_bounds(after, within)
        found = connection.zrangebyscore(key, start, end, start=0, num=count, withscores=True)[::-1]
    else:
        start, end = _older_bounds(before, within)
        found = connection.zrevrangebyscore(key, start, end, start=0, num=count, withscores=True)
    return [(member.decode(), score) for member, score in found]


@dataclass(frozen=True)
class Scan:
    """Matches of :func:`scan_sent`, newest first, and the oldest and newest send time it examined."""

    found: list[tuple[str, float]]
    oldest: float | None
    newest: float | None


def scan_sent(connection: Any, count: int, budget: int, name: str | None = None, queue_name: str | None = None,
              before: float | None = None, after: float | None = None, state: str | None = None,
              statuses: tuple[str, ...] = (), search: str | None = None, within: Range = EVER) -> Scan:
    """Up to ``count`` tasks that match, examining at most ``budget`` from the cursor: one script call.

    ``statuses`` are the RQ job statuses a task in ``state`` may have; only those tasks' documents
    are read (a running task's and one whose job is gone are always read). The script stops at the
    edge of ``within``, so a range costs no more than the tasks inside it.
    """
    key = _index_key(name, queue_name)
    direction = "newer" if after is not None else "older"
    start, end = _newer_bounds(after, within) if after is not None else _older_bounds(before, within)
    reply = connection.eval(scripts.SCAN_TASKS, 1, key, start, direction, count, budget,
                            keys.JOB_PREFIX, keys.META_PREFIX, keys.TASK_INFO_PREFIX,
                            queue_name if name and queue_name else "", (search or "").lower(), state or "", end,
                            *statuses)
    # The script ends with the oldest and newest send time examined (nil when none was).
    *matches, oldest, newest = reply
    pairs = [(matches[i].decode(), float(matches[i + 1])) for i in range(0, len(matches), 2)]
    found = pairs[::-1] if direction == "newer" else pairs
    return Scan(found, float(oldest) if oldest else None, float(newest) if newest else None)


def sent_around(connection: Any, oldest: float, newest: float, name: str | None = None,
                queue_name: str | None = None, within: Range = EVER) -> tuple[bool, bool]:
    """Whether the index holds tasks ``within`` the range older than ``oldest`` and newer than ``newest``.

    Two ZCOUNTs, one round trip.
    """
    key = _index_key(name, queue_name)
    since = "-inf" if within.since is None else repr(within.since)
    until = "+inf" if within.until is None else f"({within.until!r}"
    with connection.pipeline(transaction=False) as pipe:
        pipe.zcount(key, since, f"({oldest!r}")
        pipe.zcount(key, f"({newest!r}", until)
        older, newer = pipe.execute()
    return older > 0, newer > 0


def sent_send_time(connection: Any, task_id: str) -> float | None:
    """When the task was sent, if the index still holds it."""
    return connection.zscore(keys.TASKS, task_id)


def _stamp(raw: bytes | None) -> datetime | None:
    return datetime.fromisoformat(raw.decode().replace("Z", "+00:00")) if raw else None


#: The facts of a finished task the index hash keeps after its job hash expired (finished.py).
_KEPT = (finished.WORKER, finished.STARTED, finished.ENDED, finished.RETRIES)


def sent_facts(connection: Any, found: list[tuple[str, float]]) -> list[Sent]:
    """What the index and the RQ job say of each task, in one round trip (small fields, no results)."""
    with connection.pipeline(transaction=False) as pipe:
        for task_id, _ in found:
            pipe.hmget(keys.task_info(task_id), "name", "queue", "args", *_KEPT)
            pipe.hmget(keys.job(task_id), "status", "worker_name", "started_at", "ended_at", "number_of_retries")
        replies = pipe.execute()
    facts = []
    for (task_id, sent), info, job in zip(found, replies[::2], replies[1::2], strict=True):
        name, queue_name, arguments = (value.decode() if value else None for value in info[:3])
        status, worker, started, ended, retries = job
        if status is None and info[4]:  # the job hash expired after a success: the index kept its facts
            status, (worker, started, ended, retries) = b"finished", info[3:]
        facts.append(Sent(task_id, sent, name, queue_name, arguments, status.decode() if status else None,
                          worker.decode() if worker else None, _stamp(started), _stamp(ended),
                          int(retries) if retries else 0))
    return facts


def job_facts(app: Any, task_id: str) -> JobFacts | None:
    """The RQ side of a task, or None when no job carries it (never queued, or expired)."""
    try:
        job = Job.fetch(task_id, connection=app.connection, serializer=JSONSerializer)
    except NoSuchJobError:
        return _kept_facts(app.connection, task_id)
    try:
        envelope: Envelope | None = Envelope.of(job)
    except (KeyError, ValueError, TypeError, DeserializationError):  # not ours: e.g. plain RQ with pickle
        envelope = None
    status = job.get_status(refresh=False)
    options = Envelope.options_of(job)
    return JobFacts(
        name=envelope.name if envelope else None, args=envelope.args if envelope else None,
        kwargs=envelope.kwargs if envelope else None, status=getattr(status, "value", status),
        created_at=job.created_at, enqueued_at=job.enqueued_at, started_at=job.started_at,
        ended_at=job.ended_at, last_heartbeat=job.last_heartbeat, worker=job.worker_name,
        redelivered=int(options.get("redelivered") or 0), queue=job.origin,
        parent_id=options.get("parent_id"), root_id=options.get("root_id"),
        group_id=options.get("group_id") or _chord(options).get("group_id"),
        chord_body_id=((_chord(options).get("body") or {}).get("options") or {}).get("task_id"),
    )


def _kept_facts(connection: Any, task_id: str) -> JobFacts | None:
    """A successful task's facts from its index hash, once its job hash expired; None if it has none."""
    info = {field.decode(): value.decode() for field, value in connection.hgetall(keys.task_info(task_id)).items()}
    if not info.get(finished.ENDED):
        return None
    try:
        args, kwargs = json.loads(info[finished.CALL]) if info.get(finished.CALL) else (None, None)
    except ValueError:
        args, kwargs = None, None
    sent = float(info["sent"]) if info.get("sent") else None
    created = datetime.fromtimestamp(sent, timezone.utc) if sent is not None else None
    return JobFacts(
        name=info.get("name"), args=args, kwargs=kwargs, status="finished", created_at=created, enqueued_at=created,
        started_at=_stamp(info.get(finished.STARTED, "").encode()), ended_at=_stamp(info[finished.ENDED].encode()),
        last_heartbeat=None, worker=info.get(finished.WORKER), redelivered=int(info.get(finished.REDELIVERED) or 0),
        queue=info.get("queue"), parent_id=info.get(finished.PARENT), root_id=info.get(finished.ROOT),
        group_id=info.get(finished.GROUP), chord_body_id=info.get(finished.CHORD_BODY),
    )


def _chord(options: dict[str, Any]) -> dict[str, Any]:
    # A chord's header task carries the chord: its group and the body to run once all are done.
    chord = options.get("chord")
    return chord if isinstance(chord, dict) else {}


class Subscription:
    """The documents a task's workers publish, from the moment of subscribing.

    Use as a context manager; :meth:`next` waits up to ``timeout`` seconds and returns the next
    published document, or None when nothing came (the caller may then re-read, in case a
    message was lost while the connection was re-established).
    """

    def __init__(self, app: Any, task_id: str) -> None:
        self._pubsub = app.connection.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(keys.meta(task_id))

    def next(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message.get("type") == "message":
                return json.loads(message["data"])
        return None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            document = self.next(timeout=60.0)
            if document is not None:
                yield document

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def subscribe(app: Any, task_id: str) -> Subscription:
    """Subscribe to a task's updates; read its current state after this, so no change slips between."""
    return Subscription(app, task_id)


#: What an RQ queue holds: its list ("queued"), then RQ's registries beside it (keys.REGISTRIES).
QUEUE_PARTS = ("queued", *keys.REGISTRIES)


def rq_queue_names(connection: Any) -> list[str]:
    """Every RQ queue's name, sorted (a queue's priority lists are RQ queues of their own)."""
    return sorted(keys.queue_name(key.decode()) for key in connection.smembers(keys.QUEUES))


def queue_parts(connection: Any, names: list[str]) -> dict[str, dict[str, int]]:
    """Per RQ queue in ``names``: its list's length and each registry's size (QUEUE_PARTS), one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(keys.queue(name))
            for kind in keys.REGISTRIES:
                pipe.zcard(keys.registry(kind, name))
        replies = iter(pipe.execute())
    return {name: {part: int(next(replies)) for part in QUEUE_PARTS} for name in names}

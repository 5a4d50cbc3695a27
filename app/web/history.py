"""The web app's record of the tasks it submitted, so that ``/tasks`` lists them without scanning Redis.

Two structures, both written in the same round trip as the job itself:

* ``web:tasks``, a sorted set of task ids scored by submit time (seconds since the epoch), which
  gives "newest first" pages in O(log n) whatever the number of tasks;
* ``web:task:<id>``, a small hash with the task's kind, its arguments (JSON) and its submit time,
  which the status page needs while no worker has written anything yet.

Entries older than the results they describe are trimmed at each submit, so neither grows without
bound. The task's state is not kept here: it lives in the Celery result document, which workers
update; a page of the list reads all of its documents with one ``MGET``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

INDEX_KEY = "web:tasks"
RECORD_PREFIX = "web:task:"

#: The index never holds more than this many tasks, however fast they are submitted.
MAX_TASKS = 100_000

#: How many documents one request reads at most while looking for tasks in a given state, so that a
#: rare state cannot make one page read all 100,000 documents; the page then offers a cursor to go on.
MAX_SCANNED = 5_000

_CHUNK = 500


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
    """Queue on ``pipe`` the commands that add a task to the index and trim what has expired."""
    now = time.time() if now is None else now
    key = record_key(task_id)
    pipe.hset(key, mapping={"kind": kind, "arguments": json.dumps(arguments), "created": repr(now)})
    pipe.expire(key, keep_seconds)
    pipe.zadd(INDEX_KEY, {task_id: now})
    pipe.zremrangebyscore(INDEX_KEY, "-inf", f"({now - keep_seconds}")
    pipe.zremrangebyrank(INDEX_KEY, 0, -MAX_TASKS - 1)


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


def newest(conn: redis.Redis, before: float | None = None) -> Iterator[tuple[str, float]]:
    """Yield ``(task_id, created)`` newest first, starting strictly before ``before`` when given."""
    upper: str = "+inf" if before is None else f"({before!r}"
    while True:
        chunk = conn.zrevrangebyscore(INDEX_KEY, upper, "-inf", start=0, num=_CHUNK, withscores=True)
        if not chunk:
            return
        for member, score in chunk:
            yield member.decode(), score
        if len(chunk) < _CHUNK:
            return
        upper = f"({chunk[-1][1]!r}"


def count(conn: redis.Redis) -> int:
    return conn.zcard(INDEX_KEY)

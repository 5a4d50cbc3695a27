"""The Periodic page's data: what beat runs, when it last ran each entry, and when it runs it next.

Beat describes each entry in Redis when it starts and after each run (``keys.beat_entries``),
beside its run history (``keys.beat_schedule``), so the page shows the schedule of any beat on this
Redis, a Celery program's too, without importing its code. Entries of the web app's own
``beat_schedule`` that no beat has described yet are listed as well, without a next run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import redis

from app.celery_compat import keys

#: A next run this far in the past means no beat is sending the entry (beat wakes at least every 5 min).
OVERDUE = timedelta(minutes=6)


@dataclass(frozen=True)
class Entry:
    name: str
    task: str
    schedule: str
    queue: str | None
    arguments: str
    last_run_at: datetime | None
    total_run_count: int
    next_run_at: datetime | None

    @property
    def overdue(self) -> bool:
        return self.next_run_at is not None and datetime.now(timezone.utc) - self.next_run_at > OVERDUE


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _history(raw: bytes | None) -> tuple[datetime | None, int]:
    if raw is None:
        return None, 0
    state = json.loads(raw)
    return _moment(state.get("last_run_at")), int(state.get("total_run_count") or 0)


def entries(conn: redis.Redis, configured: dict[str, Any] | None = None) -> list[Entry]:
    """Every entry beat described, then those of ``configured`` (a ``beat_schedule``) it did not; by name."""
    # One transaction: beat writes an entry's last and next run together (PersistentScheduler._claim).
    with conn.pipeline(transaction=True) as pipe:
        pipe.hgetall(keys.beat_entries())
        pipe.hgetall(keys.beat_schedule())
        described, history = pipe.execute()
    history = {name.decode(): raw for name, raw in history.items()}
    found = {}
    for raw_name, raw in described.items():
        name, entry = raw_name.decode(), json.loads(raw)
        last_run_at, count = _history(history.get(name))
        found[name] = Entry(name, entry.get("task") or "?", entry.get("schedule") or "?", entry.get("queue"),
                            _arguments(entry.get("args"), entry.get("kwargs")), last_run_at, count,
                            _moment(entry.get("next_run_at")))
    for name, entry in (configured or {}).items():
        if name not in found:
            last_run_at, count = _history(history.get(name))
            found[name] = Entry(name, str(entry.get("task")), str(entry.get("schedule")),
                                (entry.get("options") or {}).get("queue"),
                                _arguments(repr(list(entry.get("args") or ())), repr(dict(entry.get("kwargs") or {}))),
                                last_run_at, count, None)
    return [found[name] for name in sorted(found)]


def _arguments(args: str | None, kwargs: str | None) -> str:
    parts = [part for part in (args if args not in (None, "[]") else None,
                               kwargs if kwargs not in (None, "{}") else None) if part]
    return " ".join(parts) or "–"

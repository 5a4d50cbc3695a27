"""``PersistentScheduler``: the run history in Redis (JSON), shared by every beat of the app.

Celery keeps it in a ``shelve`` file (pickle) next to one beat process. Here it is one Redis
hash (``keys.beat_schedule()``): entry name -> ``{"last_run_at": ISO 8601 UTC, "total_run_count"}``.
The entries themselves (task, schedule, arguments) still come from ``beat_schedule``: code, not data.

Sharing the history is what lets several beats run at once (``worker.py -B`` on each worker)
and still send each run once: before sending, a scheduler moves the stored ``last_run_at``
from the value it based its decision on to now, in one ``WATCH``/``MULTI`` transaction. If
another scheduler already moved it, this one adopts the stored history and sends nothing.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from typing import Any

from redis.exceptions import WatchError

from .. import keys
from ..schedules import app_timezone, maybe_make_aware
from .entry import ScheduleEntry
from .scheduler import Scheduler

logger = logging.getLogger("app.celery_compat.beat")


def dump_state(entry: ScheduleEntry) -> str:
    moment = maybe_make_aware(entry.last_run_at).astimezone(timezone.utc)
    return json.dumps({"last_run_at": moment.isoformat(), "total_run_count": entry.total_run_count})


def describe(entry: ScheduleEntry) -> str:
    """What the monitor's Periodic page shows of an entry: its task, schedule, queue and next run (JSON)."""
    # is_due, not remaining_estimate: every schedule class has it (beat calls it), and it says
    # "due now" for a run that is late, rather than a time in the past.
    due, next_seconds = entry.is_due()
    next_run = datetime.now(timezone.utc) + timedelta(seconds=0 if due else max(float(next_seconds), 0.0))
    return json.dumps({
        "task": entry.task, "schedule": str(entry.schedule), "queue": (entry.options or {}).get("queue"),
        "args": repr(list(entry.args or ()))[:200], "kwargs": repr(dict(entry.kwargs or {}))[:200],
        "next_run_at": next_run.isoformat(), "described_at": datetime.now(timezone.utc).isoformat(),
    })


def load_state(raw: bytes | str) -> tuple[datetime, int]:
    state = json.loads(raw)
    return datetime.fromisoformat(state["last_run_at"]), int(state["total_run_count"])


class PersistentScheduler(Scheduler):
    """The default scheduler of ``Service`` (and so of ``-B`` and ``beat``): history in Redis.

    ``schedule_filename`` is accepted for Celery's signature and ignored: nothing is written to disk.
    """

    def __init__(self, *args: Any, schedule_filename: str | None = None, **kwargs: Any) -> None:
        self.schedule_filename = schedule_filename
        self._entries: dict[str, ScheduleEntry] = {}
        #: Entries whose due run another scheduler sent first: ``apply_entry`` skips them once.
        self._sent_elsewhere: set[str] = set()
        super().__init__(*args, **kwargs)

    def get_schedule(self) -> dict:
        return self._entries

    def set_schedule(self, schedule: dict) -> None:
        self._entries = schedule

    schedule = property(get_schedule, set_schedule)

    @property
    def key(self) -> str:
        return keys.beat_schedule()

    def setup_schedule(self) -> None:
        """Read ``beat_schedule``, then take each entry's history from Redis (storing it when new)."""
        self.merge_inplace(self.app.conf.get("beat_schedule") or {})
        self.install_default_entries(self.schedule)
        connection = self.app.connection
        stored = {name.decode() if isinstance(name, bytes) else name: raw
                  for name, raw in connection.hgetall(self.key).items()}
        with connection.pipeline() as pipe:
            for name, entry in self.schedule.items():
                if name in stored:
                    self._adopt(entry, stored[name])
                else:
                    pipe.hsetnx(self.key, name, dump_state(entry))
            # Entries no longer in beat_schedule are forgotten, as Celery's shelve forgets them.
            gone = set(stored) - set(self.schedule)
            if gone:
                pipe.hdel(self.key, *gone)
            self._publish(pipe, connection.hkeys(keys.beat_entries()))
            pipe.execute()
        logger.debug("beat: schedule: %s", ", ".join(map(repr, self.schedule.values())) or "empty")

    def _publish(self, pipe: Any, published: list[bytes]) -> None:
        """Describe every entry for the monitor, and forget those no longer in ``beat_schedule``."""
        if self.schedule:
            pipe.hset(keys.beat_entries(), mapping={name: describe(entry) for name, entry in self.schedule.items()})
        gone = {name.decode() for name in published} - set(self.schedule)
        if gone:
            pipe.hdel(keys.beat_entries(), *gone)

    def _adopt(self, entry: ScheduleEntry, raw: bytes | str) -> ScheduleEntry:
        last_run_at, total_run_count = load_state(raw)
        entry.last_run_at = last_run_at.astimezone(app_timezone(self.app))
        entry.total_run_count = total_run_count
        return entry

    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        """Claim this run in Redis; when another scheduler sent it already, adopt its history instead."""
        new_entry = next(entry)
        stored = self._claim(entry, new_entry)
        if stored is not None:
            self._sent_elsewhere.add(entry.name)
            new_entry = self._adopt(entry, stored)
            self.app.connection.hset(keys.beat_entries(), entry.name, describe(new_entry))
        self.schedule[entry.name] = new_entry
        return new_entry

    def _claim(self, entry: ScheduleEntry, new_entry: ScheduleEntry) -> bytes | None:
        """Store ``new_entry``'s history unless a later run is stored; return that later run's state."""
        seen = maybe_make_aware(entry.last_run_at)
        with self.app.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self.key)
                    raw = pipe.hget(self.key, entry.name)
                    if raw is not None and load_state(raw)[0] > seen:
                        pipe.unwatch()
                        return raw
                    pipe.multi()
                    pipe.hset(self.key, entry.name, dump_state(new_entry))
                    # Its next run moved: the monitor's Periodic page reads both in one transaction,
                    # so it never shows this run's last run beside the previous run's next run.
                    pipe.hset(keys.beat_entries(), entry.name, describe(new_entry))
                    pipe.execute()
                    return None
                except WatchError:
                    continue  # another scheduler wrote meanwhile: read again

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        if entry.name in self._sent_elsewhere:
            self._sent_elsewhere.discard(entry.name)
            logger.debug("beat: %s was sent by another scheduler", entry.name)
            return
        super().apply_entry(entry, producer=producer)

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        if advance:
            entry = self.reserve(entry)
            if entry.name in self._sent_elsewhere:
                self._sent_elsewhere.discard(entry.name)
                return None
        return super().apply_async(entry, producer=producer, advance=False, **kwargs)

    @property
    def info(self) -> str:
        return f"    . db -> redis hash {self.key}"

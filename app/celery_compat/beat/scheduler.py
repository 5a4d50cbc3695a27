"""``Scheduler``: Celery's in-memory periodic task scheduler, the class custom schedulers subclass.

The scheduler keeps a heap of ``(when, priority, entry)`` events. Each ``tick()`` looks at the
earliest; when its time has come it asks the entry's schedule ``is_due()``, sends it if so and
puts its successor back on the heap. ``tick()`` returns how long to sleep: 0 after sending (or
when another entry is ready right away), a negative number when the heap changed under it while
an entry was being checked (call again), at most ``max_interval``.

The hooks a subclass overrides are Celery's: ``setup_schedule``, the ``schedule`` property,
``reserve``, ``apply_entry``/``apply_async``/``send_task``, ``is_due``, ``sync`` and ``close``.
"""

from __future__ import annotations

import copy
import heapq
import logging
import time
from calendar import timegm
from typing import Any

from ..schedules import maybe_make_aware
from .entry import ScheduleEntry, evaluate_args, evaluate_kwargs, event_t

logger = logging.getLogger("app.celery_compat.beat")

#: Seconds the scheduler may sleep between two looks at the schedule (Celery's default, 5 minutes).
DEFAULT_MAX_INTERVAL = 300
#: How much earlier than an entry's time its heap event is set, so that it is never checked too late.
DRIFT = -0.010


class SchedulingError(Exception):
    """Raised when a due entry could not be sent."""


class Scheduler:
    """Sends the entries of ``schedule`` when they are due; ``lazy=True`` skips reading ``beat_schedule``."""

    Entry = ScheduleEntry
    max_interval: float = DEFAULT_MAX_INTERVAL
    #: Seconds between two ``sync()`` calls, and sends that force one (None: only the time counts).
    sync_every: float = 3 * 60
    sync_every_tasks: int | None = None
    _last_sync: float | None = None
    _tasks_since_sync = 0
    logger = logger

    def __init__(self, app: Any, schedule: dict | None = None, max_interval: float | None = None,
                 Producer: Any = None, lazy: bool = False, sync_every_tasks: int | None = None,  # noqa: N803
                 **kwargs: Any) -> None:
        self.app = app
        self.data = {} if schedule is None else schedule
        self.max_interval = max_interval or app.conf.get("beat_max_loop_interval") or self.max_interval
        self.Producer = Producer
        self.producer = None  # RQ has no producer to reuse: each send is one Redis transaction
        self._heap: list | None = None
        self.old_schedulers: dict | None = None
        self.sync_every_tasks = app.conf.get("beat_sync_every") if sync_every_tasks is None else sync_every_tasks
        if not lazy:
            self.setup_schedule()

    # -- the schedule ------------------------------------------------------------------------
    def get_schedule(self) -> dict:
        return self.data

    def set_schedule(self, schedule: dict) -> None:
        self.data = schedule

    schedule = property(get_schedule, set_schedule)

    def setup_schedule(self) -> None:
        self.install_default_entries(self.data)
        self.merge_inplace(self.app.conf.get("beat_schedule") or {})

    def install_default_entries(self, data: dict) -> None:
        """Nothing to add: results expire in Redis by themselves, so Celery's backend_cleanup is not needed."""

    def add(self, **kwargs: Any) -> ScheduleEntry:
        entry = self.Entry(app=self.app, **kwargs)
        self.schedule[entry.name] = entry
        return entry

    def _maybe_entry(self, name: str, entry: Any) -> ScheduleEntry:
        if isinstance(entry, self.Entry):
            entry.app = self.app
            return entry
        return self.Entry(**dict(entry, name=name, app=self.app))

    def update_from_dict(self, entries: dict) -> None:
        self.schedule.update({name: self._maybe_entry(name, entry) for name, entry in entries.items()})

    def merge_inplace(self, entries: dict) -> None:
        """Make the schedule hold exactly ``entries``, keeping the run history of those already there."""
        schedule = self.schedule
        for name in set(schedule) - set(entries):
            schedule.pop(name, None)
        for name, fields in entries.items():
            entry = self.Entry(**dict(fields, name=name, app=self.app))
            if schedule.get(name):
                schedule[name].update(entry)
            else:
                schedule[name] = entry

    def schedules_equal(self, old: dict | None, new: dict | None) -> bool:
        if old is None or new is None:
            return old is new
        return set(old) == set(new) and all(new.get(name) == entry for name, entry in old.items())

    # -- the heap ----------------------------------------------------------------------------
    def adjust(self, seconds: float | None, drift: float = DRIFT) -> float | None:
        return seconds + drift if seconds and seconds > 0 else seconds

    def is_due(self, entry: ScheduleEntry) -> Any:
        return entry.is_due()

    def _is_due_failed(self, entry: ScheduleEntry) -> tuple[bool, float]:
        # One entry whose next run cannot be computed must not stop the others: retry it later.
        logger.error("beat: Cannot calculate the next run of %r, trying again in %s s.", entry.name,
                     self.max_interval, exc_info=True)
        return False, self.max_interval

    def _checked(self, entry: ScheduleEntry) -> tuple[bool, Any]:
        try:
            return self.is_due(entry)
        except Exception:
            return self._is_due_failed(entry)

    def _when(self, entry: ScheduleEntry, next_time_to_run: float | None, mktime: Any = timegm) -> float:
        """The UTC timestamp ``next_time_to_run`` seconds after the entry's now (minus a little drift)."""
        now = maybe_make_aware(entry.default_now())
        return mktime(now.utctimetuple()) + now.microsecond / 1e6 + (self.adjust(next_time_to_run) or 0)

    def populate_heap(self, event_t: Any = event_t, heapify: Any = heapq.heapify) -> None:
        self._heap = []
        for entry in self.schedule.values():
            is_due, next_call_delay = self._checked(entry)
            self._heap.append(event_t(self._when(entry, 0 if is_due else next_call_delay) or 0, 5, entry))
        heapify(self._heap)

    def tick(self, event_t: Any = event_t, min: Any = min, heappop: Any = heapq.heappop,  # noqa: A002
             heappush: Any = heapq.heappush) -> float:
        """Send at most one due entry; return the seconds to wait before the next call."""
        if self._heap is None or not self.schedules_equal(self.old_schedulers, self.schedule):
            self.old_schedulers = copy.copy(self.schedule)
            self.populate_heap()
        heap = self._heap
        if not heap:
            return self.max_interval
        event = heap[0]
        entry = event[2]
        now = self._when(entry, 0)
        if event[0] > now:
            return min(event[0] - now, self.max_interval)
        is_due, next_time_to_run = self._checked(entry)
        verify = heappop(heap)
        if verify is not event:
            # Another entry took the top while this one was being checked: put it back and look again.
            heappush(heap, verify)
            return min(verify[0] - self._when(verify[2], 0), self.max_interval)
        if is_due:
            next_entry = self.reserve(entry)
            self.apply_entry(entry, producer=self.producer)
            heappush(heap, event_t(self._when(next_entry, next_time_to_run), event[1], next_entry))
            return 0
        # Ready by the heap but asking to wait: move it back, or it would block every entry behind it.
        delay = next_time_to_run if isinstance(next_time_to_run, (int, float)) else self.max_interval
        heappush(heap, event_t(self._when(entry, delay), event[1], entry))
        return 0 if heap[0][2] is not entry else min(self.adjust(delay), self.max_interval)

    # -- sending -----------------------------------------------------------------------------
    def reserve(self, entry: ScheduleEntry) -> ScheduleEntry:
        """Record the entry as run (before it is sent, so a failing send is not retried for ever)."""
        new_entry = self.schedule[entry.name] = next(entry)
        return new_entry

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        logger.info("Scheduler: Sending due task %s (%s)", entry.name, entry.task)
        try:
            result = self.apply_async(entry, producer=producer, advance=False)
        except Exception as exc:
            logger.error("Message Error: %s", exc, exc_info=True)
        else:
            logger.debug("%s sent. id->%s", entry.task, getattr(result, "id", None))

    def apply_async(self, entry: ScheduleEntry, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        entry = self.reserve(entry) if advance else entry
        task = self.app.tasks.get(entry.task)
        try:
            options = dict(entry.options)
            # Celery marks what beat sent, so a task can tell a scheduled run from a direct call.
            options["headers"] = {**(options.get("headers") or {}), "celery_beat_task": True}
            args, kwargs = evaluate_args(entry.args), evaluate_kwargs(entry.kwargs)
            if task is not None:
                return task.apply_async(args, kwargs, **options)
            return self.send_task(entry.task, args, kwargs, **options)
        except Exception as exc:
            raise SchedulingError(f"Couldn't apply scheduled task {entry.name}: {exc}") from exc
        finally:
            self._tasks_since_sync += 1
            if self.should_sync():
                self._do_sync()

    def send_task(self, *args: Any, **kwargs: Any) -> Any:
        return self.app.send_task(*args, **kwargs)

    # -- persistence hooks -------------------------------------------------------------------
    def should_sync(self) -> bool:
        overdue = not self._last_sync or (time.monotonic() - self._last_sync) > self.sync_every
        return bool(overdue or (self.sync_every_tasks and self._tasks_since_sync >= self.sync_every_tasks))

    def _do_sync(self) -> None:
        try:
            self.sync()
        finally:
            self._last_sync = time.monotonic()
            self._tasks_since_sync = 0

    def sync(self) -> None:
        """Save the schedule's state; nothing to save for an in-memory scheduler."""

    def close(self) -> None:
        self.sync()

    @property
    def info(self) -> str:
        return ""


__all__ = ("DEFAULT_MAX_INTERVAL", "Scheduler", "SchedulingError")

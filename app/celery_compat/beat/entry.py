"""One periodic task of the schedule: ``ScheduleEntry``, as custom schedulers subclass it."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import total_ordering
from typing import Any

from ..schedules import maybe_schedule, schedstate

#: One slot of the scheduler's heap: when (a UTC timestamp), a priority, the entry.
event_t = namedtuple("event_t", ("time", "priority", "entry"))

#: The fields a schedule's owner edits; the others (last run, run count) are the scheduler's.
EDITABLE_FIELDS = ("task", "args", "kwargs", "options", "schedule")


class BeatLazyFunc:
    """An argument computed when the entry is sent (``kwargs={"at": BeatLazyFunc(time.time)}``)."""

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self._func = func
        self._func_params = {"args": args, "kwargs": kwargs}

    def __call__(self) -> Any:
        return self.delay()

    def delay(self) -> Any:
        return self._func(*self._func_params["args"], **self._func_params["kwargs"])


def evaluate_args(args: Any) -> list:
    return [value() if isinstance(value, BeatLazyFunc) else value for value in args or ()]


def evaluate_kwargs(kwargs: Any) -> dict:
    return {key: value() if isinstance(value, BeatLazyFunc) else value for key, value in (kwargs or {}).items()}


@total_ordering
class ScheduleEntry:
    """A task, its arguments and options, its schedule, and when it last ran and how often.

    Entries are replaced, not changed, when they run: ``next(entry)`` is a copy with
    ``last_run_at`` now and ``total_run_count`` one more. Two entries are equal when their
    editable fields are (``task``, ``args``, ``kwargs``, ``options``, ``schedule``), which is how a
    scheduler notices that its schedule was edited.
    """

    def __init__(self, name: str | None = None, task: str | None = None, last_run_at: datetime | None = None,
                 total_run_count: int | None = None, schedule: Any = None, args: Any = (), kwargs: Any = None,
                 options: dict | None = None, relative: bool = False, app: Any = None) -> None:
        self.app = app
        self.name = name
        self.task = task
        self.args = args
        self.kwargs = kwargs or {}
        self.options = options or {}
        self.schedule = maybe_schedule(schedule, relative, app=app)
        self.last_run_at = last_run_at or self.default_now()
        self.total_run_count = total_run_count or 0

    def default_now(self) -> datetime:
        return self.schedule.now() if self.schedule else self.app.now()

    _default_now = default_now  # Celery's older name

    def _next_instance(self, last_run_at: datetime | None = None) -> ScheduleEntry:
        """This entry as it is once sent: run now (or at ``last_run_at``), counted once more."""
        return self.__class__(**dict(self, last_run_at=last_run_at or self.default_now(),
                                     total_run_count=self.total_run_count + 1))

    __next__ = next = _next_instance

    def update(self, other: ScheduleEntry) -> None:
        """Take ``other``'s editable fields, keeping this entry's run history."""
        self.__dict__.update({field: getattr(other, field) for field in EDITABLE_FIELDS})

    def is_due(self) -> schedstate:
        return self.schedule.is_due(self.last_run_at)

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        return iter(vars(self).items())

    def editable_fields_equal(self, other: ScheduleEntry) -> bool:
        return all(getattr(self, field) == getattr(other, field) for field in EDITABLE_FIELDS)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScheduleEntry):
            return self.editable_fields_equal(other)
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        # The heap orders by (time, priority) first; between equals any stable order will do.
        if isinstance(other, ScheduleEntry):
            return id(self) < id(other)
        return NotImplemented

    __hash__ = object.__hash__

    def __reduce__(self) -> tuple:
        return self.__class__, (self.name, self.task, self.last_run_at, self.total_run_count, self.schedule,
                                self.args, self.kwargs, self.options)

    def __repr__(self) -> str:
        call = ", ".join([*(repr(arg) for arg in self.args or ()),
                          *(f"{key}={value!r}" for key, value in (self.kwargs or {}).items())])
        return f"<{type(self).__name__}: {self.name} {self.task}({call}) {self.schedule}"

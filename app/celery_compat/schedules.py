"""Schedules for periodic tasks: ``schedule`` (every N seconds) and ``crontab``, as in ``celery.schedules``.

Ticks are aligned to the clock (every 10 s means :00, :10, :20...), so that several workers
running the scheduler agree on which tick is which and only one of them sends each.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any


class schedule:  # noqa: N801 - Celery's name
    """Every ``run_every`` seconds (a number or a ``timedelta``)."""

    def __init__(self, run_every: float | timedelta, relative: bool = False, **kwargs: Any) -> None:
        seconds = run_every.total_seconds() if isinstance(run_every, timedelta) else float(run_every)
        if seconds <= 0:
            raise ValueError("a schedule's interval must be positive")
        self.seconds = seconds

    @property
    def run_every(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (UTC)."""
        stamp = moment.timestamp()
        tick = (math.floor(stamp / self.seconds) + 1) * self.seconds
        return datetime.fromtimestamp(tick, tz=timezone.utc)

    def __repr__(self) -> str:
        return f"<freq: {self.seconds:g}s>"


_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}


def _parse_field(value: Any, low: int, high: int, names: dict | None = None) -> frozenset[int]:
    """Parse one crontab field: ``*``, ``*/15``, ``1,2,5``, ``1-5``, ``mon-fri``, an int or a set of ints."""
    if isinstance(value, (int, set, frozenset, list, tuple, range)):
        values = frozenset({value} if isinstance(value, int) else (int(v) for v in value))
        if not values or min(values) < low or max(values) > high:
            raise ValueError(f"crontab field {value!r} is outside {low}-{high}")
        return values
    result: set[int] = set()
    for part in str(value).lower().replace(" ", "").split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body in ("*", ""):
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(body, names)
            end = high if step_text else start
        if start < low or end > high or start > end:
            raise ValueError(f"crontab field {value!r} is outside {low}-{high}")
        result.update(range(start, end + 1, step))
    return frozenset(result)


def _number(text: str, names: dict | None) -> int:
    if names and text[:3] in names:
        return names[text[:3]]
    return int(text)


class crontab:  # noqa: N801 - Celery's name
    """Celery's ``crontab(minute, hour, day_of_week, day_of_month, month_of_year)``; Sunday is 0."""

    def __init__(self, minute: Any = "*", hour: Any = "*", day_of_week: Any = "*", day_of_month: Any = "*",
                 month_of_year: Any = "*", tz: Any = None, **kwargs: Any) -> None:
        self._orig = (minute, hour, day_of_week, day_of_month, month_of_year)
        self.minute = _parse_field(minute, 0, 59)
        self.hour = _parse_field(hour, 0, 23)
        self.day_of_week = frozenset(d % 7 for d in _parse_field(day_of_week, 0, 7, _DAY_NAMES))
        self.day_of_month = _parse_field(day_of_month, 1, 31)
        self.month_of_year = _parse_field(month_of_year, 1, 12)
        self.tz = tz

    def matches(self, moment: datetime) -> bool:
        return (moment.minute in self.minute and moment.hour in self.hour and moment.month in self.month_of_year
                and moment.day in self.day_of_month and (moment.isoweekday() % 7) in self.day_of_week)

    def next_after(self, moment: datetime, tz: Any = None) -> datetime:
        """The first matching minute strictly after ``moment``, read in ``tz`` (UTC when None)."""
        zone = self.tz or tz or timezone.utc
        local = moment.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        for _ in range(600_000):  # a bit over a year of minutes, skipping whole days and hours
            if (local.month not in self.month_of_year or local.day not in self.day_of_month
                    or (local.isoweekday() % 7) not in self.day_of_week):
                local = (local + timedelta(days=1)).replace(hour=0, minute=0)
            elif local.hour not in self.hour:
                local = (local + timedelta(hours=1)).replace(minute=0)
            elif local.minute not in self.minute:
                local += timedelta(minutes=1)
            else:
                return local.astimezone(timezone.utc)
        raise ValueError(f"{self!r} never matches")

    def __repr__(self) -> str:
        return "<crontab: {} {} {} {} {} (m/h/dM/MY/d)>".format(*(self._orig[i] for i in (0, 1, 3, 4, 2)))


def as_schedule(value: Any) -> schedule | crontab:
    """What a ``beat_schedule`` entry's ``schedule`` may be: seconds, a ``timedelta``, or a schedule."""
    if isinstance(value, (schedule, crontab)):
        return value
    return schedule(value)

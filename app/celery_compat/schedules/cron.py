"""``crontab``: runs at the minutes a crontab line matches, read in the app's timezone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from .base import BaseSchedule, schedstate
from .localtime import UTC, app_timezone, wall_instants

_DAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_MONTH_NAMES = {name: number for number, name in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


class ParseException(Exception):
    """Raised when a crontab field cannot be read."""


class crontab_parser:  # noqa: N801 - Celery's name
    """Reads one crontab field (``*``, ``*/15``, ``1,2,5``, ``1-5``, ``mon-fri``) into a set of numbers."""

    ParseException = ParseException

    def __init__(self, max_: int = 60, min_: int = 0, names: dict[str, int] | None = None) -> None:
        self.max_, self.min_, self.names = max_, min_, names

    def parse(self, spec: str) -> set[int]:
        high = self.max_ + self.min_ - 1
        found: set[int] = set()
        for part in str(spec).lower().replace(" ", "").split(","):
            if not part:
                raise ParseException(f"empty part in crontab field {spec!r}")
            body, _, step_text = part.partition("/")
            step = self._number(step_text) if step_text else 1
            if body in ("*", ""):
                start, end = self.min_, high
            elif "-" in body:
                first, last = body.split("-", 1)
                start, end = self._number(first), self._number(last)
            else:
                start = self._number(body)
                end = high if step_text else start
            if start < self.min_ or end > high or step < 1:
                raise ValueError(f"Invalid crontab pattern {spec!r}: valid range is {self.min_}-{high}")
            # A wrapping range (``fri-mon``, ``22-2``) runs to the end and on from the start.
            span = range(start, end + 1) if start <= end else [*range(start, high + 1), *range(self.min_, end + 1)]
            found.update(list(span)[::step])
        return found

    def _number(self, text: str) -> int:
        if self.names and text[:3] in self.names:
            return self.names[text[:3]]
        try:
            return int(text)
        except ValueError:
            raise ParseException(f"invalid crontab value {text!r}") from None


def _field(value: Any, max_: int, min_: int = 0, names: dict[str, int] | None = None) -> frozenset[int]:
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str):
        return frozenset(crontab_parser(max_, min_, names).parse(value))
    values = frozenset(int(number) for number in value)
    if not values or min(values) < min_ or max(values) > max_ + min_ - 1:
        raise ValueError(f"Invalid crontab pattern {value!r}: valid range is {min_}-{max_ + min_ - 1}")
    return values


class crontab(BaseSchedule):  # noqa: N801 - Celery's name
    """Celery's ``crontab(minute, hour, day_of_week, day_of_month, month_of_year)``; Sunday is 0.

    Read in the app's timezone (or ``tz``). ``beat_cron_starting_deadline`` (seconds) skips a
    missed run older than that instead of sending it late, as in Celery.
    """

    def __init__(self, minute: Any = "*", hour: Any = "*", day_of_week: Any = "*", day_of_month: Any = "*",
                 month_of_year: Any = "*", nowfun: Callable[[], datetime] | None = None, app: Any = None,
                 tz: Any = None) -> None:
        self._orig_minute, self._orig_hour, self._orig_day_of_week = minute, hour, day_of_week
        self._orig_day_of_month, self._orig_month_of_year = day_of_month, month_of_year
        self.minute = _field(minute, 60)
        self.hour = _field(hour, 24)
        self.day_of_week = frozenset(day % 7 for day in _field(day_of_week, 8, 0, _DAY_NAMES))
        self.day_of_month = _field(day_of_month, 31, 1)
        self.month_of_year = _field(month_of_year, 12, 1, _MONTH_NAMES)
        self._tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        super().__init__(nowfun=nowfun, app=app)

    @classmethod
    def from_string(cls, text: str) -> crontab:
        """``"*/15 9-17 * * mon-fri"``: minute, hour, day of month, month, day of week."""
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"Invalid crontab string {text!r}: it needs five fields")
        minute, hour, day_of_month, month_of_year, day_of_week = fields
        return cls(minute, hour, day_of_week, day_of_month, month_of_year)

    @property
    def tz(self) -> tzinfo:
        return self._tz or app_timezone(self.app)

    def matches(self, moment: datetime) -> bool:
        return (moment.minute in self.minute and moment.hour in self.hour and moment.month in self.month_of_year
                and moment.day in self.day_of_month and (moment.isoweekday() % 7) in self.day_of_week)

    def next_after(self, moment: datetime, tz: Any = None) -> datetime:
        """The first matching minute strictly after ``moment``, read in ``tz`` (else the schedule's zone)."""
        zone = tz or self.tz
        local = self.maybe_make_aware(moment).astimezone(zone).replace(second=0, microsecond=0, tzinfo=None)
        local += timedelta(minutes=1)
        for _ in range(600_000):  # a bit over a year of minutes, skipping whole days and hours
            if (local.month not in self.month_of_year or local.day not in self.day_of_month
                    or (local.isoweekday() % 7) not in self.day_of_week):
                local = (local + timedelta(days=1)).replace(hour=0, minute=0)
            elif local.hour not in self.hour:
                local = (local + timedelta(hours=1)).replace(minute=0)
            elif local.minute not in self.minute:
                local += timedelta(minutes=1)
            else:
                return wall_instants(local, zone)[0]
        raise ValueError(f"{self!r} never matches")

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.next_after(last_run_at) - self.maybe_make_aware(self.now()).astimezone(UTC)

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due once a matching minute after ``last_run_at`` has come; then ``next`` is the one after now."""
        behind = self.remaining_estimate(last_run_at).total_seconds()
        due = behind <= 0
        deadline = self.app.conf.get("beat_cron_starting_deadline")
        if deadline is not None and behind < 0:
            # Only a run that should have started within the last ``deadline`` seconds is caught up.
            now = self.maybe_make_aware(self.now()).astimezone(UTC)
            since = now - timedelta(seconds=deadline, microseconds=1)
            due = self.next_after(since) <= now
        if due or behind < 0:
            return schedstate(due, max(self.remaining_estimate(self.now()).total_seconds(), 0))
        return schedstate(False, behind)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, crontab):
            return (other.month_of_year, other.day_of_month, other.day_of_week, other.hour, other.minute) == (
                self.month_of_year, self.day_of_month, self.day_of_week, self.hour, self.minute
            ) and super().__eq__(other)
        return NotImplemented

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return (f"<crontab: {self._orig_minute} {self._orig_hour} {self._orig_day_of_month} "
                f"{self._orig_month_of_year} {self._orig_day_of_week} (m/h/dM/MY/d)>")

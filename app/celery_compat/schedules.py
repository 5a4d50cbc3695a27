"""Schedules for periodic tasks, as ``celery.schedules``: ``schedule`` (an interval), ``crontab``, ``solar``.

A schedule answers the scheduler's one question, ``is_due(last_run_at)``, with ``(is_due, next)``:
whether the entry runs now, and in how many seconds to ask again. Times are aware datetimes;
a naive one is read as UTC, as Celery does. "Now" is ``nowfun()`` when given, else ``app.now()``.

Interval arithmetic is elapsed time (UTC), so "every 24 hours" stays 24 hours across a clock
change. A ``relative`` schedule instead lands on the local clock's boundaries (whole days,
hours or minutes, by the interval's size) in the app's timezone; see :func:`relative_deadline`.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ._state import current_app

UTC = timezone.utc

schedstate = namedtuple("schedstate", ("is_due", "next"))


def app_timezone(app: Any) -> tzinfo:
    """The app's ``timezone`` setting as a tzinfo (a name or a tzinfo); UTC when unset."""
    zone = app.conf.get("timezone")
    if not zone:
        return UTC if app.conf.get("enable_utc", True) else datetime.now().astimezone().tzinfo
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def maybe_make_aware(moment: datetime, zone: tzinfo | None = None) -> datetime:
    """``moment`` itself when aware; a naive one is read as UTC (and shown in ``zone`` when given)."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone) if zone is not None else moment
    return moment


def _wall_instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """Every UTC instant at which a clock in ``zone`` shows the naive ``wall`` time.

    Two when the clock went back over it, one usually. A wall time the clock jumped over
    counts once, shifted forward by the jump (as ``dateutil.tz.resolve_imaginary`` does): a
    midnight skipped by a clock change becomes the moment the clock shows 01:00.
    """
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:  # skipped by the clock
            offset_before = (wall - timedelta(days=1)).replace(tzinfo=zone).utcoffset()
            instant = (wall - offset_before).replace(tzinfo=UTC)
        found.add(instant)
    return sorted(found)


def _clock_unit(interval: timedelta) -> timedelta | None:
    """The boundary a relative interval snaps to: whole hours from an hour up, minutes from a minute."""
    for unit in (timedelta(hours=1), timedelta(minutes=1)):
        if interval >= unit:
            return unit
    return None


def _truncate(wall: datetime, unit: timedelta) -> datetime:
    if unit == timedelta(hours=1):
        return wall.replace(minute=0, second=0, microsecond=0)
    return wall.replace(second=0, microsecond=0)


def relative_deadline(start: datetime, interval: timedelta, zone: tzinfo) -> datetime:
    """When a ``relative`` interval that last ran at ``start`` runs next (UTC).

    From a day up, it counts calendar days: the first midnight, after ``start``, of the date
    ``interval`` after ``start``'s. Below a day, it is the last whole local hour (minute, for
    intervals under an hour) reached by ``start + interval``, never one at or before ``start``;
    when a clock change leaves none in between, the first one after ``start``.
    """
    start_utc = start.astimezone(UTC)
    local = start.astimezone(zone).replace(tzinfo=None)
    if interval >= timedelta(days=1):
        midnight = datetime.combine((local + interval).date(), time())
        later = [instant for instant in _wall_instants(midnight, zone) if instant > start_utc]
        return min(later, default=start_utc + interval)
    target = start_utc + interval
    unit = _clock_unit(interval)
    if unit is None:
        return target.replace(microsecond=0)
    local_target = target.astimezone(zone).replace(tzinfo=None)
    wall, last = _truncate(min(local, local_target), unit) - unit, max(local, local_target) + 2 * unit
    instants: list[datetime] = []
    while wall <= last:
        instants.extend(_wall_instants(wall, zone))
        wall += unit
    within = [instant for instant in instants if start_utc < instant <= target]
    return max(within) if within else min(instant for instant in instants if instant > start_utc)


class BaseSchedule:
    """What every schedule shares: its clock (``nowfun`` or the app's) and its app's timezone."""

    def __init__(self, nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        self.nowfun = nowfun
        self._app = app

    @property
    def app(self) -> Any:
        return self._app or current_app()

    @app.setter
    def app(self, app: Any) -> None:
        self._app = app

    @property
    def tz(self) -> tzinfo:
        return app_timezone(self.app)

    @property
    def utc_enabled(self) -> bool:
        return bool(self.app.conf.get("enable_utc", True))

    def now(self) -> datetime:
        return (self.nowfun or self.app.now)()

    def maybe_make_aware(self, moment: datetime) -> datetime:
        return maybe_make_aware(moment, self.tz)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        raise NotImplementedError("remaining_estimate: a schedule class must define it")

    def is_due(self, last_run_at: datetime) -> schedstate:
        raise NotImplementedError("is_due: a schedule class must define it")

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, BaseSchedule):
            return other.nowfun == self.nowfun
        return NotImplemented

    __hash__ = object.__hash__


class schedule(BaseSchedule):  # noqa: N801 - Celery's name
    """Every ``run_every`` (seconds or a ``timedelta``), counted from the last run.

    With ``relative=True`` the runs land on the local clock's boundaries instead (see
    :func:`relative_deadline`), e.g. every hour on the hour.
    """

    def __init__(self, run_every: float | timedelta | None = None, relative: bool = False,
                 nowfun: Callable[[], datetime] | None = None, app: Any = None) -> None:
        self.run_every = maybe_timedelta(run_every)
        self.relative = relative
        super().__init__(nowfun=nowfun, app=app)

    @property
    def seconds(self) -> float:
        return max(self.run_every.total_seconds(), 0)

    def deadline(self, last_run_at: datetime) -> datetime:
        """When an entry that last ran at ``last_run_at`` is due next (UTC)."""
        last = self.maybe_make_aware(last_run_at)
        if self.relative:
            return relative_deadline(last, self.run_every, self.tz)
        return last.astimezone(UTC) + self.run_every

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.deadline(last_run_at) - self.maybe_make_aware(self.now()).astimezone(UTC)

    def is_due(self, last_run_at: datetime) -> schedstate:
        """``(True, seconds to the next run)`` once due, else ``(False, seconds left)``."""
        remaining = self.remaining_estimate(last_run_at).total_seconds()
        if remaining > 0:
            return schedstate(False, remaining)
        following = self.seconds
        if self.relative:
            # The next boundary counts from now: after a late run or across a clock change it
            # is nearer (or farther) than one interval.
            ahead = self.remaining_estimate(self.now()).total_seconds()
            following = ahead if ahead > 0 else following
        return schedstate(True, following)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, schedule):
            return self.run_every == other.run_every
        return self.run_every == other

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"<freq: {self.seconds:g}s>"


def maybe_timedelta(value: float | timedelta | None) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return timedelta(seconds=float(value or 0))


def maybe_schedule(value: Any, relative: bool = False, app: Any = None) -> Any:
    """A schedule from seconds, a ``timedelta`` or a schedule (which is given ``app``)."""
    if value is None:
        return None
    if isinstance(value, (int, float, timedelta)):
        return schedule(maybe_timedelta(value), relative, app=app)
    value.app = app
    return value


def as_schedule(value: Any) -> Any:
    """What a ``beat_schedule`` entry's ``schedule`` may be: seconds, a ``timedelta``, or a schedule."""
    if isinstance(value, BaseSchedule):
        return value
    return schedule(value)


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
                return _wall_instants(local, zone)[0]
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


class solar(BaseSchedule):  # noqa: N801 - Celery's name
    """Celery's sunrise/sunset schedule: it needs astronomy (Celery uses ``ephem``), not provided here."""

    def __init__(self, event: str, lat: float, lon: float, **kwargs: Any) -> None:
        raise NotImplementedError(
            "solar schedules (celery.schedules.solar) are not supported by app.celery_compat: "
            "use a crontab at the times you need"
        )

__all__ = ("BaseSchedule", "crontab", "crontab_parser", "maybe_schedule", "schedstate", "schedule", "solar")

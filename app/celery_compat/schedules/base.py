"""``schedule``: every N seconds (or relative to the local clock), and what every schedule shares."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from datetime import datetime, timedelta, tzinfo
from typing import Any

from .._state import current_app
from .localtime import UTC, app_timezone, maybe_make_aware, relative_deadline

schedstate = namedtuple("schedstate", ("is_due", "next"))


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

"""Schedules for periodic tasks, as ``celery.schedules``: ``schedule`` (an interval), ``crontab``, ``solar``.

A schedule answers the scheduler's one question, ``is_due(last_run_at)``, with ``(is_due, next)``:
whether the entry runs now, and in how many seconds to ask again. Times are aware datetimes;
a naive one is read as UTC, as Celery does. "Now" is ``nowfun()`` when given, else ``app.now()``.

Interval arithmetic is elapsed time (UTC), so "every 24 hours" stays 24 hours across a clock
change. A ``relative`` schedule instead lands on the local clock's boundaries (whole days,
hours or minutes, by the interval's size) in the app's timezone; see :func:`relative_deadline`.
"""

from __future__ import annotations

from .base import BaseSchedule, as_schedule, maybe_schedule, maybe_timedelta, schedstate, schedule
from .cron import ParseException, crontab, crontab_parser
from .localtime import app_timezone, maybe_make_aware, relative_deadline
from .sun import solar

__all__ = (
    "BaseSchedule", "ParseException", "app_timezone", "as_schedule", "crontab", "crontab_parser", "maybe_make_aware",
    "maybe_schedule", "maybe_timedelta", "relative_deadline", "schedstate", "schedule", "solar",
)

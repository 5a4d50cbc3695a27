"""Periodic tasks: beat_schedule, add_periodic_task, crontab, and -B on several workers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import fakeredis
import pytest

from app.celery_compat import Celery
from app.celery_compat.beat import Beat
from app.celery_compat.schedules import crontab, schedule

UTC = timezone.utc


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        (crontab(), datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC), datetime(2026, 1, 1, 10, 1, tzinfo=UTC)),
        (crontab(minute=0, hour=0), datetime(2026, 1, 1, 10, 0, tzinfo=UTC), datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
        (crontab(minute="*/15"), datetime(2026, 1, 1, 10, 7, tzinfo=UTC), datetime(2026, 1, 1, 10, 15, tzinfo=UTC)),
        (crontab(minute=30, hour="9-17", day_of_week="mon-fri"), datetime(2026, 11, 27, 18, 0, tzinfo=UTC),
         datetime(2026, 11, 30, 9, 30, tzinfo=UTC)),  # Friday evening -> Monday morning
        (crontab(minute=0, hour=0, day_of_month=1, month_of_year="1,7"), datetime(2026, 2, 1, tzinfo=UTC),
         datetime(2026, 7, 1, tzinfo=UTC)),
        (crontab(minute=0, hour=0, day_of_week=0), datetime(2026, 11, 24, tzinfo=UTC),
         datetime(2026, 11, 29, tzinfo=UTC)),  # 0 is Sunday, as in Celery
    ],
)
def test_crontab_finds_the_next_matching_minute(cron, after, expected):
    assert cron.next_after(after) == expected


def test_crontab_is_read_in_the_apps_timezone():
    from zoneinfo import ZoneInfo

    noon_in_new_york = crontab(minute=0, hour=12).next_after(datetime(2026, 7, 1, 0, 0, tzinfo=UTC),
                                                            ZoneInfo("America/New_York"))
    assert noon_in_new_york == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("field", [{"minute": 60}, {"hour": "25"}, {"day_of_month": 0}])
def test_an_impossible_crontab_field_is_refused(field):
    with pytest.raises(ValueError):
        crontab(**field)


def test_interval_ticks_are_aligned_to_the_clock():
    every_ten = schedule(timedelta(seconds=10))
    assert every_ten.next_after(datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)


def make_app() -> Celery:
    app = Celery("beatproj", set_as_current=False)
    app._connection = fakeredis.FakeRedis()
    app._connection_url = app.broker_url
    app.conf.beat_schedule = {"every-5": {"task": "beatproj.ping", "schedule": 5, "args": (1,)}}
    return app


def test_two_schedulers_send_each_tick_once_between_them():
    app = make_app()
    first, second = Beat(app), Beat(app)
    due = first.next_run["every-5"]
    for beat in (first, second, first):
        beat.tick(due + timedelta(milliseconds=1))
    assert app.queue("celery").count == 1
    for beat in (second, first):
        beat.tick(due + timedelta(seconds=5, milliseconds=1))
    assert app.queue("celery").count == 2


def test_add_periodic_task_adds_a_schedule_entry_for_a_signature():
    app = make_app()

    @app.task(name="beatproj.ping")
    def ping(x):
        return x

    name = app.add_periodic_task(30.0, ping.s(7), name="ping every 30 s")
    entry = app.conf.beat_schedule[name]
    assert (entry["task"], entry["schedule"], list(entry["args"])) == ("beatproj.ping", 30.0, [7])


def test_two_workers_with_minus_b_run_a_one_second_task_once_per_tick(celery_app, worker_process, redis_conn):
    # Given two workers, each started with -B
    for _ in range(2):
        worker_process("-B", "-P", "solo", app="tests.beat_tasks")
    # When they run for about five seconds
    time.sleep(5.5)
    # Then the one-second task ran about once a second, never twice in the same tick
    runs = sorted(float(value) for value in redis_conn.lrange("record:beat", 0, -1))
    assert 3 <= len(runs) <= 7
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
    assert min(gaps) > 0.5, runs
    # And the task added in on_after_configure runs too
    assert redis_conn.llen("record:added") >= 1

"""Periodic tasks: Celery's beat API (Scheduler, ScheduleEntry, Service), its schedules, and -B on several workers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import fakeredis
import pytest

from app.celery_compat import Celery, keys
from app.celery_compat import beat as celery_beat
from app.celery_compat.schedules import crontab, relative_deadline, schedule, solar

UTC = timezone.utc
START = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def make_app(**beat_schedule: dict) -> Celery:
    app = Celery("beatproj", set_as_current=False)
    app._connection = fakeredis.FakeRedis()
    app._connection_url = app.broker_url
    app.conf.beat_schedule = beat_schedule
    return app


class Clock:
    """The app's ``now()``, moved by the test."""

    def __init__(self, app: Celery, start: datetime = START) -> None:
        self.moment = start
        app.now = lambda: self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def sent_tasks(app: Celery) -> list[tuple[str, list]]:
    """What was queued: each task's name and positional arguments."""
    return [(job.args[0], list(job.args[1])) for job in app.queue("celery").jobs]


# -- crontab -------------------------------------------------------------------------------------
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
        (crontab.from_string("0 12 * jan-mar *"), datetime(2026, 4, 1, tzinfo=UTC),
         datetime(2027, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_crontab_finds_the_next_matching_minute(cron, after, expected):
    cron.app = make_app()
    assert cron.next_after(after) == expected


def test_crontab_is_read_in_the_apps_timezone():
    app = make_app()
    app.conf.timezone = "America/New_York"
    noon = crontab(minute=0, hour=12, app=app)
    assert noon.next_after(datetime(2026, 7, 1, 0, 0, tzinfo=UTC)) == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize("field", [{"minute": 60}, {"hour": "25"}, {"day_of_month": 0}, {"minute": "*/0"}])
def test_an_impossible_crontab_field_is_refused(field):
    with pytest.raises(ValueError):
        crontab(**field)


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (None, (True, 25 * 60)),  # no deadline: the missed 10:00 run is sent late
        (30 * 60, (True, 25 * 60)),  # 10:00 is 20 minutes ago, within 30 minutes: sent
        (10 * 60, (False, 25 * 60)),  # nothing in the last 10 minutes: skipped until 10:45
    ],
)
def test_a_missed_crontab_run_is_sent_only_within_the_starting_deadline(deadline, expected):
    # Given runs at :00 and :45, last sent at 08:45, and now 10:20
    app = make_app()
    app.conf.beat_cron_starting_deadline = deadline
    cron = crontab(minute="0,45", nowfun=lambda: datetime(2022, 12, 5, 10, 20), app=app)
    # Then it is due or not by the deadline, and asks again at the next run (10:45)
    assert tuple(cron.is_due(datetime(2022, 12, 5, 8, 45))) == expected


LONDON, NEW_YORK, TROMSO = (51.5074, -0.1278), (40.71, -74.0), (69.65, 18.96)


@pytest.mark.parametrize(
    ("event", "place", "after", "published"),
    [
        # Published almanac times (UTC), e.g. London's 04:43 BST sunrise on the longest day.
        ("sunrise", LONDON, datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 21, 3, 43, tzinfo=UTC)),
        ("sunset", LONDON, datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 21, 20, 21, tzinfo=UTC)),
        ("dawn_civil", LONDON, datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 21, 2, 56, tzinfo=UTC)),
        ("solar_noon", LONDON, datetime(2026, 6, 21, tzinfo=UTC), datetime(2026, 6, 21, 12, 2, tzinfo=UTC)),
        ("sunset", NEW_YORK, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 21, 39, tzinfo=UTC)),
        # The first event after the given time: today's sunrise is past, so tomorrow's
        ("sunrise", LONDON, datetime(2026, 6, 21, 12, tzinfo=UTC), datetime(2026, 6, 22, 3, 43, tzinfo=UTC)),
    ],
)
def test_a_solar_event_is_found_within_two_minutes_of_the_almanac(event, place, after, published):
    found = solar(event, *place, app=make_app()).next_after(after)
    assert abs(found - published) < timedelta(minutes=2), found


def test_a_solar_event_that_does_not_happen_today_is_looked_for_on_the_following_days():
    app = make_app()
    # No sunrise in Tromso's polar night: the next is in mid-January
    assert solar("sunrise", *TROMSO, app=app).next_after(datetime(2026, 12, 21, tzinfo=UTC)).date() == \
        datetime(2027, 1, 16).date()
    # No astronomical dawn in a London June: the next is in late July
    assert solar("dawn_astronomical", *LONDON, app=app).next_after(datetime(2026, 6, 21, tzinfo=UTC)).month == 7


def test_a_solar_schedule_is_due_once_its_event_has_come():
    app = make_app()
    clock = Clock(app, datetime(2026, 6, 21, 3, 44, tzinfo=UTC))
    sunrise = solar("sunrise", *LONDON, app=app)
    due, following = sunrise.is_due(datetime(2026, 6, 21, tzinfo=UTC))
    assert due and 23.9 * 3600 < following < 24 * 3600
    clock.moment = datetime(2026, 6, 21, 3, 40, tzinfo=UTC)
    assert not sunrise.is_due(datetime(2026, 6, 21, tzinfo=UTC))[0]


@pytest.mark.parametrize(("args", "message"), [(("noon", 0, 0), "event"), (("sunrise", 91, 0), "latitude"),
                                               (("sunrise", 0, 181), "longitude")])
def test_a_solar_schedule_refuses_an_unknown_event_or_place(args, message):
    with pytest.raises(ValueError, match=message):
        solar(*args)


# -- schedule (intervals) ------------------------------------------------------------------------
def test_an_interval_is_due_once_it_has_elapsed_and_then_asks_again_one_interval_later():
    app = make_app()
    clock = Clock(app)
    every_minute = schedule(timedelta(minutes=1), app=app)
    clock.advance(seconds=45)
    assert tuple(every_minute.is_due(START)) == (False, 15)
    clock.advance(seconds=15)
    assert tuple(every_minute.is_due(START)) == (True, 60)


@pytest.mark.parametrize(
    ("zone", "interval", "last_run", "expected"),
    [
        # Daily runs land on local midnight, by calendar day, across the autumn clock change.
        ("America/New_York", timedelta(days=1), datetime(2026, 11, 1, 0, 30), datetime(2026, 11, 2)),
        # A midnight the clock skips (Cairo goes from 00:00 to 01:00) becomes 01:00.
        ("Africa/Cairo", timedelta(days=1), datetime(2026, 4, 23, 23, 30), datetime(2026, 4, 24, 1)),
        # Hourly runs land on the hour; 02:00 does not exist that night, 03:00 comes one hour after 01:30.
        ("America/New_York", timedelta(hours=1), datetime(2026, 3, 8, 1, 30), datetime(2026, 3, 8, 3)),
        # Every two hours, into a repeated hour: the second 03:00, the last boundary reached.
        ("Pacific/Chatham", timedelta(hours=2), datetime(2026, 4, 5, 2, 45), datetime(2026, 4, 5, 3, fold=1)),
        # No local hour between 01:00 and 01:00 + 1 h (clock back to 01:30): the next one, 02:00.
        ("Australia/Lord_Howe", timedelta(hours=1), datetime(2026, 4, 5, 1), datetime(2026, 4, 5, 2)),
        ("UTC", timedelta(minutes=5), datetime(2026, 1, 1, 10, 2, 30), datetime(2026, 1, 1, 10, 7)),
    ],
)
def test_a_relative_interval_lands_on_the_local_clocks_boundaries(zone, interval, last_run, expected):
    tz = ZoneInfo(zone)
    deadline = relative_deadline(last_run.replace(tzinfo=tz), interval, tz)
    assert deadline == expected.replace(tzinfo=tz).astimezone(UTC)


def test_an_interval_is_elapsed_time_across_a_clock_change():
    app = make_app()
    app.conf.timezone = "America/New_York"
    tz = ZoneInfo("America/New_York")
    daily = schedule(timedelta(days=1), app=app)
    # 24 hours after 00:30 on the day the clock goes back is 23:30 the same day
    assert daily.deadline(datetime(2026, 11, 1, 0, 30, tzinfo=tz)) == datetime(2026, 11, 1, 23, 30, tzinfo=tz)


# -- ScheduleEntry -------------------------------------------------------------------------------
def test_the_next_entry_records_the_run_and_keeps_the_task():
    app = make_app()
    Clock(app)
    entry = celery_beat.ScheduleEntry(name="e", task="t", args=(1,), schedule=30, last_run_at=START, app=app)
    following = next(entry)
    assert (following.total_run_count, following.last_run_at, following.args) == (1, START, (1,))
    assert following == entry  # equal: same task, arguments, options and schedule
    assert following != celery_beat.ScheduleEntry(name="e", task="t", args=(2,), schedule=30, app=app)


def test_a_lazy_argument_is_computed_when_the_entry_is_sent():
    app = make_app()
    Clock(app)
    calls = iter(range(10))
    scheduler = celery_beat.Scheduler(app=app, lazy=True)
    entry = scheduler.add(name="e", task="beatproj.e", schedule=1, args=(celery_beat.BeatLazyFunc(next, calls),),
                          last_run_at=START - timedelta(seconds=1))
    scheduler.apply_entry(entry)
    scheduler.apply_entry(entry)
    assert sent_tasks(app) == [("beatproj.e", [0]), ("beatproj.e", [1])]


def test_updating_an_entry_keeps_its_run_history():
    app = make_app()
    entry = celery_beat.ScheduleEntry(name="e", task="t", schedule=30, last_run_at=START, total_run_count=4, app=app)
    entry.update(celery_beat.ScheduleEntry(name="e", task="t2", schedule=60, app=app))
    assert (entry.task, entry.schedule.seconds, entry.last_run_at, entry.total_run_count) == ("t2", 60, START, 4)


# -- Scheduler -----------------------------------------------------------------------------------
def test_the_scheduler_sends_what_is_due_and_says_how_long_to_wait():
    # Given a scheduler reading beat_schedule, with one entry every 10 seconds
    app = make_app(ping={"task": "beatproj.ping", "schedule": 10, "args": (1,)})
    clock = Clock(app)
    scheduler = celery_beat.Scheduler(app=app)
    # When nothing is due yet, it asks to be called when the entry is
    assert 9.9 < scheduler.tick() <= 10
    # When it is due, it sends it (returning 0: call again) and then waits a whole interval
    clock.advance(seconds=10)
    assert scheduler.tick() == 0
    assert scheduler.tick() == pytest.approx(10, abs=0.02)
    assert sent_tasks(app) == [("beatproj.ping", [1])]
    assert scheduler.schedule["ping"].total_run_count == 1


def test_an_entry_whose_next_run_cannot_be_computed_does_not_block_the_others():
    app = make_app()
    Clock(app)
    scheduler = celery_beat.Scheduler(app=app, lazy=True)
    broken = scheduler.add(name="broken", task="beatproj.a", schedule=1, last_run_at=START - timedelta(hours=1))
    scheduler.add(name="healthy", task="beatproj.b", schedule=1, last_run_at=START - timedelta(hours=1))

    def fail(last_run_at):
        raise TypeError("no next run")

    broken.schedule.is_due = fail
    for _ in range(3):
        scheduler.tick()
    assert sent_tasks(app) == [("beatproj.b", [])]


class DictBackedScheduler(celery_beat.Scheduler):
    """A custom scheduler in the way django-celery-beat writes one: its own store, entries and sync."""

    class Entry(celery_beat.ScheduleEntry):
        saved: list = []

        def _next_instance(self, last_run_at=None):
            self.saved.append(self.name)  # django-celery-beat saves the run to its model here
            return super()._next_instance(last_run_at)

        __next__ = next = _next_instance

    def setup_schedule(self):
        self.store = {"nightly": self.Entry(name="nightly", task="beatproj.nightly", schedule=crontab(0, 0),
                                            last_run_at=START - timedelta(days=1), app=self.app)}
        self.synced = 0

    @property
    def schedule(self):
        return self.store

    def sync(self):
        self.synced += 1


def test_a_subclass_with_its_own_store_and_entries_is_driven_by_tick():
    app = make_app()
    Clock(app, START.replace(hour=0, minute=0, second=1))
    DictBackedScheduler.Entry.saved = []
    scheduler = DictBackedScheduler(app=app, sync_every_tasks=1)
    assert scheduler.tick() == 0
    assert sent_tasks(app) == [("beatproj.nightly", [])]
    assert (DictBackedScheduler.Entry.saved, scheduler.synced) == (["nightly"], 1)
    # The next run is a day away: it looks again after max_interval (Celery's 5 minutes) at the latest
    assert scheduler.tick() == celery_beat.DEFAULT_MAX_INTERVAL


def test_a_scheduler_class_is_named_as_in_celery():
    app = make_app()
    service = celery_beat.Service(app, scheduler_cls="celery.beat:Scheduler")
    assert type(service.scheduler) is celery_beat.Scheduler
    assert type(celery_beat.Service(app).scheduler) is celery_beat.PersistentScheduler


def ping_over_the_control_channel(app: Celery, node: str, timeout: float = 2.0) -> list[dict]:
    """What ``app.control.ping(destination=[node])`` sends and collects, in the control wire format."""
    reply_to = keys.control_reply(uuid.uuid4().hex)
    message = {"method": "ping", "arguments": {}, "destination": [node], "reply_to": reply_to}
    db = int(app.connection.connection_pool.connection_kwargs.get("db") or 0)
    app.connection.publish(keys.control_channel(db), json.dumps(message))
    popped = app.connection.blpop([reply_to], timeout=timeout)
    return [json.loads(popped[1])] if popped else []


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_beat_with_remote_control_answers_ping_while_it_ticks_and_falls_silent_when_stalled(celery_app):
    # Given a beat with remote control, allowed 1 s between two passes of its loop
    celery_app.conf.beat_enable_remote_control = True
    celery_app.conf.beat_remote_control_max_tick_age = 1.0
    service = celery_beat.Service(celery_app, max_interval=0.2, scheduler_cls="celery.beat:Scheduler",
                                  hostname="celerybeat-test@%h")
    node = celery_beat.beat_nodename(service.hostname)
    released = threading.Event()
    thread = threading.Thread(target=service.start, daemon=True)
    thread.start()
    try:
        # Then it answers a ping addressed to it
        assert wait_until(lambda: ping_over_the_control_channel(celery_app, node, 0.5) == [{node: {"ok": "pong"}}])
        # When its scheduler wedges, it stops answering
        service.scheduler.tick = lambda *args: released.wait() and 0.2
        assert wait_until(lambda: ping_over_the_control_channel(celery_app, node, 0.5) == [])
    finally:
        released.set()
        service.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


# -- PersistentScheduler: history in Redis -------------------------------------------------------
def test_two_persistent_schedulers_send_each_run_once_between_them():
    # Given two beats of one app on one Redis, an entry every 5 seconds
    app = make_app(ping={"task": "beatproj.ping", "schedule": 5})
    clock = Clock(app)
    first, second = celery_beat.PersistentScheduler(app=app), celery_beat.PersistentScheduler(app=app)
    # When both tick at each of two due times
    for _ in range(2):
        clock.advance(seconds=5)
        for scheduler in (first, second, first, second):
            scheduler.tick()
    # Then each run was sent once, and both know it ran twice
    assert len(sent_tasks(app)) == 2
    assert (first.schedule["ping"].total_run_count, second.schedule["ping"].total_run_count) == (2, 2)


def test_the_run_history_is_json_in_redis_and_a_restarted_beat_takes_it_up():
    app = make_app(ping={"task": "beatproj.ping", "schedule": 60})
    clock = Clock(app)
    first = celery_beat.PersistentScheduler(app=app)
    clock.advance(seconds=60)
    first.tick()
    stored = json.loads(app.connection.hget(keys.beat_schedule(), "ping"))
    assert stored == {"last_run_at": clock.moment.isoformat(), "total_run_count": 1}
    # A beat started 30 s later waits the other 30 s rather than a whole minute
    clock.advance(seconds=30)
    restarted = celery_beat.PersistentScheduler(app=app)
    assert restarted.schedule["ping"].total_run_count == 1
    assert 29.9 < restarted.tick() <= 30


def test_entries_removed_from_beat_schedule_are_forgotten():
    app = make_app(old={"task": "beatproj.old", "schedule": 60})
    celery_beat.PersistentScheduler(app=app)
    app.conf.beat_schedule = {"new": {"task": "beatproj.new", "schedule": 60}}
    celery_beat.PersistentScheduler(app=app)
    assert set(app.connection.hkeys(keys.beat_schedule())) == {b"new"}


# -- running it ----------------------------------------------------------------------------------
def test_run_beat_sends_due_tasks_until_stopped():
    app = make_app(ping={"task": "beatproj.ping", "schedule": 0.1})
    stop = threading.Event()
    thread = threading.Thread(target=celery_beat.run_beat, args=(app,), kwargs={"max_interval": 0.1, "stop": stop})
    thread.start()
    deadline = time.monotonic() + 10
    while len(sent_tasks(app)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    thread.join(timeout=10)
    assert len(sent_tasks(app)) >= 2
    assert not thread.is_alive()


class CountingScheduler(celery_beat.Scheduler):
    made: list = []

    def setup_schedule(self):
        self.made.append(self)
        super().setup_schedule()


def test_the_beat_program_runs_the_scheduler_that_beat_scheduler_names():
    app = make_app()
    app.conf.beat_scheduler = f"{__name__}:CountingScheduler"
    stop = threading.Event()
    thread = threading.Thread(target=celery_beat.run_beat, args=(app,), kwargs={"stop": stop})
    thread.start()
    try:
        assert wait_until(lambda: any(made.app is app for made in CountingScheduler.made))
    finally:
        stop.set()
        thread.join(timeout=10)


def test_a_beat_started_while_redis_is_down_starts_once_it_is_back():
    # Given Redis unreachable when beat starts
    server = fakeredis.FakeServer()
    app = make_app(ping={"task": "beatproj.ping", "schedule": 0.1})
    app._connection = fakeredis.FakeRedis(server=server)
    server.connected = False
    stop = threading.Event()
    thread = threading.Thread(target=celery_beat.run_beat, args=(app,), kwargs={"max_interval": 0.1, "stop": stop})
    thread.start()
    try:
        assert not wait_until(lambda: not thread.is_alive(), timeout=1.5)  # it waits, it does not give up
        # When Redis is back, then it sends its tasks
        server.connected = True
        assert wait_until(lambda: len(sent_tasks(app)) >= 1)
    finally:
        stop.set()
        thread.join(timeout=10)


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
    # When the one-second task has run four times, and the task added in on_after_configure once
    assert wait_until(lambda: redis_conn.llen("record:beat") >= 4 and redis_conn.llen("record:added") >= 1,
                      timeout=60)
    # Then no run was sent twice: the runs are about a second apart, never two at once
    runs = sorted(float(value) for value in redis_conn.lrange("record:beat", 0, -1))
    gaps = [later - earlier for earlier, later in zip(runs, runs[1:], strict=False)]
    assert min(gaps) > 0.5, runs

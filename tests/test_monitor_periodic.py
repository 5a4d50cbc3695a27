"""The Periodic page (/periodic): each beat entry's task, schedule, last run and next run (issue 17).

Beat describes its entries in Redis when it starts and after each run, so the page shows any beat's
schedule on this Redis, a Celery program's included, without importing its code.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import fakeredis

from app.celery_compat import Celery, keys
from app.celery_compat.beat import PersistentScheduler
from tests.support import wait_for


def entry_row(client, name: str) -> str:
    page = client.get("/periodic").get_data(as_text=True)
    match = re.search(rf'<tr data-entry="{re.escape(name)}">(.*?)</tr>', page, re.S)
    return match.group(1) if match else ""


def test_a_running_beat_shows_each_entry_with_its_schedule_last_run_and_next_run(client, worker_process):
    # Given a worker with -B running a Celery program's one-second periodic task
    worker_process("-B", "-P", "solo", app="tests.beat_tasks")
    # When it has run a few times
    row = wait_for(lambda: re.search(r'data-label="Runs">([3-9]|\d\d)<', entry_row(client, "tick-every-second"))
                   and entry_row(client, "tick-every-second"), timeout=30)
    # Then its row names the task, the schedule, the arguments, and its last and next runs as times
    assert "<code>tests.beat_tasks.tick</code>" in row and "&lt;freq: 1s&gt;" in row and "[&#39;beat&#39;]" in row
    last = re.search(r'data-label="Last run"><time datetime="([^"]+)"', row).group(1)
    following = re.search(r'class="next-run"><time datetime="([^"]+)"', row).group(1)
    assert datetime.fromisoformat(following.replace("Z", "+00:00")) > datetime.fromisoformat(
        last.replace("Z", "+00:00"))
    # And the entry added in on_after_configure is listed too
    assert "<code>tests.beat_tasks.tick</code>" in entry_row(client, "added every 2 s")


def test_beat_describes_its_entries_at_start_and_forgets_removed_ones():
    # Given a beat whose schedule once had an entry it no longer has
    app = Celery("beatproj", set_as_current=False)
    app._connection = fakeredis.FakeRedis()
    app._connection_url = app.broker_url
    app._connection.hset(keys.beat_entries(), "gone", json.dumps({"task": "old"}))
    app.conf.beat_schedule = {"hourly": {"task": "proj.report", "schedule": 3600.0, "args": (1,),
                                         "options": {"queue": "reports"}}}
    # When it starts
    PersistentScheduler(app)
    # Then the entry is described with its next run about an hour away, and the removed one is gone
    stored = {name.decode(): json.loads(raw) for name, raw in app._connection.hgetall(keys.beat_entries()).items()}
    assert set(stored) == {"hourly"}
    hourly = stored["hourly"]
    assert (hourly["task"], hourly["queue"], hourly["args"]) == ("proj.report", "reports", "[1]")
    next_run = datetime.fromisoformat(hourly["next_run_at"])
    assert timedelta(minutes=59) < next_run - datetime.now(timezone.utc) <= timedelta(hours=1)


def test_an_entry_no_beat_described_is_listed_without_a_next_run(make_app, redis_url, redis_conn):
    # Given the web app's own beat_schedule, with no beat running
    app = make_app(redis_url, WTF_CSRF_ENABLED=False)
    app.extensions["celery"].conf.beat_schedule = {"nightly": {"task": "app.tasks.ping.ping", "schedule": 86400.0}}
    row = entry_row(app.test_client(), "nightly")
    # Then it is listed, saying no beat runs it yet
    assert "<code>app.tasks.ping.ping</code>" in row and "no beat has started with it" in row


def test_a_next_run_long_past_says_beat_may_not_be_running(client, redis_conn):
    # Given an entry whose described next run is an hour ago (its beat stopped)
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    redis_conn.hset(keys.beat_entries(), "stale", json.dumps({"task": "proj.t", "schedule": "<freq: 60s>",
                                                              "next_run_at": an_hour_ago}))
    assert "overdue: is beat running?" in entry_row(client, "stale")


def test_with_no_schedule_the_page_says_so(client, redis_conn):
    assert 'id="no-entries"' in client.get("/periodic").get_data(as_text=True)

"""The monitor's pages in a real browser: readable times, and pages that ride out a Redis outage by themselves.

Before: raw ISO UTC times with milliseconds; a task page that froze silently during an outage while
saying it "follows the task live"; and a reload during the outage left a 503 page that never retried.
"""

from __future__ import annotations

import re

import pytest

from tests.support import LiveServer
from tests.support_dashboard import DEADLINE_MS


@pytest.fixture
def own_redis_server(start_redis_server):
    """A Redis server of this test's own, which keeps its data across a restart (as in production)."""
    server = start_redis_server(appendonly=True)
    yield server
    server.stop()


@pytest.fixture
def outage_server(make_app, own_redis_server):
    """The app on :func:`own_redis_server`, which the test may stop and start."""
    server = LiveServer(make_app(own_redis_server.url))
    yield server
    server.stop()


def test_times_read_relative_and_local_with_the_iso_time_on_hover(page, live_server, celery_app, burst_worker):
    from tests import compat_tasks

    # Given a task a worker ran
    result = compat_tasks.add.delay(1, 2)
    burst_worker()
    # When the task list is opened
    page.goto(f"{live_server.url}/tasks")
    age = page.wait_for_selector("#tasks time[datetime]", timeout=DEADLINE_MS)
    # Then its age reads relative and local, with the exact time on hover, and its runtime is shown
    assert re.fullmatch(r"(just now|\d+ (s|min) ago) · .*\d\d.\d\d.\d\d.*", age.inner_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", age.get_attribute("title"))
    row = page.inner_text(f"#tasks tr:has(a[href='/tasks/{result.id}'])")
    assert re.search(r"\d+\.\d\d s", row) and "tests.compat_tasks.add" in row


def test_the_task_page_shows_an_outage_banner_and_recovers_by_itself(page, outage_server, own_redis_server):
    # Given a waiting task's page, following it live
    client = outage_server.app.test_client()
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    page.goto(f"{outage_server.url}/tasks/{task_id}")
    page.wait_for_selector("#live-hint", state="visible", timeout=DEADLINE_MS)
    assert page.is_hidden("#outage")
    # When Redis goes away, the page says so instead of freezing
    own_redis_server.stop()
    page.wait_for_selector("#outage", state="visible", timeout=DEADLINE_MS)
    assert page.is_hidden("#live-hint")
    # And when Redis is back, the banner goes by itself, without a reload
    page.evaluate("window.notReloaded = true")
    own_redis_server.start()
    page.wait_for_selector("#outage", state="hidden", timeout=DEADLINE_MS)
    assert page.evaluate("window.notReloaded") is True and page.inner_text("#state") == "PENDING"


def test_a_page_loaded_during_an_outage_reloads_by_itself_once_redis_is_back(page, outage_server, own_redis_server):
    # Given a task, and Redis down when its page is opened
    client = outage_server.app.test_client()
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    own_redis_server.stop()
    response = page.goto(f"{outage_server.url}/tasks/{task_id}")
    assert response.status == 503
    assert "tries again by itself" in page.inner_text("main")
    # When Redis is back, the page becomes the task's page without anyone reloading it
    own_redis_server.start()
    page.wait_for_selector("#task", timeout=DEADLINE_MS)
    assert page.inner_text("#state") == "PENDING"

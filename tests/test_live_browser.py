"""Live pages in a real browser: the task list and a task page's timeline follow what workers do.

Before: /tasks and the timeline stayed as they were loaded until someone reloaded them. Now the
newest page of /tasks polls GET /api/tasks with its own filters (pausing while the tab is hidden,
saying so when it loses contact), and the timeline is read again whenever the task changes state.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest

from tests import compat_tasks
from tests.support import LiveServer
from tests.support_axe import axe_violations
from tests.support_dashboard import DEADLINE_MS

ROW = "#tasks tr[data-task-id='{}']"


def mark_document(page) -> None:
    """Mark the loaded document: the mark is still there later only if the page was never reloaded."""
    page.evaluate("window.notReloaded = true")


def api_polls(page) -> list[float]:
    """When the page asked GET /api/tasks, as it goes on."""
    asked: list[float] = []
    page.on("request", lambda request: urlsplit(request.url).path == "/api/tasks" and asked.append(time.monotonic()))
    return asked


@pytest.fixture
def outage_server(make_app, own_redis_server):
    """The app on a Redis server of the test's own, which the test may stop and start."""
    server = LiveServer(make_app(own_redis_server.url))
    yield server
    server.stop()


def test_a_task_sent_after_the_list_loaded_appears_and_turns_to_success_in_place(page, live_server, celery_app,
                                                                                  burst_worker):
    # Given the list filtered by a task name, loaded while no task exists
    page.goto(f"{live_server.url}/tasks?name=tests.compat_tasks.add")
    assert page.locator("#tasks").count() == 0
    mark_document(page)
    # When a matching task and another task are sent
    other = compat_tasks.echo.delay("not listed")
    result = compat_tasks.add.delay(2, 3)
    # Then the matching one appears, waiting, without a reload; the other does not
    row = page.wait_for_selector(ROW.format(result.id), timeout=DEADLINE_MS)
    assert "PENDING" in row.inner_text() and "tests.compat_tasks.add" in row.inner_text()
    assert page.locator(ROW.format(other.id)).count() == 0
    row.evaluate("tr => { tr.dataset.seen = 'before' }")
    # And once a worker ran it, the same row turns to SUCCESS with its runtime
    burst_worker()
    page.wait_for_function("row => document.querySelector(row).innerText.includes('SUCCESS')",
                           arg=ROW.format(result.id), timeout=DEADLINE_MS)
    assert page.get_attribute(ROW.format(result.id), "data-seen") == "before"
    assert page.evaluate("window.notReloaded") is True
    assert "s" in page.inner_text(f"{ROW.format(result.id)} td[data-label=Runtime]")
    assert page.locator("#tasks tbody tr").count() == 1
    # And the list drawn by the script passes axe-core as the server's does
    assert axe_violations(page) == []


def test_markup_in_a_new_tasks_arguments_shows_as_text(page, live_server, celery_app):
    # Given the list, with one task already listed
    compat_tasks.echo.delay("first")
    page.goto(f"{live_server.url}/tasks")
    page.wait_for_selector("#tasks", timeout=DEADLINE_MS)
    # When a task whose argument is markup is sent
    markup = "<b>bold</b><img src=x onerror=injected=1>"
    result = compat_tasks.echo.delay(markup)
    # Then its row shows the markup as text, and no element or script came of it
    cell = page.wait_for_selector(f"{ROW.format(result.id)} td.arguments", timeout=DEADLINE_MS)
    assert "<b>bold</b>" in cell.inner_text() and markup in cell.get_attribute("title")
    assert page.locator("#tasks img, #tasks b").count() == 0
    assert page.evaluate("window.injected") is None
    # And the new task is on top
    assert page.get_attribute("#tasks tbody tr:first-child", "data-task-id") == result.id


def test_an_older_page_stays_still(page, live_server, celery_app):
    # Given an older page of the list (two tasks, one per page)
    compat_tasks.echo.delay("older")
    compat_tasks.echo.delay("newer")
    page.goto(f"{live_server.url}/tasks?limit=1")
    page.click(".pager a[rel=next]")
    page.wait_for_url("**cursor=**", timeout=DEADLINE_MS)
    asked = api_polls(page)
    # When a task is sent, the older page does not ask for the list
    compat_tasks.echo.delay("newest")
    page.wait_for_timeout(3000)
    assert asked == [] and page.locator("#live-note").count() == 0


def test_the_list_pauses_while_the_tab_is_hidden(page, live_server, celery_app):
    # Given the list, asking for its tasks every two seconds
    page.goto(f"{live_server.url}/tasks")
    asked = api_polls(page)
    page.wait_for_selector("#live-note", timeout=DEADLINE_MS)
    assert "updates itself every 2 s" in page.inner_text("#live-note")
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while not asked and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert asked
    # When the tab is hidden, it stops asking
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "hidden", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(500)  # an answer in flight may still land
    count = len(asked)
    page.wait_for_timeout(4500)
    assert len(asked) == count
    # And when it is shown again, it asks at once
    page.evaluate("""() => {
        Object.defineProperty(document, "visibilityState", {value: "visible", configurable: true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    page.wait_for_timeout(500)
    assert len(asked) > count


def test_the_list_says_it_lost_contact_and_recovers_by_itself(page, outage_server, own_redis_server):
    # Given the list, following the tasks live
    page.goto(f"{outage_server.url}/tasks")
    page.wait_for_selector("#live-note", state="visible", timeout=DEADLINE_MS)
    mark_document(page)
    # When Redis goes away, a banner says so and when the page tries again
    own_redis_server.stop()
    banner = page.wait_for_selector(".banner[role=status]", state="visible", timeout=DEADLINE_MS)
    assert "Lost contact with the server" in banner.inner_text() and "tries again by itself" in banner.inner_text()
    assert page.is_hidden("#live-note")
    # And once Redis is back, the banner goes by itself and a new task shows, without a reload
    own_redis_server.start()
    page.wait_for_selector(".banner[role=status]", state="hidden", timeout=DEADLINE_MS)
    task_id = outage_server.app.test_client().post("/api/tasks/ping", json={"token": "live:1"}).json["id"]
    page.wait_for_selector(ROW.format(task_id), timeout=DEADLINE_MS)
    assert page.evaluate("window.notReloaded") is True


def test_the_task_pages_timeline_follows_the_task(page, live_server, celery_app, burst_worker):
    # Given a waiting task's page, whose timeline reads only "Sent"
    result = compat_tasks.add.delay(1, 2)
    page.goto(f"{live_server.url}/tasks/{result.id}")
    assert page.locator("#timeline .what").all_inner_texts() == ["Sent"]
    mark_document(page)
    # When a worker runs it
    burst_worker()
    # Then the timeline reads sent, started, succeeded, without a reload, its times readable
    page.wait_for_function("() => document.querySelectorAll('#timeline .what').length === 3",
                           timeout=DEADLINE_MS)
    assert page.locator("#timeline .what").all_inner_texts() == ["Sent", "Started", "Succeeded"]
    assert "ago" in page.inner_text("#timeline li:last-child time") or "just now" in page.inner_text(
        "#timeline li:last-child time")
    assert page.evaluate("window.notReloaded") is True


def timeline_reads(page) -> list[int]:
    """The answers' statuses to the page's GET /api/tasks/<id>/timeline, as they come."""
    answered: list[int] = []
    page.on("response", lambda response: urlsplit(response.url).path.endswith("/timeline")
            and answered.append(response.status))
    return answered


def test_a_waiting_tasks_page_does_not_read_its_timeline_again_on_every_poll(page, live_server, celery_app):
    # Given a task no worker has started, its page open in a browser that polls its status every second
    result = compat_tasks.add.delay(1, 2)
    page.add_init_script("window.EventSource = undefined")  # no stream: the page falls back to polling
    reads, polls = timeline_reads(page), []
    page.on("response", lambda response: response.url.endswith(f"/api/tasks/{result.id}") and polls.append(1))
    page.goto(f"{live_server.url}/tasks/{result.id}")
    # When three polls have answered the same state, not started
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while len(polls) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    # Then the timeline was never read again: nothing changed
    assert len(polls) >= 3 and reads == []


def test_the_timeline_is_read_again_after_a_server_error(page, live_server, celery_app, burst_worker):
    # Given a waiting task's page, and a server whose first answer to the timeline is a 500
    result = compat_tasks.add.delay(1, 2)
    failed: list[str] = []

    def first_fails(route) -> None:
        if failed:
            route.continue_()
        else:
            failed.append(route.request.url)
            route.fulfill(status=500, body="Internal Server Error")

    page.route("**/timeline", first_fails)
    page.goto(f"{live_server.url}/tasks/{result.id}")
    # When a worker runs it: the timeline's read after the stage change fails once
    burst_worker()
    # Then the page tries again and the timeline reads sent, started, succeeded
    page.wait_for_function("() => document.querySelectorAll('#timeline .what').length === 3",
                           timeout=DEADLINE_MS)
    assert failed and page.locator("#timeline .what").all_inner_texts() == ["Sent", "Started", "Succeeded"]

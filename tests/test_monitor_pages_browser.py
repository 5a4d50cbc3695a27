"""Workers, Queues and Periodic in a real Chromium: the buttons work end to end (CSRF on), the graphs draw,
a phone (390 px) needs no sideways scrolling of the page, and axe-core finds no violation.

``UPDATE_SCREENSHOTS=1`` also writes the README's screenshots (docs/monitor-*-1280.png and -390.png).
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe

from app.celery_compat import keys
from app.celery_compat.series import SAMPLE_STEP, bucket_start, sample_queues
from tests.support import wait_for
from tests.support_dashboard import DEADLINE_MS

DOCS = Path(__file__).resolve().parent.parent / "docs"
NODE = f"celery@{socket.gethostname()}"
PHONE = {"width": 390, "height": 844}


def forget_samples(redis_conn, queue_name: str) -> None:
    """Drop the queue samples a burst worker's heartbeat may have taken (any moment of its drain, this minute)."""
    redis_conn.delete(keys.queue_lengths(queue_name), keys.queue_sample_claim(bucket_start(time.time(), SAMPLE_STEP)))


def check_page(page, name: str) -> None:
    """No axe-core violation, no sideways scrolling on a phone; and the README's screenshots when asked."""
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / f"monitor-{name}-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / f"monitor-{name}-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def card(page, node: str = NODE):
    return page.locator(f"section.node[data-node='{node}']")


def confirm(page, verb: str) -> None:
    """Press a node's button, then confirm on the page it leads to."""
    page.get_by_role("link", name=f"{verb}: {NODE}").click()
    page.wait_for_selector("#confirm-form", timeout=DEADLINE_MS)
    assert page.get_by_role("heading", level=1).inner_text() == f"{verb}: {NODE}?"
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    page.click("#confirm")
    page.wait_for_selector("#done, #failed", timeout=DEADLINE_MS)


def reload_until(page, predicate) -> None:
    wait_for(lambda: (page.reload(), predicate())[1], timeout=20, interval=0.5)


def test_the_workers_page_grows_shrinks_and_shuts_down_a_node_by_its_buttons(page, live_server, worker_process):
    from tests import compat_tasks

    # Given a prefork worker of one process, running a task
    process = worker_process("-P", "prefork", "-c", "1")
    result = compat_tasks.sleep.delay(4)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/workers")
    reload_until(page, lambda: card(page).locator(f"a[href='/tasks/{result.id}']").count() == 1)
    # Then the node shows busy with its task, since a readable time
    assert card(page).locator(".state").inner_text() == "busy"
    assert re.search(r"since (just now|\d+ s ago) · ", card(page).locator(".running").inner_text())
    check_page(page, "workers")
    # When "Add a process" is pressed and confirmed, the worker answers and grows to two processes
    confirm(page, "Add a process")
    assert "pool will grow" in page.inner_text("#done")
    reload_until(page, lambda: "prefork, 2 processes" in card(page).inner_text())
    # And "Remove a process" brings it back to one
    confirm(page, "Remove a process")
    assert "pool will shrink" in page.inner_text("#done")
    reload_until(page, lambda: "prefork, 1 process\n" in card(page).inner_text() + "\n")
    # And "Shut down", once confirmed, stops it after its running task
    confirm(page, "Shut down")
    assert "shutting down" in page.inner_text("#done")
    assert process.wait(timeout=20) == 0
    reload_until(page, lambda: page.locator("#no-workers").count() == 1)


def test_the_queues_page_draws_throughput_run_time_and_length_graphs_with_their_values(
        page, live_server, celery_app, burst_worker, redis_conn):
    from tests import compat_tasks

    # Given tasks a worker ran (some failed), and tasks waiting, sampled
    for number in range(5):
        compat_tasks.add.delay(number, 1)
    compat_tasks.fail.delay()
    compat_tasks.sleep.delay(0.2)
    burst_worker()
    compat_tasks.add.delay(9, 9)
    forget_samples(redis_conn, "celery")
    assert sample_queues(redis_conn)
    # When the Queues page is opened
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/queues")
    # Then each task name has its graphs, drawn as bars with their values on hover
    add = page.locator("section.task-charts[data-task='tests.compat_tasks.add']")
    assert add.locator("svg rect.bar-succeeded").count() >= 1
    assert re.search(r": 5 succeeded$", add.locator("svg rect.bar-succeeded title").first.text_content())
    # And the values read as a table once opened
    add.locator("details.values summary").click()
    assert add.locator("details.values table td").first.inner_text() == "5"
    assert page.locator("#length-celery svg rect.bar-queued").count() == 1
    assert page.locator("tr[data-queue='celery'] .count-queued").inner_text() == "1"
    check_page(page, "queues")
    # And the last day's window draws the same
    page.get_by_role("link", name="Last day").click()
    assert page.locator("section.task-charts[data-task='tests.compat_tasks.add'] svg rect.bar-succeeded").count() >= 1


def test_the_periodic_page_shows_the_next_run_as_a_readable_time(page, live_server, worker_process):
    # Given a worker with -B running a one-second periodic task
    worker_process("-B", "-P", "solo", app="tests.beat_tasks")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/periodic")
    row = page.locator("tr[data-entry='tick-every-second']")
    reload_until(page, lambda: row.count() == 1 and int(row.locator("td[data-label='Runs']").inner_text()) >= 2)
    # Then the next run reads relative and local, with the ISO time on hover
    following = row.locator(".next-run time")
    assert re.fullmatch(r"(just now|in \d+ s|\d+ s ago) · .*\d\d.\d\d.\d\d.*", following.inner_text())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", following.get_attribute("title"))
    check_page(page, "periodic")

"""axe-core finds no violation on any page of ours, nor on rq-dashboard's, in real Chromium.

Before: rq-dashboard had a critical ``select-name`` and a serious ``color-contrast`` violation, and
/tasks a ``landmark-unique``. Pages are listed in tests/support_axe.py; a new page joins by one line.
"""

from __future__ import annotations

import pytest

from app.celery_compat import states
from app.embedded_redis import free_port
from tests import compat_tasks
from tests.support import LiveServer
from tests.support_axe import PAGES, axe_violations
from tests.support_dashboard import DEADLINE_MS


@pytest.fixture
def tasks_in_each_state(celery_app, burst_worker) -> dict[str, str]:
    """A task in each state a page shows differently, by state name."""
    ids = {states.SUCCESS: compat_tasks.add.delay(1, 2).id, states.FAILURE: compat_tasks.fail.delay("boom").id}
    burst_worker()
    for state in (states.PENDING, "PROGRESS", states.RETRY, states.REVOKED):
        ids[state] = compat_tasks.sleep.apply_async((10,), queue="waiting").id
    backend = celery_app.backend
    backend.store_result(ids["PROGRESS"], {"current": 2, "total": 5}, "PROGRESS")
    backend.store_result(ids[states.RETRY], compat_tasks.TransientError("mail server away"), states.RETRY)
    compat_tasks.app.control.revoke(ids[states.REVOKED], terminate=True)
    return ids


@pytest.mark.parametrize("name", list(PAGES))
def test_a_page_has_no_axe_violations(name, page, live_server, tasks_in_each_state):
    target = PAGES[name]
    # Given the page, drawn in full
    page.goto(live_server.url + target.path.format(**tasks_in_each_state))
    page.wait_for_selector(target.ready, timeout=DEADLINE_MS)
    # Then axe-core finds nothing
    assert axe_violations(page) == []


def test_the_outage_page_has_no_axe_violations(page, make_app):
    # Given the app on a Redis that is not there, so that every page is the 503 page
    server = LiveServer(make_app(f"redis://127.0.0.1:{free_port()}/0", REDIS_SOCKET_TIMEOUT=0.2))
    try:
        response = page.goto(server.url + "/tasks")
        assert response.status == 503
        assert axe_violations(page) == []
    finally:
        server.stop()


PHONE = {"width": 390, "height": 844}


def _inside_the_screen(box) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5


def test_on_a_phone_rq_dashboard_reaches_all_eight_queue_columns(page, live_server, tasks_in_each_state):
    # Given the queues page on a 390 px screen
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/rq/0/view/queues")
    page.wait_for_selector("tr[data-role=queue]", timeout=DEADLINE_MS)
    # Then the page itself does not scroll sideways, and each of the eight columns can be scrolled to in full
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    headers = page.locator("#queues thead th")
    assert headers.count() == 8
    for index in range(8):
        header = headers.nth(index)
        header.scroll_into_view_if_needed()
        assert _inside_the_screen(header.bounding_box()), header.inner_text()


def test_on_a_phone_the_job_page_shows_the_whole_requeue_button(page, live_server, tasks_in_each_state):
    # Given a failed job's page on a 390 px screen
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server.url}/rq/0/view/job/{tasks_in_each_state['FAILURE']}")
    button = page.wait_for_selector("#requeue-job-btn", state="visible", timeout=DEADLINE_MS)
    # Then the button is inside the screen, and nothing makes the page scroll sideways
    assert _inside_the_screen(button.bounding_box())
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


@pytest.mark.parametrize("name", [name for name in PAGES if not name.startswith("rq-")])
def test_on_a_phone_none_of_our_pages_scrolls_sideways(name, page, live_server, tasks_in_each_state):
    target = PAGES[name]
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + target.path.format(**tasks_in_each_state))
    page.wait_for_selector(target.ready, timeout=DEADLINE_MS)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

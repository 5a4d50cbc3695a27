"""The monitor's actions in a real browser, with CSRF on as in production: bulk retry and cancel from
the task list, and a task page's timeline, links and Retry with edited arguments. Each page reached
this way is also checked with axe-core."""

from __future__ import annotations

from app.celery_compat import chain, states
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support_axe import axe_violations
from tests.support_dashboard import DEADLINE_MS


def test_retry_all_failed_from_the_task_list_confirms_the_count_then_says_what_it_did(page, live_server,
                                                                                    celery_app, burst_worker):
    # Given two failed tasks and one that succeeded
    failed = [compat_tasks.fail.delay(f"boom {n}").id for n in range(2)]
    compat_tasks.add.delay(1, 2)
    burst_worker()
    # When "Retry all failed" is clicked on the list, the confirmation step counts them first
    page.goto(f"{live_server.url}/tasks")
    page.click("#bulk-retry")
    assert page.inner_text("#count") == "2 tasks will be retried."
    assert axe_violations(page) == []
    # And once confirmed, the summary says both were retried
    page.click("#bulk-confirm")
    page.wait_for_selector("#summary", timeout=DEADLINE_MS)
    assert page.inner_text("#summary-line") == "Retried 2."
    assert axe_violations(page) == []
    # And a worker runs the two copies (the originals stay failed)
    burst_worker()
    assert [AsyncResult(task_id).state for task_id in failed] == [states.FAILURE] * 2


def test_cancel_all_on_a_filtered_list_cancels_only_its_waiting_tasks(page, live_server, celery_app):
    # Given two waiting tasks on queue "slow" and one on "other"
    slow = [compat_tasks.sleep.apply_async((10,), queue="slow").id for _ in range(2)]
    other = compat_tasks.sleep.apply_async((10,), queue="other").id
    # When the list is filtered by queue and "Cancel all" confirmed
    page.goto(f"{live_server.url}/tasks?queue=slow")
    page.click("#bulk-cancel")
    assert page.inner_text("#count") == "2 tasks will be cancelled."
    page.click("#bulk-confirm")
    page.wait_for_selector("#summary", timeout=DEADLINE_MS)
    # Then those two are cancelled, and the other still waits
    assert page.inner_text("#summary-line") == "Cancelled 2."
    assert [AsyncResult(task_id).state for task_id in slow] == [states.REVOKED] * 2
    assert AsyncResult(other).state == states.PENDING


def test_a_task_page_shows_its_timeline_and_links_to_its_child(page, live_server, celery_app, burst_worker):
    # Given a two-step chain a worker ran
    last = chain(compat_tasks.add.s(1, 2), compat_tasks.add.s(3))()
    burst_worker()
    # When the first step's page is opened
    page.goto(f"{live_server.url}/tasks/{last.parent.id}")
    # Then its timeline reads sent, started, succeeded, and its child is one click away
    assert page.locator("#timeline .what").all_inner_texts() == ["Sent", "Started", "Succeeded"]
    page.click(f"#links a[href='/tasks/{last.id}']")
    page.wait_for_url(f"**/tasks/{last.id}", timeout=DEADLINE_MS)
    assert page.inner_text("#state") == states.SUCCESS


def test_retry_with_edited_arguments_refuses_bad_json_then_sends_the_edited_task(page, live_server, celery_app,
                                                                                burst_worker):
    # Given a failed task's page
    failed = compat_tasks.fail.delay("boom")
    burst_worker()
    page.goto(f"{live_server.url}/tasks/{failed.id}")
    page.click("#edit-retry summary")
    # When its arguments are edited into bad JSON, the page comes back saying why, with what was typed
    page.fill("#arguments", '{"args": ["edited"')
    page.click("#retry-edited")
    page.wait_for_selector("#arguments-error", timeout=DEADLINE_MS)
    assert "Arguments are not valid JSON" in page.inner_text("#arguments-error")
    assert page.input_value("#arguments") == '{"args": ["edited"'
    assert axe_violations(page) == []
    # And once fixed, the new task's page opens, and a worker runs it with the edited arguments
    page.fill("#arguments", '{"args": ["edited"]}')
    page.click("#retry-edited")
    page.wait_for_url(lambda url: failed.id not in url, timeout=DEADLINE_MS)
    new_id = page.url.rsplit("/", 1)[-1]
    burst_worker()
    assert str(AsyncResult(new_id).info) == "edited"


def test_on_a_phone_a_long_task_name_does_not_make_the_task_page_scroll_sideways(page, live_server, celery_app,
                                                                                 burst_worker):
    # Given a task whose name is a long dotted path, which retried twice
    result = compat_tasks.always_retry.delay()
    burst_worker()
    # When its page is opened on a 390 px screen
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/tasks/{result.id}")
    page.wait_for_selector("#timeline", timeout=DEADLINE_MS)
    # Then the heading wraps instead of widening the page
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

"""The pages in a real headless Chromium: submit, watch the progress bar move without a reload, cancel.

Kept to a few quick tests. ``UPDATE_SCREENSHOTS=1`` also writes the README's screenshots to docs/.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

#: The longest a browser test waits for something to appear, in milliseconds.
DEADLINE_MS = 20_000


def screenshot(page, name: str) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS"):
        page.screenshot(path=str(DOCS / name), full_page=True)


def progress_value(page) -> int:
    return int(float(page.get_attribute("#progress", "value") or 0))


def test_a_submitted_task_shows_its_progress_rising_live_then_its_result(page, live_server, project_worker):
    # Given the index page
    page.set_viewport_size({"width": 1000, "height": 700})
    page.goto(live_server.url + "/")
    screenshot(page, "index.png")
    # When a four-second task is submitted through the form
    page.fill("#duration", "4")
    submitted = time.monotonic()
    page.click("#long-running-form button[type=submit]")
    # Then the browser lands on the task's page
    page.wait_for_url(re.compile(r"/tasks/[\w-]+$"), timeout=DEADLINE_MS)
    page.evaluate("window.notReloaded = true")
    assert page.text_content("h1") == "Long running task"
    # And the bar's value rises at least twice while the page stays the same document
    seen = [progress_value(page)]
    first_progress = None
    deadline = time.monotonic() + DEADLINE_MS / 1000
    while page.text_content("#state") != "SUCCESS" and time.monotonic() < deadline:
        page.wait_for_function(
            "v => Number(document.querySelector('#progress').value) > v || "
            "document.querySelector('#state').textContent === 'SUCCESS'", arg=seen[-1], timeout=DEADLINE_MS)
        value = progress_value(page)
        if value > seen[-1]:
            seen.append(value)
            if first_progress is None:
                first_progress = time.monotonic() - submitted
            if len(seen) == 3:
                screenshot(page, "task-progress.png")
    increases = sum(1 for before, after in zip(seen, seen[1:], strict=False) if after > before)
    assert increases >= 2, seen
    assert page.evaluate("window.notReloaded") is True
    assert page.get_attribute("#progress", "aria-label") == "Progress"
    # Then it shows SUCCESS and the result, and Cancel is gone
    page.wait_for_selector("#result-block:not([hidden])", timeout=DEADLINE_MS)
    assert page.text_content("#state") == "SUCCESS" and progress_value(page) == 100
    assert "Worked for 4 s in 8 steps" in page.text_content("#result")
    assert page.is_hidden("#cancel")
    print(f"\nsubmit to first progress on the page: {first_progress:.2f} s")  # noqa: T201 - for the record


def test_invalid_input_shows_the_error_next_to_the_field_and_keeps_the_value(page, live_server):
    # Given the index page
    page.goto(live_server.url + "/")
    # When a duration out of range is submitted
    page.fill("#duration", "5000")
    page.click("#long-running-form button[type=submit]")
    # Then the form comes back with the reason beside the field, and the value kept
    page.wait_for_selector("#duration-error", timeout=DEADLINE_MS)
    assert "between 1 and 3600" in page.text_content("#duration-error")
    assert page.input_value("#duration") == "5000"
    assert page.get_attribute("#duration", "aria-invalid") == "true"


def test_a_running_task_is_cancelled_from_its_page(page, live_server, project_worker):
    # Given a long task that is running, on its page
    page.goto(live_server.url + "/")
    page.fill("#duration", "60")
    page.click("#long-running-form button[type=submit]")
    page.wait_for_url(re.compile(r"/tasks/[\w-]+$"), timeout=DEADLINE_MS)
    page.wait_for_function("() => document.querySelector('#state').textContent === 'PROGRESS'", timeout=DEADLINE_MS)
    # When Cancel is pressed
    page.click("#cancel")
    # Then the page shows REVOKED and "Cancelled", and offers Retry
    page.wait_for_function("() => document.querySelector('#state').textContent === 'REVOKED'", timeout=DEADLINE_MS)
    assert page.is_visible("#cancelled") and page.is_visible("#retry") and page.is_hidden("#cancel")


def test_the_email_form_lands_on_the_task_page_with_everything_shown_as_text(page, live_server):
    # Given the email form
    page.goto(live_server.url + "/")
    # When an email with markup in its subject is submitted
    page.fill("#to", "ada@example.com, grace@example.com")
    page.fill("#subject", "<script>window.injected = 1</script>")
    page.fill("#body", "Hello")
    page.click("#email-form button[type=submit]")
    # Then its page shows an email task with the subject as text, which never ran as a script
    page.wait_for_url(re.compile(r"/tasks/[\w-]+$"), timeout=DEADLINE_MS)
    assert page.text_content("h1") == "Email task"
    assert "<script>window.injected = 1</script>" in page.text_content(".facts")
    assert "ada@example.com, grace@example.com" in page.text_content(".facts")
    assert page.evaluate("window.injected") is None


def test_a_form_posted_without_its_csrf_token_is_refused(page, live_server):
    # Given a browser that has the site open (so it holds a session cookie)
    page.goto(live_server.url + "/")
    # When it posts the form without the token the page embeds
    response = page.request.post(live_server.url + "/tasks/long-running", form={"duration": "3"})
    # Then the post is refused
    assert response.status == 400
    assert "CSRF" in response.text()


@pytest.fixture(autouse=True)
def _docs_dir() -> None:
    DOCS.mkdir(exist_ok=True)

"""No stored value runs as script in any dashboard page, in a real Chromium.

Markup reaches Redis from anonymous input: an email's subject from the public form, task
arguments and queue names from the Celery API, a task's result and exception text, a job's meta.
Each dashboard page must show it as text (escaping), and a strict Content-Security-Policy stops
whatever markup might still get into a page (defence in depth).
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from conftest import wait_for
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from app.celery_compat.worker import TaskJob
from tests.support_dashboard import DEADLINE_MS, NO_SLASH_PAYLOAD, PAYLOAD, pwned, watch


@pytest.fixture
def stored_markup(live_server, page, celery_app, redis_conn):
    """Jobs with markup in every shown field and in a task name, a queue so named, and a busy worker showing one."""
    from tests import compat_tasks

    jobs = {
        "result": compat_tasks.echo.delay(PAYLOAD).id,
        "exception": compat_tasks.fail.delay(PAYLOAD).id,
    }
    # Run as the stock `rq worker` does (README, "Worker"), so RQ itself stores the result and the
    # exception, the fields the dashboard shows (the lean worker keeps results in the task's document).
    SimpleWorker(["celery"], connection=redis_conn, serializer=JSONSerializer, job_class=TaskJob).work(burst=True)
    jobs["queue"] = compat_tasks.echo.apply_async((PAYLOAD,), queue=NO_SLASH_PAYLOAD).id
    jobs["task name"] = celery_app.send_task(PAYLOAD, args=[PAYLOAD]).id
    meta_job = Job.fetch(jobs["result"], connection=redis_conn, serializer=JSONSerializer)
    meta_job.meta["note"] = PAYLOAD
    meta_job.save_meta()
    # The email comes through the public form, as an anonymous visitor's would.
    page.goto(live_server.url + "/")
    page.fill("#to", "ada@example.com")
    page.fill("#subject", PAYLOAD)
    page.fill("#body", "Hello")
    page.click("#email-form button[type=submit]")
    page.wait_for_url(re.compile(r"/tasks/[\w-]+$"), timeout=DEADLINE_MS)
    jobs["email"] = page.url.rsplit("/", 1)[1]
    worker = Worker([NO_SLASH_PAYLOAD], connection=redis_conn, serializer=JSONSerializer)
    worker.register_birth()
    worker.set_state("busy")
    worker.prepare_execution(Job.fetch(jobs["queue"], connection=redis_conn, serializer=JSONSerializer))
    yield jobs
    worker.register_death()


def _pages(jobs: dict[str, str]) -> list[tuple[str, str]]:
    """(path, selector that appears once the page's script has filled it) for every dashboard page."""
    queue = quote(NO_SLASH_PAYLOAD, safe="")
    return [
        ("/rq/", "tr[data-role=queue]"),
        # Every task here runs on Celery's default queue, "celery"; the email waits in it.
        ("/rq/0/view/jobs/celery/finished/8/asc/1", "tr[data-role=job]"),
        ("/rq/0/view/jobs/celery/failed/8/asc/1", "tr[data-role=job]"),
        ("/rq/0/view/jobs/celery/queued/8/asc/1", "tr[data-role=job]"),
        (f"/rq/0/view/jobs/{queue}/queued/8/asc/1", "tr[data-role=job]"),
        ("/rq/0/view/workers", "tr[data-role=worker]"),
        *((f"/rq/0/view/job/{job_id}", "#job-data p") for job_id in jobs.values()),
    ]


def test_markup_stored_in_any_field_shows_as_text_and_never_runs_on_any_dashboard_page(live_server, page,
                                                                                       stored_markup):
    seen = watch(page)
    for path, filled in _pages(stored_markup):
        # When an operator opens the page and its script has filled it from the JSON endpoints
        page.goto(live_server.url + path)
        page.wait_for_selector(filled, timeout=DEADLINE_MS)
        page.wait_for_load_state("networkidle")
        # Then no injected script ran, and the markup is there as text (it did not become elements)
        assert not pwned(page), path
        assert NO_SLASH_PAYLOAD in page.text_content("body"), path
        assert page.locator("img[src=x], svg[onload]").count() == 0, path
    assert seen.dialogs == []
    # And nothing was even blocked by the policy: the escaping alone kept the markup inert
    assert seen.csp_violations() == []
    assert seen.errors == []


def test_each_shown_field_holds_the_markup_as_text(live_server, page, stored_markup):
    # The job page shows description, result, meta and exception text
    page.goto(live_server.url + f"/rq/0/view/job/{stored_markup['result']}")
    page.wait_for_selector("#job-data p", timeout=DEADLINE_MS)
    shown = page.text_content("#job-data")
    assert shown.count(PAYLOAD) >= 3  # description, result, meta
    page.goto(live_server.url + f"/rq/0/view/job/{stored_markup['exception']}")
    page.wait_for_selector("#job-data pre.exc_info", timeout=DEADLINE_MS)
    # A selector, not wait_for_function: polling a string predicate is an eval, which the CSP refuses.
    page.wait_for_selector("pre.exc_info:has-text('ValueError')", timeout=DEADLINE_MS)
    assert PAYLOAD in page.text_content("pre.exc_info")
    # The workers page shows the busy worker's queue and job
    page.goto(live_server.url + "/rq/0/view/workers")
    page.wait_for_selector("tr[data-role=worker]", timeout=DEADLINE_MS)
    assert NO_SLASH_PAYLOAD in page.text_content("tr[data-role=worker]")


def test_markup_that_gets_into_a_dashboard_page_anyway_cannot_run_script(live_server, page):
    # Given a dashboard page, and markup inserted into it as HTML (as an unescaped value would be)
    page.goto(live_server.url + "/rq/")
    page.wait_for_selector("#queues", timeout=DEADLINE_MS)
    violation = page.evaluate("""() => new Promise(resolve => {
        document.addEventListener('securitypolicyviolation', e => resolve(e.violatedDirective));
        setTimeout(() => resolve('no violation reported'), 3000);
        document.body.insertAdjacentHTML('beforeend', '<img src=x onerror="window.pwned=1">');
        const script = document.createElement('script');
        script.textContent = 'window.pwned = 1';
        document.body.appendChild(script);
    })""")
    page.wait_for_timeout(300)  # the image's error event would fire within milliseconds
    # Then the policy refused it, and it did not run
    assert violation.startswith("script-src")
    assert not pwned(page)


def test_every_dashboard_response_carries_a_strict_policy_with_a_fresh_nonce(client):
    policies = [client.get(path).headers.get("Content-Security-Policy", "")
                for path in ("/rq/", "/rq/", "/rq/0/data/queues.json", "/rq/static/css/main.css")]
    for policy in policies:
        assert "script-src 'nonce-" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    nonces = [re.search(r"'nonce-([^']+)'", policy).group(1) for policy in policies]
    assert len(set(nonces)) == len(nonces)
    # And every script the page itself runs carries that response's nonce (templates are not scripts)
    response = client.get("/rq/")
    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"]).group(1)
    html = response.get_data(as_text=True)
    executable = re.findall(r"<script(?![^>]*type=\"text/template\")[^>]*>", html)
    assert executable and all(f'nonce="{nonce}"' in tag for tag in executable)


def test_an_smtp_servers_error_text_shows_as_text_on_the_failed_emails_page(live_server, page, client, smtp_sink,
                                                                             mail_worker, redis_conn):
    # Given an SMTP server that refuses the message with markup in its reply
    smtp_sink.refuse_data.append(f"550 {NO_SLASH_PAYLOAD}")
    mail_worker()
    # When an email is sent through the API and the worker's delivery fails for good
    email = {"to": "ada@example.com", "subject": "Hi", "body": "Hello"}
    task_id = client.post("/api/tasks/email", json=email).json["id"]
    wait_for(lambda: Job.fetch(task_id, connection=redis_conn, serializer=JSONSerializer).get_status() == "failed",
             timeout=30)
    # Then the job's page shows the server's reply as text, and nothing ran
    seen = watch(page)
    page.goto(live_server.url + f"/rq/0/view/job/{task_id}")
    page.wait_for_selector("pre.exc_info:has-text('550')", timeout=DEADLINE_MS)
    assert NO_SLASH_PAYLOAD in page.text_content("pre.exc_info")
    assert not pwned(page) and seen.dialogs == [] and seen.csp_violations() == []


def test_a_queue_name_that_would_end_a_script_string_leaves_its_page_working(live_server, page, celery_app):
    from tests import compat_tasks

    # Given a queue whose name ends with a backslash (rq-dashboard put it in a '...' string in a script)
    name = "odd\\"
    compat_tasks.echo.apply_async((1,), queue=name)
    seen = watch(page)
    # When its jobs page is opened
    page.goto(live_server.url + f"/rq/0/view/jobs/{quote(name, safe='')}/queued/8/asc/1")
    # Then the page's script runs and lists the job
    page.wait_for_selector("tr[data-role=job]", timeout=DEADLINE_MS)
    assert seen.errors == []

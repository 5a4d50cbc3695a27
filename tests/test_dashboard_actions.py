"""The dashboard changes state only by POST with the CSRF token; its own buttons send it, and say when they fail.

rq-dashboard 0.9.0 requeued every failed job on a GET (a cross-site ``<img>`` was enough), and
its buttons posted without the token the app's CSRF protection needs, so each was refused with
400 while the page showed nothing.
"""

from __future__ import annotations

import re

import pytest
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry
from rq.serializers import JSONSerializer

from tests.support_dashboard import DEADLINE_MS, watch

#: Celery's default queue, where the test tasks run.
QUEUE = "celery"

ACTIONS = ["/rq/job/{id}/requeue", "/rq/job/{id}/delete", "/rq/requeue/celery", "/rq/queue/celery/failed/empty",
           "/rq/queue/celery/compact"]


def wait_for(predicate, timeout_s: float = DEADLINE_MS / 1000):
    from conftest import wait_for as poll

    return poll(predicate, timeout=timeout_s)


@pytest.fixture
def failed_jobs(celery_app, burst_worker):
    """Make ``n`` failed jobs on queue "celery" and return their ids."""
    from tests import compat_tasks

    def make(n: int = 1) -> list[str]:
        ids = [compat_tasks.fail.delay(f"failure {i}").id for i in range(n)]
        burst_worker()
        return ids

    return make


def status(redis_conn, job_id: str) -> JobStatus | None:
    # One read, not EXISTS then a fetch: the dashboard may delete the job in between
    try:
        return Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).get_status()
    except (NoSuchJobError, InvalidJobOperation):
        return None


# --- only POST changes anything --------------------------------------------------------------

def test_every_dashboard_route_that_accepts_post_refuses_get(app, client):
    # Whatever routes this rq-dashboard release has: each one that takes a POST is an action
    posting = [rule for rule in app.url_map.iter_rules()
               if rule.endpoint.startswith("rq_dashboard.") and "POST" in (rule.methods or ())]
    assert len(posting) == 5
    for rule in posting:
        path = re.sub(r"<(?:\w+:)?\w+>", "x", rule.rule)
        assert (path, client.get(path).status_code) == (path, 405)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_requested_by_get_is_refused_and_changes_nothing(client, redis_conn, failed_jobs, method, action):
    # Given a failed job
    [job_id] = failed_jobs()
    # When an action is requested with a method a link or an image would use
    response = client.open(action.format(id=job_id), method=method)
    # Then it is refused, and the job is still there and still failed
    assert response.status_code == 405
    allowed = {method.strip() for method in response.headers["Allow"].split(",")}
    assert "POST" in allowed and not allowed & {"GET", "HEAD"}
    assert status(redis_conn, job_id) == JobStatus.FAILED
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == [job_id]


def test_a_cross_site_image_cannot_requeue_failed_jobs(live_server, page, redis_conn, failed_jobs):
    # Given a failed job, and an operator's browser on another site that embeds an image
    [job_id] = failed_jobs()
    page.set_content(f'<img id="attack" src="{live_server.url}/rq/requeue/{QUEUE}">')
    page.wait_for_function("document.getElementById('attack').complete", timeout=DEADLINE_MS)
    # Then the job is still failed, not requeued
    assert status(redis_conn, job_id) == JobStatus.FAILED
    assert Queue(QUEUE, connection=redis_conn).count == 0


@pytest.mark.parametrize("action", ACTIONS)
def test_an_action_posted_without_the_csrf_token_is_refused(make_app, redis_url, redis_conn, failed_jobs, action):
    # Given the app with CSRF protection on (as in production) and a failed job
    client = make_app(redis_url).test_client()
    [job_id] = failed_jobs()
    # When an action is posted without the token, as another site's form would post it
    response = client.post(action.format(id=job_id))
    # Then it is refused, and nothing changed
    assert response.status_code == 400
    assert status(redis_conn, job_id) == JobStatus.FAILED


# --- the dashboard's own buttons ---------------------------------------------------------------

def test_the_requeue_button_on_a_failed_jobs_page_requeues_it(live_server, page, redis_conn, failed_jobs):
    [job_id] = failed_jobs()
    page.goto(f"{live_server.url}/rq/0/view/job/{job_id}")
    page.click("#requeue-job-btn", timeout=DEADLINE_MS)
    wait_for(lambda: status(redis_conn, job_id) == JobStatus.QUEUED)
    assert page.is_hidden("#rq-guard-alert")


def test_the_requeue_button_in_the_failed_list_requeues_that_job(live_server, page, redis_conn, failed_jobs):
    [job_id] = failed_jobs()
    page.goto(f"{live_server.url}/rq/0/view/jobs/{QUEUE}/failed/8/asc/1")
    page.wait_for_selector(f"tr[data-job-id='{job_id}'] [data-role=delete-job-btn]", timeout=DEADLINE_MS)
    page.click(f"tr[data-job-id='{job_id}'] [data-role=requeue-job-btn]")
    wait_for(lambda: status(redis_conn, job_id) == JobStatus.QUEUED)
    assert page.is_hidden("#rq-guard-alert")


def test_the_delete_button_on_a_jobs_page_deletes_it(live_server, page, redis_conn, failed_jobs):
    [job_id] = failed_jobs()
    page.goto(f"{live_server.url}/rq/0/view/job/{job_id}")
    page.click("#delete-job-btn", timeout=DEADLINE_MS)
    page.click("#confirmation-modal-yes", timeout=DEADLINE_MS)
    wait_for(lambda: status(redis_conn, job_id) is None)
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == []


def test_the_requeue_all_button_requeues_every_failed_job(live_server, page, redis_conn, failed_jobs):
    job_ids = failed_jobs(3)
    page.goto(f"{live_server.url}/rq/0/view/jobs/{QUEUE}/failed/8/asc/1")
    page.click("#requeue-all-btn", timeout=DEADLINE_MS)
    page.click("#confirmation-modal-yes", timeout=DEADLINE_MS)
    wait_for(lambda: all(status(redis_conn, job_id) == JobStatus.QUEUED for job_id in job_ids))
    assert FailedJobRegistry(QUEUE, connection=redis_conn).get_job_ids() == []
    assert page.is_hidden("#rq-guard-alert")


def test_the_empty_queue_button_empties_the_queue(live_server, page, redis_conn, celery_app):
    from tests import compat_tasks

    for n in range(3):
        compat_tasks.echo.delay(n)
    assert Queue(QUEUE, connection=redis_conn).count == 3
    page.goto(f"{live_server.url}/rq/0/view/jobs/{QUEUE}/queued/8/asc/1")
    page.wait_for_selector("tr[data-role=job]", timeout=DEADLINE_MS)
    page.click("#empty-btn", timeout=DEADLINE_MS)
    page.click("#confirmation-modal-yes", timeout=DEADLINE_MS)
    wait_for(lambda: Queue(QUEUE, connection=redis_conn).count == 0)
    assert page.is_hidden("#rq-guard-alert")


def test_a_failed_action_shows_its_error_on_the_page(live_server, page, redis_conn, failed_jobs):
    # Given a failed job's page, and the job deleted behind the page's back
    [job_id] = failed_jobs()
    seen = watch(page)
    page.goto(f"{live_server.url}/rq/0/view/job/{job_id}")
    page.wait_for_selector("#requeue-job-btn", state="visible", timeout=DEADLINE_MS)
    page.evaluate("AUTOREFRESH_FLAG = 0")  # the page keeps what it showed, as it would between polls
    Job.fetch(job_id, connection=redis_conn, serializer=JSONSerializer).delete()
    # When the operator clicks Requeue
    page.click("#requeue-job-btn")
    # Then the page says that it failed and why, instead of nothing
    page.wait_for_selector("#rq-guard-alert", state="visible", timeout=DEADLINE_MS)
    alert = page.text_content("#rq-guard-alert")
    assert alert.startswith("Requeue failed: 404"), alert
    assert "No job has this id" in alert
    assert seen.dialogs == []


def test_an_action_refused_for_want_of_a_valid_token_says_so(live_server, page, failed_jobs):
    # Given the failed list, whose page token no longer matches the session (it expired, say)
    failed_jobs()
    page.goto(f"{live_server.url}/rq/0/view/jobs/{QUEUE}/failed/8/asc/1")
    page.wait_for_selector("tr[data-role=job]", timeout=DEADLINE_MS)
    page.context.clear_cookies()
    # When the operator clicks Requeue All
    page.click("#requeue-all-btn")
    page.click("#confirmation-modal-yes", timeout=DEADLINE_MS)
    # Then the page shows the refusal
    page.wait_for_selector("#rq-guard-alert", state="visible", timeout=DEADLINE_MS)
    assert page.text_content("#rq-guard-alert").startswith("Requeue all failed: 400")
    assert "CSRF" in page.text_content("#rq-guard-alert")


PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "test-secret", "DASHBOARD_USERNAME": "ops",
              "DASHBOARD_PASSWORD": "correct horse"}


@pytest.fixture
def production_server(make_app, redis_url, redis_conn):
    from conftest import LiveServer

    server = LiveServer(make_app(redis_url, **PRODUCTION))
    yield server
    server.stop()


def test_in_production_the_buttons_work_behind_basic_auth(production_server, browser, redis_conn, failed_jobs):
    # Given an operator signed in to the dashboard with the configured credentials
    [job_id] = failed_jobs()
    context = browser.new_context(http_credentials={"username": "ops", "password": "correct horse"})
    try:
        page = context.new_page()
        # When they requeue a failed job from its page
        page.goto(f"{production_server.url}/rq/0/view/job/{job_id}")
        page.click("#requeue-job-btn", timeout=DEADLINE_MS)
        # Then it is requeued
        wait_for(lambda: status(redis_conn, job_id) == JobStatus.QUEUED)
        assert page.is_hidden("#rq-guard-alert")
    finally:
        context.close()

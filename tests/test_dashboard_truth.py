"""rq-dashboard shows what the adapter stores about each task, not only RQ's share of it.

With the lean worker, rq-dashboard 0.9.0 showed a ``null`` result for every job, meta without
Celery's state, revoked tasks as "failed", every worker ``idle``, and tracebacks that began with
five frames of our plumbing.
"""

from __future__ import annotations

import json
import re
import socket

import pytest

from app.celery_compat import states
from app.celery_compat.result import AsyncResult
from app.dashboard import tracebacks
from tests import compat_tasks
from tests.support import wait_for
from tests.support_dashboard import DEADLINE_MS

#: A traceback as the adapter stores it: the runner's frames, then the task's, then the error.
STORED = """\
Traceback (most recent call last):
  File "{celery_compat}/app/trace.py", line 121, in trace_task
    retval = _call(task, request, args, kwargs)
  File "{celery_compat}/app/trace.py", line 85, in _call
    return task.run(*args, **kwargs)
  File "/srv/proj/tasks.py", line 50, in charge
    raise ValueError(message)
ValueError: card declined
"""


def job_info(client, job_id: str) -> dict:
    response = client.get(f"/rq/0/data/job/{job_id}.json")
    assert response.status_code == 200, response.data
    return response.get_json()


def celery_meta(info: dict) -> dict:
    return json.loads(info["metadata"])["celery"]


# --- tracebacks: the error and the task's frames first ------------------------------------------

def stored_traceback() -> str:
    return STORED.format(celery_compat=tracebacks.RUNNER_ROOTS[0])


def test_a_traceback_starts_with_the_error_then_the_tasks_frames_then_the_runners():
    shown = tracebacks.user_first(stored_traceback()).splitlines()
    assert shown[0] == "ValueError: card declined"
    assert shown.index('  File "/srv/proj/tasks.py", line 50, in charge') < shown.index(tracebacks.RUNNER_HEADING)
    assert shown[shown.index(tracebacks.RUNNER_HEADING) + 1].endswith('trace.py", line 121, in trace_task')


def test_reordering_a_traceback_keeps_every_line():
    stored = stored_traceback()
    shown = tracebacks.user_first(stored)
    assert set(stored.splitlines()) <= set(shown.splitlines())


def test_a_chained_traceback_keeps_each_exceptions_own_frames_under_it():
    stored = stored_traceback().replace("ValueError: card declined\n", (
        "KeyError: 'card'\n\nDuring handling of the above exception, another exception occurred:\n\n"
        "Traceback (most recent call last):\n  File \"/srv/proj/tasks.py\", line 60, in charge\n"
        "    raise ValueError(message)\nValueError: card declined\n"))
    shown = tracebacks.user_first(stored).splitlines()
    assert shown[0] == "ValueError: card declined"
    assert shown.index("KeyError: 'card'") < shown.index('  File "/srv/proj/tasks.py", line 60, in charge')


def test_a_workers_frames_are_recognised_whatever_its_checkout_or_hosts_paths():
    stored = STORED.format(celery_compat="/srv/other-checkout/app/celery_compat")
    shown = tracebacks.user_first(stored).splitlines()
    assert shown.index('  File "/srv/proj/tasks.py", line 50, in charge') < shown.index(tracebacks.RUNNER_HEADING)


@pytest.mark.parametrize("text", [None, "", "ValueError: no traceback header"])
def test_text_that_is_not_a_traceback_is_shown_as_it_is(text):
    assert tracebacks.user_first(text) == text


def test_the_jobs_lists_summary_is_short_and_leaves_the_runner_out():
    summary = tracebacks.summary(stored_traceback(), max_lines=3)
    assert summary.splitlines() == ["ValueError: card declined", "", "Traceback (most recent call last):",
                                    "... (3 more lines on the job's page)"]


# --- jobs: result, state, retries, progress, revoke ---------------------------------------------

def test_a_succeeded_jobs_result_is_the_tasks_return_value(client, celery_app, burst_worker):
    result = compat_tasks.add.delay(2, 3)
    burst_worker()
    info = job_info(client, result.id)
    assert (info["status"], info["result"]) == ("finished", 5)
    meta = celery_meta(info)
    assert (meta["state"], meta["retries"]) == ("SUCCESS", 0)


def test_a_failed_jobs_exception_shows_the_error_and_the_tasks_frame_first(client, celery_app, burst_worker):
    result = compat_tasks.fail.delay("boom!")
    burst_worker()
    info = job_info(client, result.id)
    lines = info["exc_info"].splitlines()
    assert lines[0] == "ValueError: boom!"
    assert "compat_tasks.py" in lines[3] and tracebacks.RUNNER_HEADING in lines
    assert celery_meta(info)["state"] == states.FAILURE


def test_a_retried_job_counts_its_retries_and_says_retry(client, celery_app, burst_worker):
    result = compat_tasks.succeed_on_third.delay()
    burst_worker()
    info = job_info(client, result.id)
    assert (celery_meta(info)["state"], celery_meta(info)["retries"]) == (states.RETRY, 1)
    assert info["exc_info"].startswith("app.celery_compat.exceptions.Retry: Retry in 1s")


def test_a_revoked_task_is_shown_canceled(client, celery_app, burst_worker):
    result = compat_tasks.add.delay(1, 1)
    result.revoke()
    burst_worker()
    info = job_info(client, result.id)
    assert (info["status"], celery_meta(info)["state"]) == ("canceled", states.REVOKED)


def test_the_failed_list_shows_the_start_of_the_traceback_and_the_state(client, celery_app, burst_worker):
    result = compat_tasks.fail.delay("boom!")
    burst_worker()
    [row] = client.get("/rq/0/data/jobs/celery/failed/8/asc/1.json").get_json()["jobs"]
    assert (row["id"], row["state"]) == (result.id, states.FAILURE)
    assert row["exc_info"].startswith("ValueError: boom!") and tracebacks.RUNNER_HEADING not in row["exc_info"]


def test_a_plain_rq_job_is_shown_as_rq_dashboard_shows_it(client, redis_conn):
    from rq import Queue
    from rq.serializers import JSONSerializer

    job = Queue("plain", connection=redis_conn, serializer=JSONSerializer).enqueue("os.getcwd")
    info = job_info(client, job.id)
    assert (info["status"], info["result"], json.loads(info["metadata"])) == ("queued", None, {})


# --- a running task: progress in meta, its worker busy with it ----------------------------------

def test_a_running_task_shows_its_progress_and_its_worker_busy_with_it(client, celery_app, worker_process):
    # Given a lean worker running a task that reports progress
    worker_process("-P", "solo")
    result = compat_tasks.progress.delay(200, 0.05)
    wait_for(lambda: AsyncResult(result.id).state == "PROGRESS", timeout=DEADLINE_MS / 1000)
    # Then the job's meta carries the progress, and the worker is busy with that job
    progress = celery_meta(job_info(client, result.id))["progress"]
    assert set(progress) == {"current", "total"} and progress["total"] == 200
    [worker] = client.get("/rq/0/data/workers.json").get_json()["workers"]
    assert (worker["state"], worker["current_job"]["job_id"]) == ("busy", result.id)
    assert worker["current_job"]["started_at"]
    result.revoke(terminate=True)


def test_a_workers_name_says_its_slot_process_and_host(client, celery_app, worker_process):
    process = worker_process("-P", "prefork", "-c", "2", workers=2)
    names = sorted(worker["name"] for worker in client.get("/rq/0/data/workers.json").get_json()["workers"])
    host = socket.gethostname()
    assert [re.fullmatch(rf"worker-(\d)\.(\d+)@{re.escape(host)}", name).group(1) for name in names] == ["0", "1"]
    assert process.pid not in {int(name.split(".")[1].split("@")[0]) for name in names}  # the children's pids


def test_the_job_page_in_a_browser_shows_the_result_and_the_error_first(live_server, page, celery_app, burst_worker):
    ok, bad = compat_tasks.add.delay(20, 22), compat_tasks.fail.delay("boom!")
    burst_worker()
    page.goto(f"{live_server.url}/rq/0/view/job/{ok.id}")
    page.wait_for_selector("#job-data pre", timeout=DEADLINE_MS)
    assert page.inner_text("#job-data pre").strip() == "42"
    page.goto(f"{live_server.url}/rq/0/view/job/{bad.id}")
    page.wait_for_selector("#job-data pre.exc_info", timeout=DEADLINE_MS)
    assert page.inner_text("#job-data pre.exc_info").startswith("ValueError: boom!")


def test_the_workers_page_in_a_browser_shows_the_task_a_worker_runs(live_server, page, celery_app, worker_process):
    worker_process("-P", "solo")
    result = compat_tasks.tracked.delay(30)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=DEADLINE_MS / 1000)
    page.goto(f"{live_server.url}/rq/0/view/workers")
    link = page.wait_for_selector("tr[data-role=worker] a", timeout=DEADLINE_MS)
    assert "tracked(30)" in link.inner_text()
    result.revoke(terminate=True)


def test_a_task_terminated_by_revoke_counts_as_canceled_not_failed(client, celery_app, worker_process):
    # Given a prefork worker running a task
    worker_process("-P", "prefork", "-c", "1")
    result = compat_tasks.tracked.delay(30)
    wait_for(lambda: AsyncResult(result.id).state == states.STARTED, timeout=DEADLINE_MS / 1000)
    # When it is revoked with terminate=True
    result.revoke(terminate=True)
    # Then rq-dashboard's queue counts it under Canceled, and not under Failed

    def counts() -> tuple[int, int]:
        [queue] = [one for one in client.get("/rq/0/data/queues.json").get_json()["queues"] if one["name"] == "celery"]
        return queue["canceled_job_registry_count"], queue["failed_job_registry_count"]

    assert wait_for(lambda: counts() == (1, 0), timeout=DEADLINE_MS / 1000)

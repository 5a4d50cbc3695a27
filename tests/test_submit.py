"""Submitting a long-running task from the form or the JSON API, and reading its status back."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rq import Queue

from app.config import PROJECT_ROOT


def test_the_api_accepts_a_task_and_says_where_to_poll(client, redis_conn):
    # When a long-running task is submitted through the API
    response = client.post("/api/tasks/long-running", json={"duration": 2})
    # Then it is accepted at once, with its id and the URL of its status
    assert response.status_code == 202
    body = response.json
    assert set(body) == {"id", "state", "url"}
    assert body["state"] == "PENDING"
    assert body["url"] == f"/api/tasks/{body['id']}"
    assert response.headers["Location"] == body["url"]
    # And the job waits in the project's queue for a worker
    assert body["id"] in Queue("default", connection=redis_conn).job_ids
    # And the request, which never waits on the result, left no subscription to it behind
    assert redis_conn.pubsub_channels(f"celery-task-meta-{body['id']}") == []


def test_the_status_of_a_task_nobody_knows_is_a_404(client):
    # Celery would say PENDING; the web app knows which tasks exist, and says so
    response = client.get("/api/tasks/no-such-task")
    assert response.status_code == 404
    assert "no-such-task" in response.json["error"]


def test_a_queued_task_reads_pending_with_its_kind_arguments_and_submit_time(client):
    # Given a task submitted while no worker runs
    task_id = client.post("/api/tasks/long-running", json={"duration": 4}).json["id"]
    # When its status is read
    response = client.get(f"/api/tasks/{task_id}")
    # Then it is PENDING, at 0 %, with what was asked, and never cached
    assert response.status_code == 200
    status = response.json
    assert set(status) == {"id", "kind", "arguments", "state", "progress", "result", "error", "created_at",
                           "started_at", "finished_at", "worker", "last_heartbeat", "redelivered"}
    assert (status["id"], status["kind"], status["arguments"]) == (task_id, "long-running", {"duration": 4})
    assert (status["state"], status["progress"]["percent"], status["error"]) == ("PENDING", 0, None)
    assert status["created_at"].endswith("Z") and status["started_at"] is None and status["redelivered"] == 0
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({}, "is required"),
        ({"duration": "ten"}, "whole number"),
        ({"duration": 2.5}, "whole number"),
        ({"duration": True}, "whole number"),
        ({"duration": None}, "whole number"),
        ({"duration": 0}, "between 1 and 3600"),
        ({"duration": 3601}, "between 1 and 3600"),
    ],
)
def test_invalid_durations_are_refused_with_422_and_the_reason(client, body, why):
    response = client.post("/api/tasks/long-running", json=body)
    assert response.status_code == 422
    assert why in response.json["errors"]["duration"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b"", b'"duration"'])
def test_a_body_that_is_not_a_json_object_is_a_400(client, raw):
    response = client.post("/api/tasks/long-running", data=raw, content_type="application/json")
    assert response.status_code == 400
    assert "JSON object" in response.json["error"]


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_post_that_is_not_sent_as_json_is_refused_as_a_possible_cross_site_request(
        make_app, redis_url, redis_conn, content_type):
    # Given the app with CSRF protection on, as in production
    client = make_app(redis_url).test_client()
    # When a JSON-looking body arrives without the JSON content type (what a cross-site form can send)
    response = client.post("/api/tasks/long-running", data=b'{"duration": 3}', content_type=content_type)
    # Then it is refused, and nothing is queued
    assert response.status_code == 400
    assert "application/json" in response.json["error"]
    assert Queue("default", connection=redis_conn).count == 0


def test_the_form_submits_a_task_and_redirects_to_its_page(client):
    # Given the index page with its form
    assert b'name="duration"' in client.get("/").data
    # When the form is submitted
    response = client.post("/tasks/long-running", data={"duration": "3"})
    # Then the browser is sent to the task's page, which shows its state
    assert response.status_code == 303
    task_url = response.headers["Location"]
    assert re.fullmatch(r"/tasks/[\w-]+", task_url)
    page = client.get(task_url)
    assert page.status_code == 200
    assert b"PENDING" in page.data
    assert b'role="progressbar"' in page.data or b"<progress" in page.data


def test_the_form_shows_its_errors_again_with_422(client):
    response = client.post("/tasks/long-running", data={"duration": "0"})
    assert response.status_code == 422
    assert b'role="alert"' in response.data


def test_the_form_is_protected_against_cross_site_posts(make_app, redis_url, redis_conn):
    # Given the app with CSRF protection on, as in production
    client = make_app(redis_url).test_client()
    # When a form is posted without the token the page embeds
    response = client.post("/tasks/long-running", data={"duration": "3"})
    # Then it is refused, and nothing is queued
    assert response.status_code == 400
    assert Queue("default", connection=redis_conn).count == 0
    # While the page itself carries the token
    assert b'name="csrf_token"' in client.get("/").data


#: The two documented ways to run a worker (README, "Worker"); {url} is the Redis URL.
WORKER_COMMANDS = {
    "python worker.py": [sys.executable, "worker.py", "-u", "{url}", "--burst", "default"],
    "stock rq worker": [
        str(Path(sys.executable).with_name("rq")), "worker", "-u", "{url}", "--serializer", "json",
        "--job-class", "app.celery_compat.worker.TaskJob", "--with-scheduler", "--burst", "default",
    ],
}  # fmt: skip


@pytest.mark.parametrize("worker_command", WORKER_COMMANDS.values(), ids=WORKER_COMMANDS.keys())
def test_a_task_run_by_a_worker_ends_with_success_and_full_progress(client, redis_url, worker_command):
    # Given a one-second task submitted through the API
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    # When a worker, started as the README says, drains the queue
    worker = subprocess.run(
        [part.format(url=redis_url) for part in worker_command],
        cwd=PROJECT_ROOT,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert worker.returncode == 0, worker.stderr
    # Then its status shows it finished at 100 %, and its page shows the result without reloading
    deadline = time.monotonic() + 10
    while (status := client.get(f"/api/tasks/{task_id}").json)["state"] != "SUCCESS" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (status["state"], status["progress"]["percent"], status["error"]) == ("SUCCESS", 100, None)
    page = client.get(f"/tasks/{task_id}").data
    assert b"SUCCESS" in page and b'http-equiv="refresh"' not in page and b"Worked for 1 s" in page

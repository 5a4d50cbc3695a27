"""Cancelling a task (waiting or running) and retrying a failed or cancelled one, from the API and the page."""

from __future__ import annotations

from rq import Queue

from tests.conftest import wait_for


def state_of(client, task_id: str) -> str:
    return client.get(f"/api/tasks/{task_id}").json["state"]


def test_a_waiting_task_is_cancelled_and_leaves_the_queue(client, redis_conn):
    # Given a task waiting for a worker
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    # When it is cancelled
    response = client.post(f"/api/tasks/{task_id}/cancel", json={})
    # Then the API accepts, the task reads REVOKED with "cancelled" as the reason, and no worker will run it
    assert (response.status_code, response.json) == (202, {"id": task_id, "state": "REVOKED"})
    status = client.get(f"/api/tasks/{task_id}").json
    assert status["state"] == "REVOKED" and status["error"]["type"] == "TaskRevokedError"
    assert task_id not in Queue("default", connection=redis_conn).job_ids


def test_a_running_task_is_stopped_by_cancel(client, project_worker):
    # Given a long task that has started to report progress
    task_id = client.post("/api/tasks/long-running", json={"duration": 60}).json["id"]
    wait_for(lambda: state_of(client, task_id) == "PROGRESS")
    # When it is cancelled
    assert client.post(f"/api/tasks/{task_id}/cancel", json={}).status_code == 202
    # Then it stays REVOKED and stops reporting progress: the worker is free for the next task at once
    assert state_of(client, task_id) == "REVOKED"
    next_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    wait_for(lambda: state_of(client, next_id) == "SUCCESS", timeout=20)
    assert state_of(client, task_id) == "REVOKED"


def test_cancelling_a_finished_task_is_a_409_and_changes_nothing(app, client):
    # Given a task that succeeded
    task_id = client.post("/api/tasks/long-running", json={"duration": 1}).json["id"]
    with app.app_context():
        app.extensions["celery"].backend.store_result(task_id, {"steps": 2}, "SUCCESS")
    # When it is cancelled, Then the API refuses with 409 and the task keeps its result
    response = client.post(f"/api/tasks/{task_id}/cancel", json={})
    assert response.status_code == 409 and "already finished" in response.json["error"]
    assert state_of(client, task_id) == "SUCCESS"


def test_cancelling_or_retrying_an_unknown_task_is_a_404(client):
    assert client.post("/api/tasks/nobody/cancel", json={}).status_code == 404
    assert client.post("/api/tasks/nobody/retry", json={}).status_code == 404


def test_a_cancelled_task_is_retried_as_a_new_task_with_the_same_arguments(client):
    # Given a cancelled task
    old_id = client.post("/api/tasks/long-running", json={"duration": 7}).json["id"]
    client.post(f"/api/tasks/{old_id}/cancel", json={})
    # When it is retried
    response = client.post(f"/api/tasks/{old_id}/retry", json={})
    # Then a new task with the same arguments waits for a worker, and the old one stays cancelled
    assert response.status_code == 202
    new = client.get(response.headers["Location"]).json
    assert new["id"] != old_id and (new["kind"], new["arguments"], new["state"]) == ("long-running", {"duration": 7},
                                                                                     "PENDING")
    assert state_of(client, old_id) == "REVOKED"


def test_a_task_that_neither_failed_nor_was_cancelled_cannot_be_retried(client):
    task_id = client.post("/api/tasks/long-running", json={"duration": 7}).json["id"]
    response = client.post(f"/api/tasks/{task_id}/retry", json={})
    assert response.status_code == 409 and "PENDING" in response.json["error"]


def test_the_page_buttons_cancel_then_retry_a_task(client):
    # Given a waiting task's page, which offers Cancel but not Retry
    task_id = client.post("/api/tasks/long-running", json={"duration": 9}).json["id"]
    page = client.get(f"/tasks/{task_id}").get_data(as_text=True)
    assert 'id="cancel-form">' in page and 'id="retry-form" hidden>' in page
    # When Cancel is pressed, Then the page shows the task cancelled, with Retry offered
    response = client.post(f"/tasks/{task_id}/cancel", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == f"/tasks/{task_id}" and "REVOKED" in page and 'id="retry-form">' in page
    # When Retry is pressed, Then the browser lands on the new task's page
    response = client.post(f"/tasks/{task_id}/retry", follow_redirects=True)
    assert response.request.path != f"/tasks/{task_id}" and "PENDING" in response.get_data(as_text=True)
    # And pressing Cancel again on the finished task answers 409
    assert client.post(f"/tasks/{task_id}/cancel").status_code == 409

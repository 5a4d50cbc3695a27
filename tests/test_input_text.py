"""Input no UTF-8 can carry, and JSON nested beyond reason, are refused at the door: never a 500, never a stuck task.

A lone surrogate (``"\\ud800"``) is valid JSON but not text: accepted, it made the worker unable to
store its result (the task stayed STARTED) and the task's page answer 500 for ever. JSON nested a
thousand levels deep made the parser raise RecursionError, a 500.
"""

from __future__ import annotations

import functools
import json
import urllib.error
import urllib.request

import pytest
from rq import Queue

from tests.conftest import wait_for

EMAIL = {"to": "ada@example.com", "subject": "Hello", "body": "Hi Ada"}


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/tasks/email", {**EMAIL, "subject": "x\ud800"}, "subject"),
        ("/api/tasks/email", {**EMAIL, "body": "Hi\udfff there"}, "body"),
        ("/api/tasks/email", {**EMAIL, "to": ["ada@example.com", "\ud800@example.com"]}, "to"),
        ("/api/tasks/email", {**EMAIL, "note": {"nested": ["\ud800"]}}, "note"),
        ("/api/tasks/long-running", {"duration": "\ud800"}, "duration"),
        ("/api/tasks/long-running", {"duration": 3, "label": "\ud800"}, "label"),
        ("/api/tasks/ping", {"token": "\ud800"}, "token"),
    ],
)
def test_a_lone_surrogate_in_any_field_of_any_json_endpoint_is_a_422_naming_the_field(
        client, redis_conn, path, payload, field):
    # When a JSON body holding "\ud800" (valid JSON, but not text) is posted
    response = client.post(path, json=payload)
    # Then it is refused with the field's name and the reason, and nothing is queued
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in response.json["errors"] and "lone surrogate" in response.json["errors"][field]
    assert Queue("default", connection=redis_conn).count == 0


@pytest.mark.parametrize("path", ["/api/tasks/email", "/api/tasks/long-running", "/api/tasks/ping"])
@pytest.mark.parametrize("depth", [25, 1_000, 100_000])
def test_json_nested_deeper_than_reason_is_a_400_on_every_json_endpoint(client, redis_conn, path, depth):
    # When a JSON object holding a list nested ``depth`` levels deep is posted
    raw = b'{"duration": 1, "pad": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post(path, data=raw, content_type="application/json")
    # Then it is a 400 that says why, and nothing is queued
    assert response.status_code == 400
    assert "nests deeper than 20 levels" in response.json["error"]
    assert Queue("default", connection=redis_conn).count == 0


def test_a_little_nesting_is_still_fine(client):
    response = client.post("/api/tasks/long-running", json={"duration": 1, "meta": {"a": [[{"b": [1]}]]}})
    assert response.status_code == 202


def submit_unchecked(app, kind: str, arguments: dict) -> str:
    """Queue a task as the web app did before the door refused lone surrogates: no validation at all."""
    from app.web.submit import submit

    with app.test_request_context():
        return submit(kind, arguments)


def test_the_pages_of_a_task_stored_with_a_lone_surrogate_still_answer(app, client):
    # Given an email task stored, unchecked, with a lone surrogate in its subject (as an older version did)
    task_id = submit_unchecked(app, "email", {"to": ["ada@example.com"], "subject": "Hello\ud800", "body": "b"})
    # When its page, its status and the task list are read
    page, status, listing = client.get(f"/tasks/{task_id}"), client.get(f"/api/tasks/{task_id}"), client.get("/tasks")
    # Then each answers, showing what can be shown (the surrogate escaped)
    assert (page.status_code, status.status_code, listing.status_code) == (200, 200, 200)
    assert "Hello\\ud800" in page.get_data(as_text=True)
    assert status.json["arguments"]["subject"] == "Hello\ud800"


def test_a_lone_surrogate_posted_over_http_never_reaches_a_real_worker_which_goes_on_delivering(
        live_server, smtp_sink, mail_worker, redis_conn):
    # Given the app over HTTP and a worker delivering to the SMTP server
    mail_worker()
    post = functools.partial(urllib.request.Request, f"{live_server.url}/api/tasks/email", method="POST",
                             headers={"Content-Type": "application/json"})
    # When an email whose subject holds a lone surrogate is posted (the JSON escape, as a script would send it)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post(data=b'{"to": "ada@example.com", "subject": "x\\ud800", "body": "b"}'), timeout=10)
    # Then it is a 422 naming the subject, and nothing is queued for the worker
    assert refused.value.code == 422
    assert "lone surrogate" in json.load(refused.value)["errors"]["subject"]
    assert Queue("default", connection=redis_conn).count == 0
    # And the next email goes through as usual
    with urllib.request.urlopen(post(data=json.dumps(EMAIL).encode()), timeout=10) as accepted:
        assert accepted.status == 202
    wait_for(lambda: smtp_sink.received, timeout=30)
    assert [message["Subject"] for message in smtp_sink.messages()] == ["Hello"]


def test_a_task_queued_with_a_lone_surrogate_before_the_door_refused_it_ends_failure_in_a_real_worker(
        app, client, smtp_sink, mail_worker):
    # Given an email task queued, unchecked, with a lone surrogate in its subject, and a worker
    task_id = submit_unchecked(app, "email", {"to": ["ada@example.com"], "subject": "Hello\ud800", "body": "b"})
    mail_worker()
    # When the worker runs it, Then it ends FAILURE saying why (not STARTED for ever), and nothing is sent
    wait_for(lambda: client.get(f"/api/tasks/{task_id}").json["state"] == "FAILURE", timeout=15)
    status = client.get(f"/api/tasks/{task_id}").json
    # (the InvalidMessage itself holds the surrogate, so what is stored is the EncodeError naming it)
    assert status["error"]["type"] == "EncodeError" and "InvalidMessage" in status["error"]["message"]
    assert "lone surrogate" in status["error"]["traceback"]
    assert smtp_sink.received == []

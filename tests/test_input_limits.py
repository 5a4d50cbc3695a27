"""Oversized email requests are refused at once, before any per-address work, whatever door they come through.

The limits are settings (``MAIL_MAX_RECIPIENTS``, ``MAIL_MAX_SUBJECT_LENGTH``, ``MAIL_MAX_BODY_BYTES``,
``MAX_CONTENT_LENGTH``); a request over one is a 422 naming the field, or a 413 for a body too big to read.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from rq import Queue

from app import config

#: The audit's request: 40,000 addresses, about 900 kB, which took minutes of a thread to refuse.
FORTY_THOUSAND = ", ".join(f"user{i:05d}@example.com" for i in range(40_000))

#: Generous on purpose: a loaded CI machine must not fail it, and the old refusal took about 100 s.
QUICK_SECONDS = 5.0


def post_json(url: str, payload: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.mark.parametrize("to", [FORTY_THOUSAND, FORTY_THOUSAND.split(", ")], ids=["one string", "a list"])
def test_forty_thousand_recipients_are_refused_at_once_over_http(live_server, redis_conn, to):
    # Given the app served over HTTP, and the audit's 40,000 recipients
    payload = {"to": to, "subject": "Hello", "body": "Hi"}
    # When they are posted to the API
    started = time.monotonic()
    status, body = post_json(f"{live_server.url}/api/tasks/email", payload)
    elapsed = time.monotonic() - started
    # Then the answer is a 422 about the recipients, it comes at once, and nothing is queued
    assert status == 422
    assert list(body["errors"]) == ["to"]
    assert "at most 50 addresses" in body["errors"]["to"]
    assert elapsed < QUICK_SECONDS, f"refusing took {elapsed:.1f} s"
    assert Queue("default", connection=redis_conn).count == 0


def test_the_form_refuses_forty_thousand_recipients_at_once_and_shows_itself_again(client, redis_conn):
    started = time.monotonic()
    response = client.post("/tasks/email", data={"to": FORTY_THOUSAND, "subject": "Hello", "body": "Hi"})
    elapsed = time.monotonic() - started
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and 'id="to-error"' in page and "at most 50 addresses" in page
    assert elapsed < QUICK_SECONDS, f"refusing took {elapsed:.1f} s"


@pytest.mark.parametrize(
    ("settings", "change", "field", "why"),
    [
        ({"MAIL_MAX_RECIPIENTS": 2}, {"to": "a@example.com, b@example.com, c@example.com"}, "to",
         "at most 2 addresses, not 3"),
        ({"MAIL_MAX_RECIPIENTS": 2}, {"to": ["a@example.com", "b@example.com", "c@example.com"]}, "to",
         "at most 2 addresses, not 3"),
        ({"MAIL_MAX_RECIPIENTS": 2}, {"to": "a@example.com " * 300}, "to",
         "is too long: 4200 characters, for at most 2 addresses"),
        ({"MAIL_MAX_SUBJECT_LENGTH": 10}, {"subject": "x" * 11}, "subject", "at most 10 characters, not 11"),
        ({"MAIL_MAX_BODY_BYTES": 2048}, {"body": "x" * 2049}, "body", "at most 2 kB"),
        ({"MAIL_MAX_BODY_BYTES": 2048}, {"body": "é" * 1025}, "body", "at most 2 kB"),
    ],
)
def test_each_limit_is_a_setting_and_a_request_over_it_is_a_422_naming_the_field(
        make_app, redis_url, redis_conn, settings, change, field, why):
    # Given the app with a lowered limit
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, **settings).test_client()
    # When a request just over it is posted
    response = client.post("/api/tasks/email", json={"to": "a@example.com", "subject": "Hi", "body": "b", **change})
    # Then it is refused, naming the field and the limit
    assert response.status_code == 422
    assert list(response.json["errors"]) == [field] and why in response.json["errors"][field]


def test_the_defaults_are_fifty_recipients_a_200_character_subject_100_kb_of_body_and_1_mib_of_request():
    settings = config.load(environ={})
    assert (settings["MAIL_MAX_RECIPIENTS"], settings["MAIL_MAX_SUBJECT_LENGTH"], settings["MAIL_MAX_BODY_BYTES"],
            settings["MAX_CONTENT_LENGTH"]) == (50, 200, 100 * 1024, 1024 * 1024)


def test_the_limits_are_read_from_the_environment_and_must_be_positive():
    environ = {"MAIL_MAX_RECIPIENTS": "5", "MAIL_MAX_SUBJECT_LENGTH": "80", "MAIL_MAX_BODY_BYTES": "4096",
               "MAX_CONTENT_LENGTH": "65536"}
    settings = config.load(environ=environ)
    assert [settings[name] for name in environ] == [5, 80, 4096, 65536]
    with pytest.raises(config.ConfigError, match="MAIL_MAX_RECIPIENTS must be a positive whole number"):
        config.load(environ={"MAIL_MAX_RECIPIENTS": "0"})


def test_a_worker_applies_the_same_limits_to_a_task_handed_to_it_directly(app, smtp_sink, mail_worker):
    # Given a worker whose limit is two recipients, and a caller that skipped the web app
    from app.mail.errors import InvalidMessage
    from app.tasks.email import send_email
    from tests.conftest import wait_for

    mail_worker(MAIL_MAX_RECIPIENTS="2")
    # When a task for three recipients is queued
    result = send_email.delay(["a@example.com", "b@example.com", "c@example.com"], "Hi", "b")
    # Then it fails at once, saying why, and nothing is sent
    wait_for(lambda: result.state == "FAILURE", timeout=30)
    assert isinstance(result.info, InvalidMessage) and "at most 2 addresses" in str(result.info)
    assert smtp_sink.received == []


def test_an_email_form_larger_than_the_request_limit_is_shown_again_with_the_reason(make_app, redis_url, redis_conn):
    # Given the app with a 64 kB request limit
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, MAX_CONTENT_LENGTH=64 * 1024).test_client()
    # When the email form is posted with a 100 kB body
    response = client.post("/tasks/email", data={"to": "a@example.com", "subject": "Hi", "body": "x" * 100_000})
    # Then the answer is 413 with the form again, the reason beside the message field
    page = response.get_data(as_text=True)
    assert (response.status_code, response.mimetype) == (413, "text/html")
    assert 'id="email-form"' in page and 'id="body-error"' in page and "larger than the 64 kB" in page
    assert Queue("default", connection=redis_conn).count == 0


def test_an_api_request_larger_than_the_request_limit_is_a_413_in_json(make_app, redis_url, redis_conn):
    client = make_app(redis_url, MAX_CONTENT_LENGTH=64 * 1024).test_client()
    response = client.post("/api/tasks/email", json={"to": "a@example.com", "subject": "Hi", "body": "x" * 100_000})
    assert response.status_code == 413 and response.is_json and response.json["error"]


def test_a_long_running_form_larger_than_the_request_limit_is_shown_again_with_the_reason(
        make_app, redis_url, redis_conn):
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, MAX_CONTENT_LENGTH=1024).test_client()
    response = client.post("/tasks/long-running", data={"duration": "3", "pad": "x" * 4096})
    page = response.get_data(as_text=True)
    assert (response.status_code, response.mimetype) == (413, "text/html")
    assert 'id="long-running-form"' in page and 'id="duration-error"' in page and "larger than the 1 kB" in page
    assert Queue("default", connection=redis_conn).count == 0

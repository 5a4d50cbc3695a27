"""Submitting an email from the form on / and from POST /api/tasks/email; its status reads like any task's."""

from __future__ import annotations

import pytest
from rq import Queue

EMAIL = {"to": "ada@example.com, grace@example.com", "subject": "Quarterly report", "body": "Attached, in words."}


def test_the_api_queues_an_email_and_its_status_has_kind_email(client, redis_conn):
    # When an email is submitted through the API
    response = client.post("/api/tasks/email", json={**EMAIL, "to": ["ada@example.com"]})
    # Then it is accepted at once and waits in the queue
    assert response.status_code == 202
    task_id = response.json["id"]
    assert response.headers["Location"] == f"/api/tasks/{task_id}"
    assert task_id in Queue("default", connection=redis_conn).job_ids
    # And its status names it an email with the cleaned arguments
    status = client.get(f"/api/tasks/{task_id}").json
    assert (status["kind"], status["state"]) == ("email", "PENDING")
    assert status["arguments"] == {"to": ["ada@example.com"], "subject": "Quarterly report",
                                   "body": "Attached, in words."}


@pytest.mark.parametrize(
    ("change", "field"),
    [({"to": "not an address"}, "to"), ({"to": ""}, "to"), ({"subject": "two\nlines"}, "subject"),
     ({"subject": "x" * 201}, "subject"), ({"body": "x" * (100 * 1024 + 1)}, "body"), ({"to": 5}, "to")],
)
def test_an_invalid_email_is_a_422_naming_the_field(client, redis_conn, change, field):
    response = client.post("/api/tasks/email", json={**EMAIL, **change})
    assert response.status_code == 422 and field in response.json["errors"]
    assert Queue("default", connection=redis_conn).count == 0


def test_the_form_submits_an_email_and_redirects_to_its_page(client):
    response = client.post("/tasks/email", data=EMAIL)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Email task" in page and "ada@example.com, grace@example.com" in page and "Quarterly report" in page


def test_the_form_shows_each_error_beside_its_field_and_keeps_the_values(client, redis_conn):
    # When the form is sent with a bad address and an empty subject
    response = client.post("/tasks/email", data={**EMAIL, "to": "ada@", "subject": "  "})
    # Then it comes back with 422, each message beside its field, and what was typed kept
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="to-error"' in page and 'id="subject-error"' in page and 'id="body-error"' not in page
    assert 'value="ada@"' in page and "Attached, in words." in page
    assert Queue("default", connection=redis_conn).count == 0


def test_the_form_names_the_field_and_every_bad_address_in_one_message(client, redis_conn):
    # When the form is sent with two bad addresses among good ones, and no subject
    response = client.post("/tasks/email", data={**EMAIL, "to": "ada@, grace@example.com, bob@@x", "subject": ""})
    page = response.get_data(as_text=True)
    # Then one message beside "To" names both bad addresses, and the subject's says "Subject is required"
    assert response.status_code == 422
    assert page.count('id="to-error"') == 1
    to_error = page.split('id="to-error">', 1)[1].split("</p>", 1)[0]
    assert to_error.startswith("To ") and "ada@" in to_error and "bob@@x" in to_error
    assert "Subject is required" in page


def test_a_duration_that_breaks_two_rules_gets_one_message(client, redis_conn):
    # 2.5 is neither a whole number nor, once read as one, what the form takes: one message, one id
    response = client.post("/tasks/long-running", data={"duration": "2.5"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and page.count('id="duration-error"') == 1


def test_markup_in_an_email_is_shown_as_text_everywhere(client):
    # Given an email whose subject and body hold markup
    task_id = client.post("/api/tasks/email", json={**EMAIL, "subject": "<script>alert(1)</script>",
                                                    "body": "<b>bold</b>"}).json["id"]
    # When its page and the task list are shown, Then the markup is escaped
    for html in (client.get(f"/tasks/{task_id}").get_data(as_text=True), client.get("/tasks").get_data(as_text=True)):
        assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(f"/tasks/{task_id}").get_data(as_text=True)


def test_the_email_form_needs_its_csrf_token(make_app, redis_url, redis_conn):
    client = make_app(redis_url).test_client()
    assert client.post("/tasks/email", data=EMAIL).status_code == 400
    assert 'id="email-csrf"' in client.get("/").get_data(as_text=True)


def test_the_form_refuses_a_subject_that_decodes_to_new_headers_and_says_why_beside_it(client, redis_conn):
    # When the form is sent with the audit's encoded-word subject
    subject = ("=?utf-8?q?x=0D=0AReply-To:_a@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0A"
               "<h1>x</h1>?=")
    response = client.post("/tasks/email", data={**EMAIL, "subject": subject})
    # Then it comes back with 422 and the reason beside the subject only; nothing is queued
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="subject-error"' in page and 'id="to-error"' not in page
    assert "must be one line, without control characters, also once its" in page and "decoded" in page
    assert Queue("default", connection=redis_conn).count == 0

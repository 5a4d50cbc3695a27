"""Outside development, only the configured people and programs may read, submit or cancel tasks.

The attack (issue 12, item 10): in production anyone could list every task, read every email's
recipients, subject and body, and cancel any task. Reproduced here against real gunicorn with the
production configuration; the finer rules run on the Flask test client with a real Redis.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from tests.support_gunicorn import (
    API_TOKEN,
    BASIC,
    BEARER,
    PASSWORD,
    PRODUCTION_SETTINGS,
    USERNAME,
    Gunicorn,
    serve,
)

METRICS_TOKEN = "metrics-token-0123456789abcdef"
SECRET_EMAIL = {"to": "ceo@example.com", "subject": "Merger plans", "body": "Confidential"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def server(redis_server, tmp_path_factory) -> Iterator[Gunicorn]:
    with serve(redis_server.url, tmp_path_factory.mktemp("auth"), METRICS_TOKEN=METRICS_TOKEN,
               SUBMIT_RATE_LIMIT="off") as running:
        yield running


@pytest.fixture
def secret_task(server, redis_conn) -> str:
    status, _, body = server.request("POST", "/api/tasks/email", SECRET_EMAIL, BEARER)
    assert status == 202, body
    return json.loads(body)["id"]


def test_a_stranger_can_neither_list_nor_read_nor_cancel_tasks_in_production(server, secret_task):
    # Given an email task submitted by an authorised program
    # When a stranger lists the tasks, reads the task, its page and its stream, and cancels it
    attempts = [
        ("GET", "/api/tasks", None), ("GET", f"/api/tasks/{secret_task}", None),
        ("GET", f"/api/tasks/{secret_task}/events", None), ("GET", f"/tasks/{secret_task}", None),
        ("GET", "/tasks", None), ("POST", f"/api/tasks/{secret_task}/cancel", {}),
    ]
    answers = [server.request(method, path, body) for method, path, body in attempts]
    # Then every attempt is refused with a challenge, and nothing of the email shows
    assert [status for status, _, _ in answers] == [401] * len(attempts)
    assert all(headers["WWW-Authenticate"].startswith("Basic realm=") and "Bearer realm=" in headers["WWW-Authenticate"]
               for _, headers, _ in answers)
    assert not any(b"Merger" in body or b"ceo@example.com" in body for _, _, body in answers)
    # And the task was not cancelled
    status = json.loads(server.request("GET", f"/api/tasks/{secret_task}", headers=BEARER)[2])
    assert status["state"] == "PENDING"


def test_a_stranger_cannot_submit_tasks_in_production(server, redis_conn):
    status, _, body = server.request("POST", "/api/tasks/long-running", {"duration": 1})
    assert status == 401
    assert json.loads(body)["error"].startswith("authentication required")
    assert redis_conn.llen("rq:queue:default") == 0


@pytest.mark.parametrize(
    "headers",
    [
        basic(USERNAME, "wrong"),
        basic("intruder", PASSWORD),
        basic("", ""),
        basic(API_TOKEN, ""),
        {"Authorization": "Bearer not-a-token-0123456789"},
        {"Authorization": f"Bearer {API_TOKEN[:-1]}"},
        {"Authorization": f"Bearer {METRICS_TOKEN}"},  # opens /metrics only
        {"Authorization": f"Token {API_TOKEN}"},
    ],
    ids=["wrong password", "wrong user", "empty", "token as user", "unknown token", "token prefix",
         "metrics token", "other scheme"],
)
def test_wrong_credentials_are_refused(server, redis_conn, headers):
    assert server.request("GET", "/api/tasks", headers=headers)[0] == 401
    assert server.request("GET", "/", headers=headers)[0] == 401


def test_people_use_the_pages_and_the_api_with_the_configured_credentials(server, secret_task):
    assert server.request("GET", "/", headers=BASIC)[0] == 200
    status, _, page = server.request("GET", f"/tasks/{secret_task}", headers=BASIC)
    assert status == 200 and b"Merger plans" in page
    # The task page's own script calls the API and the stream with the same (browser-cached) credentials
    assert server.request("GET", f"/api/tasks/{secret_task}", headers=BASIC)[0] == 200


def test_programs_use_the_api_with_a_bearer_token(server, secret_task):
    status, _, body = server.request("GET", "/api/tasks", headers=BEARER)
    assert status == 200 and json.loads(body)["tasks"][0]["id"] == secret_task
    assert server.request("POST", f"/api/tasks/{secret_task}/cancel", {}, BEARER)[0] == 202


def test_healthz_stays_open_for_load_balancers(server, redis_conn):
    assert server.request("GET", "/healthz")[0] == 200


def test_metrics_take_the_metrics_token_or_the_admin_credentials(server, redis_conn):
    assert server.request("GET", "/metrics")[0] == 401
    assert server.request("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})[0] == 200
    assert server.request("GET", "/metrics", headers=BASIC)[0] == 200
    assert server.request("GET", "/metrics", headers=BEARER)[0] == 200


def test_the_dashboard_takes_the_same_credentials_so_nobody_is_asked_twice(server, redis_conn):
    # Its own check (app/dashboard.py) guards /rq; ours stands aside there.
    assert server.request("GET", "/rq/", headers=BASIC)[0] == 200
    assert server.request("GET", "/rq/")[0] == 401


def test_metrics_can_be_opened_to_a_private_network_scraper(make_app, redis_url, redis_conn):
    app = make_app(redis_url, **PRODUCTION_SETTINGS, METRICS_PUBLIC=True)
    client = app.test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/api/tasks").status_code == 401


def test_separate_page_credentials_replace_the_dashboards_for_the_pages(make_app, redis_url, redis_conn):
    app = make_app(redis_url, **PRODUCTION_SETTINGS, APP_USERNAME="user", APP_PASSWORD="another password")
    client = app.test_client()
    assert client.get("/", headers=basic("user", "another password")).status_code == 200
    assert client.get("/", headers=BASIC).status_code == 401
    assert client.get("/rq/", headers=BASIC).status_code == 200


def test_unknown_urls_answer_404_without_asking_for_credentials(make_app, redis_url, redis_conn):
    client = make_app(redis_url, **PRODUCTION_SETTINGS).test_client()
    assert client.get("/no-such-page").status_code == 404


def test_development_needs_no_credentials(client):
    assert client.get("/").status_code == 200
    assert client.get("/api/tasks").status_code == 200
    assert client.get("/metrics").status_code == 200

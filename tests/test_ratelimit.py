"""Submits are bounded: per client (API token, else address) and by the queue's length, with 429 + Retry-After.

The attack (issue 12, item 11): one client submitted 232 tasks/s of 100 kB emails, each kept in
Redis for a day. Reproduced against real gunicorn with the production configuration and a real Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from tests.support_gunicorn import API_TOKEN, BASIC, BEARER, PRODUCTION_SETTINGS, Gunicorn, serve

OTHER_TOKEN = "other-token-0123456789abcdef"
#: Small enough to reach in a test, long enough that six quick submits fall in one window.
RATE, PERIOD = 5, 4
EMAIL = {"to": "ada@example.com", "subject": "Hello", "body": "x" * 100_000}


@pytest.fixture(scope="module")
def server(redis_server, tmp_path_factory) -> Iterator[Gunicorn]:
    with serve(redis_server.url, tmp_path_factory.mktemp("ratelimit"), SUBMIT_RATE_LIMIT=f"{RATE}/{PERIOD}s",
               API_TOKENS=f"{API_TOKEN},{OTHER_TOKEN}") as running:
        yield running


def submit(server: Gunicorn, headers: dict[str, str], source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    return server.request("POST", "/api/tasks/email", EMAIL, headers, source=source)


def test_a_client_flooding_submits_gets_429_with_retry_after_and_only_its_allowance_is_queued(server, redis_conn):
    # When one client submits 100 large emails as fast as it can
    answers = [submit(server, BEARER) for _ in range(100)]
    # Then only its allowance is accepted; the rest are refused with 429, a JSON reason and Retry-After
    assert [status for status, _, _ in answers].count(202) == RATE
    refused = [(headers, json.loads(body)) for status, headers, body in answers if status == 429]
    assert len(refused) == 100 - RATE
    assert all(1 <= int(headers["Retry-After"]) <= PERIOD for headers, _ in refused)
    assert all(body["error"].startswith("Too many submits") and body["retry_after"] >= 1 for _, body in refused)
    # And nothing was queued beyond it
    assert redis_conn.llen("rq:queue:default") == RATE


def test_each_api_token_has_its_own_allowance(server, redis_conn):
    for _ in range(RATE + 1):
        submit(server, BEARER)
    assert submit(server, BEARER)[0] == 429
    assert submit(server, {"Authorization": f"Bearer {OTHER_TOKEN}"})[0] == 202


def test_each_address_has_its_own_allowance(server, redis_conn):
    for _ in range(RATE + 1):
        submit(server, BASIC, source="127.0.0.1")
    assert submit(server, BASIC, source="127.0.0.1")[0] == 429
    assert submit(server, BASIC, source="127.0.0.2")[0] == 202


def test_the_allowance_comes_back_once_the_window_has_passed(server, redis_conn):
    for _ in range(RATE):
        assert submit(server, BEARER)[0] == 202
    status, headers, _ = submit(server, BEARER)
    assert status == 429
    time.sleep(int(headers["Retry-After"]) + 0.2)
    assert submit(server, BEARER)[0] == 202


def test_reading_tasks_is_not_limited(server, redis_conn):
    for _ in range(RATE + 1):
        submit(server, BEARER)
    assert all(server.request("GET", "/api/tasks", headers=BEARER)[0] == 200 for _ in range(RATE * 2))


def test_the_counters_expire_with_their_window(server, redis_conn):
    submit(server, BEARER)
    keys = redis_conn.keys("web:ratelimit:*")
    assert len(keys) == 1 and 0 < redis_conn.ttl(keys[0]) <= PERIOD
    assert API_TOKEN.encode() not in keys[0]  # the token itself never lands in Redis


def test_the_form_comes_back_with_the_reason_and_what_was_typed(make_app, redis_url, redis_conn):
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, SUBMIT_RATE_LIMIT="2/m").test_client()
    for _ in range(2):
        assert client.post("/tasks/long-running", data={"duration": "7"}).status_code == 303
    response = client.post("/tasks/long-running", data={"duration": "7"})
    assert response.status_code == 429 and 1 <= int(response.headers["Retry-After"]) <= 60
    page = response.get_data(as_text=True)
    assert 'id="notice"' in page and "Too many submits" in page
    assert 'value="7"' in page
    assert redis_conn.llen("rq:queue:default") == 2


def test_a_full_queue_refuses_new_tasks_from_anyone(make_app, redis_url, redis_conn):
    client = make_app(redis_url, MAX_QUEUED_TASKS=3).test_client()
    for _ in range(3):
        assert client.post("/api/tasks/long-running", json={"duration": 1}).status_code == 202
    response = client.post("/api/tasks/long-running", json={"duration": 1},
                           environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert "already waiting" in response.json["error"]
    redis_conn.delete("rq:queue:default")  # a worker took them
    assert client.post("/api/tasks/long-running", json={"duration": 1}).status_code == 202


def test_a_forged_forwarded_for_does_not_buy_a_new_allowance(make_app, redis_url, redis_conn):
    client = make_app(redis_url, SUBMIT_RATE_LIMIT="1/m").test_client()
    assert client.post("/api/tasks/ping", json={"token": "a:1"}).status_code == 202
    forged = {"X-Forwarded-For": "203.0.113.7"}
    assert client.post("/api/tasks/ping", json={"token": "a:2"}, headers=forged).status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_allowance(make_app, redis_url, redis_conn):
    client = make_app(redis_url, SUBMIT_RATE_LIMIT="1/m", PROXY_COUNT=1).test_client()
    first, second = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    assert client.post("/api/tasks/ping", json={"token": "a:1"}, headers=first).status_code == 202
    assert client.post("/api/tasks/ping", json={"token": "a:2"}, headers=first).status_code == 429
    assert client.post("/api/tasks/ping", json={"token": "a:3"}, headers=second).status_code == 202


def test_production_settings_include_a_rate_limit_by_default(make_app, redis_url, redis_conn):
    app = make_app(redis_url, **PRODUCTION_SETTINGS)
    assert (app.config["SUBMIT_RATE_LIMIT"], app.config["MAX_QUEUED_TASKS"]) == ("60/m", 10_000)


def _cancelled(client, count: int) -> list[str]:
    """``count`` long-running tasks sent and cancelled at once: waiting in no queue, ready to retry."""
    ids = []
    for _ in range(count):  # each cancelled before the next is sent, so the queue never holds more than one
        ids.append(client.post("/api/tasks/long-running", json={"duration": 5}).json["id"])
        assert client.post(f"/api/tasks/{ids[-1]}/cancel", json={}).status_code == 202
    return ids


def test_retry_with_edits_counts_as_a_submit(make_app, redis_url, redis_conn):
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, SUBMIT_RATE_LIMIT="2/m").test_client()
    first, _ = _cancelled(client, 2)  # the allowance is used up by these two
    response = client.post(f"/tasks/{first}/retry-edited", data={"arguments": '{"duration": 5}'})
    assert response.status_code == 429 and int(response.headers["Retry-After"]) > 0
    assert redis_conn.llen("rq:queue:default") == 0


def test_a_bulk_retry_stops_at_the_rate_limit_and_says_what_it_did(make_app, redis_url, redis_conn):
    # Given four cancelled tasks and an allowance of six submits, four of them spent sending those
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, SUBMIT_RATE_LIMIT="6/m").test_client()
    _cancelled(client, 4)
    # When all of them are retried at once
    response = client.post("/tasks/bulk/retry", data={"state": "REVOKED"}, follow_redirects=True)
    # Then two are retried and the other two are skipped because the limit was reached
    page = " ".join(response.get_data(as_text=True).split())
    assert response.status_code == 200
    assert "Retried 2, 2 skipped: submit rate limit reached (×2)." in page
    assert redis_conn.llen("rq:queue:default") == 2


def test_a_bulk_retry_stops_when_the_queue_is_full(make_app, redis_url, redis_conn):
    # Given three cancelled tasks and a queue bound of two
    client = make_app(redis_url, WTF_CSRF_ENABLED=False, MAX_QUEUED_TASKS=2).test_client()
    _cancelled(client, 3)
    # When all of them are retried
    response = client.post("/tasks/bulk/retry", data={"state": "REVOKED"}, follow_redirects=True)
    # Then two are sent and the third is skipped: the queue is full
    page = " ".join(response.get_data(as_text=True).split())
    assert "Retried 2, 1 skipped: queue full." in page
    assert redis_conn.llen("rq:queue:default") == 2

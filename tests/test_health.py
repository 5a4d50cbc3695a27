"""/healthz, and every page answering 503 (never 500, never a hang) while Redis is down, then recovering."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

#: "A few seconds": the longest any request may take while Redis is unreachable.
MAX_OUTAGE_ANSWER_SECONDS = 5.0

#: (method, path, json body) of every page and API call there is so far.
ROUTES = [
    ("GET", "/", None),
    ("POST", "/tasks/long-running", None),
    ("GET", "/tasks/0a1b2c", None),
    ("GET", "/api/tasks/0a1b2c", None),
    ("POST", "/api/tasks/long-running", {"duration": 1}),
    ("POST", "/tasks/email", None),
    ("POST", "/api/tasks/email", {"to": "ada@example.com", "subject": "Hi", "body": "Hello"}),
    ("GET", "/tasks", None),
    ("GET", "/api/tasks", None),
    ("GET", "/api/tasks/0a1b2c/events", None),
    ("POST", "/api/tasks/0a1b2c/cancel", {}),
    ("POST", "/api/tasks/0a1b2c/retry", {}),
    ("POST", "/tasks/0a1b2c/cancel", None),
    ("POST", "/tasks/0a1b2c/retry", None),
    ("GET", "/rq/", None),
    ("GET", "/rq/0/view/workers", None),
    ("GET", "/rq/0/data/queues.json", None),
    ("GET", "/rq/0/data/workers.json", None),
]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.fixture
def faulty(own_redis_server, make_app):
    """An app on a Redis server of its own, which the test may stop and restart."""
    app = make_app(own_redis_server.url, WTF_CSRF_ENABLED=False)
    return own_redis_server, app.test_client()


def test_healthz_reports_redis_and_the_number_of_workers(client):
    # Given a running Redis and no worker
    # When /healthz is probed
    response = client.get("/healthz")
    # Then it answers 200 with what it checked
    assert response.status_code == 200
    assert response.json["redis"]["ok"] is True
    assert response.json["redis"]["latency_ms"] >= 0
    assert response.json["workers"] == 0


def test_healthz_counts_registered_workers(app, client, redis_conn):
    # Given a worker registered in Redis, as a running rq worker is
    from rq import Worker

    worker = Worker(["default"], connection=redis_conn)
    worker.register_birth()
    try:
        # Then /healthz counts it
        assert client.get("/healthz").json["workers"] == 1
    finally:
        worker.register_death()


def test_healthz_answers_503_when_redis_is_down(faulty):
    server, client = faulty
    # Given Redis stopped
    server.stop()
    # When /healthz is probed
    response, elapsed = timed(lambda: client.get("/healthz"))
    # Then it answers 503 quickly, saying why
    assert response.status_code == 503
    assert response.json["redis"]["ok"] is False
    assert "Connection" in response.json["redis"]["error"]
    assert response.json["workers"] is None
    assert elapsed < MAX_OUTAGE_ANSWER_SECONDS


def test_every_page_and_api_call_answers_503_with_a_clear_message_while_redis_is_down(faulty):
    server, client = faulty
    # Given Redis stopped
    server.stop()
    for method, path, body in ROUTES:
        # When any page or API call is requested
        response, elapsed = timed(lambda m=method, p=path, b=body: client.open(p, method=m, json=b))
        # Then it answers 503, quickly, in the caller's format
        assert response.status_code == 503, (method, path, response.data[:200])
        assert elapsed < MAX_OUTAGE_ANSWER_SECONDS, (method, path, elapsed)
        assert response.headers["Retry-After"]
        if path.startswith("/api/"):
            assert "Redis is unreachable" in response.json["error"]
        else:
            assert response.mimetype == "text/html"
            assert b"Redis is unreachable" in response.data


def test_the_app_recovers_by_itself_when_redis_comes_back(faulty):
    server, client = faulty
    # Given an app that has already talked to Redis, then lost it
    assert client.get("/healthz").status_code == 200
    server.stop()
    assert client.get("/api/tasks/abc").status_code == 503
    # When Redis comes back on the same port
    server.start()
    # Then every route answers normally again, without restarting the app
    assert wait_for(lambda: client.get("/healthz").status_code == 200)
    for method, path, body in ROUTES:
        assert client.open(path, method=method, json=body).status_code < 500, (method, path)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers, like a Redis behind a dead network path."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_a_redis_that_never_answers_gives_503_after_the_socket_timeout_not_a_hang(make_app, silent_server):
    # Given an app whose Redis accepts connections but never replies
    client = make_app(f"redis://127.0.0.1:{silent_server}/0", REDIS_SOCKET_TIMEOUT=0.25).test_client()
    for path in ("/healthz", "/api/tasks/abc", "/"):
        # When a page is requested
        response, elapsed = timed(lambda p=path: client.get(p))
        # Then it answers 503 after the timeout (plus one retry), not after a hang
        assert response.status_code == 503, path
        assert elapsed < MAX_OUTAGE_ANSWER_SECONDS, (path, elapsed)


def test_the_default_socket_timeout_keeps_a_silent_redis_within_a_few_seconds(make_app, silent_server):
    # Given the default REDIS_SOCKET_TIMEOUT and a Redis that never replies
    client = make_app(f"redis://127.0.0.1:{silent_server}/0").test_client()
    # When /healthz is probed, Then the probe fails within a few seconds
    response, elapsed = timed(lambda: client.get("/healthz"))
    assert (response.status_code, elapsed < MAX_OUTAGE_ANSWER_SECONDS) == (503, True), elapsed


def test_healthz_is_degraded_when_tasks_wait_while_connected_workers_take_none(client, app, redis_conn):
    from datetime import datetime, timedelta, timezone

    from rq import Worker

    from app.celery_compat.stats import STATS_KEY
    from app.tasks.long_running import long_running

    # Given a worker that is registered (connected) but takes nothing
    idle = Worker(["default"], connection=redis_conn, name="stuck-worker")
    idle.register_birth()
    # and a task that has waited ten minutes, while the last dequeue was as long ago
    result = long_running.delay(1)
    long_ago = datetime.now(timezone.utc) - timedelta(minutes=10)
    redis_conn.hset(f"rq:job:{result.id}", "enqueued_at", long_ago.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    redis_conn.hset(STATS_KEY, "last_dequeued_at", long_ago.timestamp())
    # Then /healthz says degraded (still 200: Redis and the web app work), and pages show a banner
    response = client.get("/healthz")
    assert (response.status_code, response.json["status"]) == (200, "degraded")
    assert response.json["queues"]["waiting"] == 1 and response.json["queues"]["stuck"] is True
    assert "may be stuck" in client.get("/").get_data(as_text=True)
    # And once a worker takes tasks again, it is ok
    redis_conn.hset(STATS_KEY, "last_dequeued_at", datetime.now(timezone.utc).timestamp())
    assert client.get("/healthz").json["status"] == "ok"


def test_a_busy_queue_with_fresh_tasks_is_ok(client, redis_conn):
    from app.tasks.long_running import long_running

    long_running.delay(1)
    response = client.get("/healthz")
    assert (response.json["status"], response.json["queues"]["stuck"]) == ("ok", False)

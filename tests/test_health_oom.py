"""Redis out of memory at the web: submits answer 503 with the reason, /healthz says so; only live workers count."""

from __future__ import annotations

import pytest
import redis
from rq import Worker


def fill_memory(connection: redis.Redis) -> None:
    """One big key, then maxmemory below the memory in use: every write is refused from now on."""
    before = int(connection.info("memory")["used_memory"])
    connection.set("ballast", b"x" * (4 * 1024 * 1024))
    connection.config_set("maxmemory-policy", "noeviction")
    connection.config_set("maxmemory", before + 2 * 1024 * 1024)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        connection.set("probe", "1")


@pytest.fixture
def oom_client(make_app, own_redis_server):
    """The web app on a Redis of its own that is out of memory (freed again at teardown)."""
    connection = own_redis_server.client()
    fill_memory(connection)
    yield make_app(own_redis_server.url, WTF_CSRF_ENABLED=False).test_client()
    connection.delete("ballast")
    connection.config_set("maxmemory", 0)


def test_a_submit_while_redis_is_out_of_memory_answers_503_with_the_reason(oom_client):
    # When a task is submitted through the API while Redis refuses writes
    response = oom_client.post("/api/tasks/long-running", json={"duration": 1})
    # Then the answer is 503 (not a 500), with the reason and when to retry
    assert response.status_code == 503
    assert "out of memory" in response.json["error"]
    assert int(response.headers["Retry-After"]) > 0


def test_a_form_submit_while_redis_is_out_of_memory_shows_the_reason(oom_client):
    response = oom_client.post("/tasks/long-running", data={"duration": 1})
    assert response.status_code == 503
    assert b"out of memory" in response.data
    assert "Retry-After" in response.headers


def test_healthz_is_degraded_while_redis_is_out_of_memory(oom_client):
    response = oom_client.get("/healthz")
    assert (response.status_code, response.json["status"]) == (200, "degraded")
    assert response.json["reason"].startswith("Redis out of memory")


def test_healthz_is_ok_with_memory_to_spare(client):
    response = client.get("/healthz")
    assert (response.json["status"], response.json["reason"]) == ("ok", None)


def test_healthz_counts_only_live_workers(client, redis_conn):
    # Given two registered workers, one of which died without a word (kill -9: its key expired)
    alive = Worker(["default"], connection=redis_conn, name="alive")
    dead = Worker(["default"], connection=redis_conn, name="dead")
    alive.register_birth()
    dead.register_birth()
    redis_conn.delete(dead.key)  # what the expiry of a worker that stopped beating leaves
    # Then /healthz counts the live one only (RQ's own count still says 2)
    assert Worker.count(connection=redis_conn) == 2
    assert client.get("/healthz").json["workers"] == 1

"""The app's Redis client: one per app, with short timeouts, and a health probe."""

from __future__ import annotations

import time
from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.celery_compat.redaction import redact_url

EXTENSION = "redis"

#: What an unreachable Redis raises. The app answers 503 for these instead of 500.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def client_options(socket_timeout: float) -> dict[str, Any]:
    """Keyword arguments for a Redis client that fails fast while the server is down.

    redis-py's default retries ten times with exponential backoff, so one call to a stopped
    server takes about 4 s, and one to a server that never answers takes a minute. A single
    immediate retry is enough to replace a connection that went stale when the server restarted,
    which is how the app recovers on its own without a spurious 503; against a silent server it
    costs about four socket timeouts (the handshake and the command, each tried twice).
    """
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": Retry(NoBackoff(), 1),
        # Connections idle this long are pinged before use, so a restart is noticed early.
        "health_check_interval": 30,
    }


def init_app(app: Flask) -> None:
    """Create the app's client from ``REDIS_URL``. Nothing connects until the first command."""
    options = client_options(float(app.config["REDIS_SOCKET_TIMEOUT"]))
    if app.config.get("REDIS_SENTINELS"):
        from app.celery_compat.app import sentinel_master
        from app.config import broker_url

        options["master_name"] = app.config["REDIS_SENTINEL_MASTER"]
        app.extensions[EXTENSION] = sentinel_master(broker_url(app.config), options)
        return
    app.extensions[EXTENSION] = redis.Redis.from_url(app.config["REDIS_URL"], **options)


def get_redis(app: Flask | None = None) -> redis.Redis:
    """Return the client of ``app``, or of the current app when called inside a request or app context."""
    return (app or current_app).extensions[EXTENSION]


def health(conn: redis.Redis) -> dict[str, Any]:
    """Ping Redis and return ``{"ok": bool, "latency_ms": float | None, "error": str | None}``. Never raises."""
    started = time.perf_counter()
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:  # a health probe reports failures, it does not raise them
        return {"ok": False, "latency_ms": None, "error": redact_url(f"{type(exc).__name__}: {exc}")}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), "error": None}

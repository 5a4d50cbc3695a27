"""Bounds on submits, so nobody can fill Redis with tasks: a rate per client and a queue length for all.

Every task stays in Redis for a day (``result_expires``), so an unbounded submit loop grows memory
without limit. Two bounds, both checked in Redis so that every web process shares them:

* ``SUBMIT_RATE_LIMIT`` ("60/m"): per client, a fixed window counted with one atomic
  SET NX EX + INCR. A client is its API token when it sent one (so a script behind a shared
  address has its own allowance), else its address (see ``PROXY_COUNT`` behind a proxy).
* ``MAX_QUEUED_TASKS``: no new task while this many wait in the queue, whoever sends them.

Either answers 429 with ``Retry-After``: JSON under /api, the form again with the message on pages.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, render_template, request
from rq import Queue

from app.mail.ratelimit import RateLimit
from app.redis import get_redis

KEY_PREFIX = "web:ratelimit:"

#: Every endpoint that creates a task (Retry creates a copy).
SUBMIT_ENDPOINTS = frozenset({
    "api.submit_long_running", "api.submit_email", "api.submit_ping", "api.retry",
    "pages.submit_long_running", "pages.submit_email", "pages.retry", "pages.retry_edited",
})
# A bulk retry (bulk.act) creates up to a batch of tasks: app.web.bulk calls admit() before each one.

#: Seconds to suggest while the queue is full: about how long a worker takes to make room.
QUEUE_FULL_RETRY_AFTER = 30


#: The short reasons a bulk action gives for the tasks it did not send once a bound was reached.
RATE_REACHED = "submit rate limit reached"
QUEUE_FULL = "queue full"


class RateLimited(Exception):
    """Raised when a submit goes over a bound; ``retry_after`` says in how many seconds to try again.

    ``reason`` is :data:`RATE_REACHED` or :data:`QUEUE_FULL`, for a summary that counts skipped tasks.
    """

    def __init__(self, message: str, retry_after: int, reason: str = RATE_REACHED) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.reason = reason


def client_key() -> str:
    """Who the rate limit counts: the API token's digest when one was accepted, else the address."""
    identity = getattr(g, "identity", None)
    if identity and identity.startswith("token:"):
        return identity
    return f"addr:{request.remote_addr}"


def take(conn: Any, client: str, limit: RateLimit) -> int:
    """Count one submit of ``client``; return 0 if allowed, else the seconds until its window ends."""
    key = f"{KEY_PREFIX}{client}"
    with conn.pipeline(transaction=True) as pipe:
        pipe.set(key, 0, ex=math.ceil(limit.period), nx=True)  # the first submit opens the window
        pipe.incr(key)
        pipe.ttl(key)
        _, count, ttl = pipe.execute()
    return 0 if count <= limit.count else max(1, ttl)


def check_submit() -> None:
    """Raise :class:`RateLimited` if the current request may not create a task now."""
    if request.endpoint not in SUBMIT_ENDPOINTS or request.method != "POST":
        return
    admit()


def admit() -> None:
    """Count one task the current request creates; raise :class:`RateLimited` if a bound forbids it."""
    config = current_app.config
    conn = get_redis()
    rate = config.get("SUBMIT_RATE_LIMIT")
    if rate and rate != "off":
        limit = RateLimit.parse(rate)
        wait = take(conn, client_key(), limit)
        if wait:
            raise RateLimited(f"Too many submits: at most {limit.count} per {limit.period:g} s. "
                              f"Try again in {wait} s.", wait)
    bound = int(config.get("MAX_QUEUED_TASKS") or 0)
    if bound and _waiting(conn, config["QUEUE"]) >= bound:
        raise RateLimited(f"{bound} tasks are already waiting. Try again in a minute.", QUEUE_FULL_RETRY_AFTER,
                          QUEUE_FULL)


def _waiting(conn: Any, queue: str) -> int:
    """Tasks waiting in ``queue``, of every priority (each priority step is a list of its own)."""
    with conn.pipeline(transaction=False) as pipe:
        for list_name in current_app.extensions["celery"].amqp.priorities.lists(queue):
            pipe.llen(Queue.redis_queue_namespace_prefix + list_name)
        return sum(pipe.execute())


def rate_limited(exc: RateLimited) -> tuple[Response | str, int, dict[str, str]]:
    """429 with Retry-After: JSON under /api, the error page elsewhere (the forms have their own handler)."""
    headers = {"Retry-After": str(exc.retry_after), "Cache-Control": "no-store"}
    if request.path.startswith("/api/"):
        return jsonify(error=str(exc), retry_after=exc.retry_after), 429, headers
    return render_template("error.html", title="Too many requests", message=str(exc)), 429, headers


def init_app(app: Flask) -> None:
    """Check the bounds before every submit; call after :func:`app.web.auth.init_app` (it names the client)."""
    app.before_request(check_submit)
    app.register_error_handler(RateLimited, rate_limited)

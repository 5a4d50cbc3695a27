"""rq-dashboard mounted at /rq, reading JSON-serialized jobs, behind basic auth outside development.

The recipe and the reasons for each patch are in dependencies.md, sections 2 and 5.
"""

from __future__ import annotations

import hmac
from typing import Any

import rq_dashboard
import rq_dashboard.web
from flask import Flask, Response, current_app, request
from rq import Worker
from rq.serializers import JSONSerializer

from app.config import DEVELOPMENT
from app.redis import get_redis

URL_PREFIX = "/rq"
BLUEPRINT = "rq_dashboard"


class JSONWorker(Worker):
    """An rq ``Worker`` whose ``all()`` reads jobs with the JSON serializer unless told otherwise.

    rq-dashboard calls ``Worker.all()`` without a serializer, so a busy worker's current job is
    unpickled and workers.json answers 500 while any JSON job runs.
    """

    @classmethod
    def all(cls, *args: Any, **kwargs: Any) -> list[Worker]:
        kwargs.setdefault("serializer", JSONSerializer)
        return super().all(*args, **kwargs)


def _app_client(url: str, sentinel_options: Any = None, client_options: Any = None) -> tuple[None, Any]:
    # rq-dashboard builds a fresh client from the URL on every request, with redis-py's defaults:
    # no socket timeout and ten retries, so a Redis outage would hang /rq for seconds. Handing it
    # the app's own client (the URL is the same REDIS_URL) keeps one pool and the short timeouts.
    return None, get_redis(current_app)


def init_app(app: Flask) -> None:
    """Mount the dashboard on ``app`` at /rq and protect it when the app is not in development."""
    # Both are process-wide module globals in rq-dashboard; setting them again is harmless.
    rq_dashboard.web.config.serializer = JSONSerializer
    rq_dashboard.web.Worker = JSONWorker
    rq_dashboard.web.from_url = _app_client

    app.config.from_object(rq_dashboard.default_settings)
    # Set explicitly: otherwise rq-dashboard copies the legacy REDIS_URL key with a warning.
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    # Likewise for our REDIS_SENTINELS; the dashboard uses the app's client (Sentinel or not) anyway.
    app.config["RQ_DASHBOARD_REDIS_SENTINELS"] = app.config.get("REDIS_SENTINELS")
    with app.app_context():
        # Must run after the URL is set; it raises "No Redis configuration!" otherwise.
        rq_dashboard.web.setup_rq_connection(app)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    # App-level, not blueprint-level: the blueprint is a module global shared by every app in the
    # process, and Flask 3 forbids adding hooks to it once it has been registered.
    app.before_request(_require_basic_auth)


def _require_basic_auth() -> Response | None:
    if request.blueprint != BLUEPRINT or current_app.config["APP_ENV"] == DEVELOPMENT:
        return None
    auth = request.authorization
    expected = (current_app.config["DASHBOARD_USERNAME"], current_app.config["DASHBOARD_PASSWORD"])
    if auth is not None and auth.type == "basic" and expected[0] and expected[1]:
        # Compare both fields, always, in constant time: no early exit that leaks which one was wrong.
        user_ok = hmac.compare_digest((auth.username or "").encode(), expected[0].encode())
        password_ok = hmac.compare_digest((auth.password or "").encode(), expected[1].encode())
        if user_ok and password_ok:
            return None
    return Response(
        "Authentication required for the dashboard.\n",
        status=401,
        mimetype="text/plain",
        headers={"WWW-Authenticate": 'Basic realm="rq-dashboard", charset="UTF-8"'},
    )

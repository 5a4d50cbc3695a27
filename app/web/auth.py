"""Who may use the app outside development: HTTP basic auth for people, bearer tokens for programs.

One app-level ``before_request`` hook guards every endpoint but ``/healthz``, the static files and
the dashboard (which checks its own credentials in :mod:`app.dashboard`, so nobody is asked twice).
People use the pages with ``APP_USERNAME``/``APP_PASSWORD`` (the dashboard's by default); the
browser then sends them with the task page's own requests to the API and its event stream too.
Programs send ``Authorization: Bearer <token>`` with one of ``API_TOKENS``. ``/metrics`` also takes
``METRICS_TOKEN``, or nothing at all when ``METRICS_PUBLIC`` is set.

Basic auth is ambient, like a cookie, so the forms keep their CSRF tokens, and API POSTs stay
limited to ``application/json`` bodies (see :mod:`app.web.api`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from flask import Flask, Response, current_app, g, jsonify, request

from app.config import DEVELOPMENT, page_credentials

REALM = "Background jobs"

#: Endpoints anyone may call: the load balancer's probe, and the stylesheet and script (public code).
OPEN_ENDPOINTS = frozenset({"health.healthz", "static"})
#: The dashboard's blueprint guards itself (app/dashboard.py).
SELF_GUARDED_BLUEPRINTS = frozenset({"rq_dashboard"})
METRICS_ENDPOINT = "metrics.metrics"


def _same(given: str, expected: str) -> bool:
    # Digests first, so the comparison takes as long whatever the lengths: compare_digest alone
    # would still tell an attacker how long the secret is.
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def _any_same(given: str, candidates: Iterable[str]) -> bool:
    # No early exit: every candidate is compared, so the time does not say which one matched.
    found = False
    for candidate in candidates:
        found |= _same(given, candidate)
    return found


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def identify() -> str | None:
    """The caller's identity if its credentials are valid ("user:<name>", "token:<id>"), else None.

    A token is identified by a digest, never by itself, so the identity may appear in Redis keys.
    """
    config = current_app.config
    token = _bearer_token()
    if token is not None:
        valid = tuple(config["API_TOKENS"])
        if endpoint_is_metrics() and config.get("METRICS_TOKEN"):
            valid += (config["METRICS_TOKEN"],)
        return f"token:{hashlib.sha256(token.encode()).hexdigest()[:16]}" if _any_same(token, valid) else None
    auth = request.authorization
    expected = page_credentials(config)
    if auth is None or auth.type != "basic" or expected is None:
        return None
    # Both fields compared, always: no early exit that tells which one was wrong.
    user_ok = _same(auth.username or "", expected[0])
    password_ok = _same(auth.password or "", expected[1])
    return f"user:{expected[0]}" if user_ok and password_ok else None


def endpoint_is_metrics() -> bool:
    return request.endpoint == METRICS_ENDPOINT


def _needs_credentials() -> bool:
    if current_app.config["APP_ENV"] == DEVELOPMENT:
        return False
    # No endpoint: the router found nothing (404, 405) and no view will run, so there is nothing to guard.
    if request.endpoint is None or request.endpoint in OPEN_ENDPOINTS or request.blueprint in SELF_GUARDED_BLUEPRINTS:
        return False
    return not (endpoint_is_metrics() and current_app.config.get("METRICS_PUBLIC"))


def require_credentials() -> Response | None:
    """Answer 401 unless the request may pass; note who called in ``g.identity`` for the rate limit."""
    g.identity = None
    if not _needs_credentials():
        return None
    g.identity = identify()
    return None if g.identity is not None else _challenge()


def _challenge() -> Response:
    if request.path.startswith("/api/") or endpoint_is_metrics():
        response = jsonify(error="authentication required: HTTP basic auth, or Authorization: Bearer <token>")
    else:
        response = Response("Authentication required.\n", mimetype="text/plain")
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    response.headers.add("WWW-Authenticate", f'Bearer realm="{REALM}"')
    response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    """Guard ``app``; call before :func:`app.web.errors.init_app`, so that a 401 needs no Redis."""
    app.before_request(require_credentials)

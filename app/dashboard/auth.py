"""Basic auth in front of everything under /rq when the app is not in development."""

from __future__ import annotations

import hmac

from flask import Response, current_app, request

from app.config import DEVELOPMENT


def under_prefix(prefix: str) -> bool:
    """Is this request for ``prefix`` or anything below it (the dashboard's pages, data, static files)?"""
    return request.path == prefix or request.path.startswith(prefix + "/")


def require_basic_auth(prefix: str) -> Response | None:
    """None when the request may go on; a 401 asking for the configured credentials otherwise."""
    if not under_prefix(prefix) or current_app.config["APP_ENV"] == DEVELOPMENT:
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

"""Response headers that tell the browser what our pages may do, and the session cookie's flags.

The pages load scripts and styles only from ``/static`` (no inline script, no inline style), so the
Content-Security-Policy can forbid everything else: an injected ``<script>`` or ``onerror=`` would
not run even if some value ever escaped unescaped. Framing is refused twice (CSP
``frame-ancestors`` for current browsers, ``X-Frame-Options`` for old ones) against clickjacking of
the Cancel and Retry buttons. A policy already on the response is kept: the dashboard at /rq sets
its own, fitted to its pages.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from flask.sessions import SecureCookieSessionInterface

from app.config import PRODUCTION

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Our URLs hold task ids; other sites need not learn them from the Referer.
    "Referrer-Policy": "same-origin",
}


#: HEADERS with their names in lower case, which is how a header already on a response is recognised.
_HEADERS_LOWER = tuple((name.lower(), name, value) for name, value in HEADERS.items())


def add_security_headers(response: Response) -> Response:
    """Set each header unless the response already has one (the dashboard's CSP stays)."""
    # One pass over the response's few headers: Headers.setdefault scanned them twice per header and
    # raised a KeyError for each missing one, a tenth of a small API answer's Flask time (issue 19).
    present = {name.lower() for name, _ in response.headers}
    for lower, name, value in _HEADERS_LOWER:
        if lower not in present:
            response.headers.add(name, value)
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the signing serializer built once per key, not per request.

    Flask builds a new ``URLSafeTimedSerializer`` in every ``open_session``, whether or not the
    request has a cookie: an API call, which never has one, paid for it each time (issue 19). The
    cache is keyed by ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``, so changing either (tests do)
    builds a new one; the serializer keeps no state between calls, so threads may share it.
    """

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], Any] = {}

    def get_signing_serializer(self, app: Flask) -> Any:
        key = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        serializer = self._serializers.get(key)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            self._serializers = {key: serializer}  # the old keys' serializer is of no further use
        return serializer


def init_app(app: Flask) -> None:
    """Add the headers to every response of ``app`` and harden its session cookie."""
    app.session_interface = SessionInterface()
    # Lax: the cookie (which holds the CSRF secret) is not sent with cross-site POSTs at all.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config["APP_ENV"] == PRODUCTION:
        # Production is served over HTTPS (README, Security): the cookie never travels in clear text.
        app.config["SESSION_COOKIE_SECURE"] = True
    app.after_request(add_security_headers)

"""Response headers that tell the browser what our pages may do, and the session cookie's flags.

The pages load scripts and styles only from ``/static`` (no inline script, no inline style), so the
Content-Security-Policy can forbid everything else: an injected ``<script>`` or ``onerror=`` would
not run even if some value ever escaped unescaped. Framing is refused twice (CSP
``frame-ancestors`` for current browsers, ``X-Frame-Options`` for old ones) against clickjacking of
the Cancel and Retry buttons. A policy already on the response is kept: the dashboard at /rq sets
its own, fitted to its pages.
"""

from __future__ import annotations

from flask import Flask, Response

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


def add_security_headers(response: Response) -> Response:
    """Set each header unless the response already has one (setdefault: the dashboard's CSP stays)."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def init_app(app: Flask) -> None:
    """Add the headers to every response of ``app`` and harden its session cookie."""
    # Lax: the cookie (which holds the CSRF secret) is not sent with cross-site POSTs at all.
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config["APP_ENV"] == PRODUCTION:
        # Production is served over HTTPS (README, Security): the cookie never travels in clear text.
        app.config["SESSION_COOKIE_SECURE"] = True
    app.after_request(add_security_headers)

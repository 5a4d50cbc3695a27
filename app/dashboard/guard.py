"""What the dashboard may do in a browser: a strict Content-Security-Policy, and actions by POST only.

The policy allows scripts only when they carry the response's nonce, which rq-dashboard's templates
(overridden in templates/rq_dashboard/) give to their own script tags. Whatever a stored value
smuggles into a page (an ``onerror`` attribute, a ``<script>``) carries none and does not run.

No ``'unsafe-eval'`` either: rq-dashboard's underscore templates, which underscore compiles with
``new Function``, are served precompiled (precompile.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, abort, g, request
from rq.exceptions import InvalidJobOperation, NoSuchJobError

#: rq-dashboard's endpoints that change something in Redis: POST (with the CSRF token) only.
ACTIONS = frozenset({
    "rq_dashboard.delete_job_view",
    "rq_dashboard.requeue_job_view",
    "rq_dashboard.requeue_all",
    "rq_dashboard.empty_queue",
    "rq_dashboard.compact_queue",
})

#: Views that look a job up by the id in the URL, and raise (500) when it is gone.
JOB_VIEWS = ("rq_dashboard.job_view", "rq_dashboard.job_info", "rq_dashboard.requeue_job_view")

_POLICY = (
    "default-src 'none'; "
    "script-src 'nonce-{nonce}'; "
    "style-src 'self'; "
    # Bootstrap's stylesheet draws its select arrows and switches with data: SVGs.
    "img-src 'self' data:; "
    "connect-src 'self'; "
    "font-src 'self'; "
    "base-uri 'none'; "
    "form-action 'self'; "
    "frame-ancestors 'none'"
)


def nonce() -> str:
    """This response's script nonce, made on first use (a template global)."""
    if "rq_dashboard_nonce" not in g:
        g.rq_dashboard_nonce = secrets.token_urlsafe(18)
    return g.rq_dashboard_nonce


def content_security_policy() -> str:
    """The policy for this response, naming its nonce."""
    return _POLICY.format(nonce=nonce())


def set_headers(response: Response) -> Response:
    """Set the dashboard's policy (ours wins over any app-wide one) and the usual companions."""
    response.headers["Content-Security-Policy"] = content_security_policy()
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def refuse_unsafe_methods() -> None:
    """405 for anything but POST on an action: rq-dashboard lets GET requeue every failed job."""
    if request.endpoint in ACTIONS and request.method != "POST":
        abort(405, valid_methods=["POST"])


def job_errors_as_http(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 404 for a job that is gone and 409 for a requeue of a job that has not failed, not 500."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except NoSuchJobError:
            abort(404, description="No job has this id: it may have expired or been deleted.")
        except InvalidJobOperation:
            abort(409, description="Only a failed job can be requeued.")

    return wrapped

"""rq-dashboard at /rq: JSON only, escaped, CSP-guarded, actions by POST with CSRF, basic auth outside development.

rq-dashboard 0.9.0 as shipped would unpickle jobs (json_jobs.py), insert stored values into its
pages as HTML, change state on GET and send its actions without the CSRF token (guard.py and the
templates and static files here, which override its own). The mount recipe and the reasons for the
connection patch are in dependencies.md, sections 2 and 5.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rq_dashboard
import rq_dashboard.web
from flask import Blueprint, Flask, Response, current_app
from flask_wtf.csrf import generate_csrf

from app.dashboard import auth, celery_view, guard, json_jobs
from app.redis import get_redis

URL_PREFIX = "/rq"
BLUEPRINT = "rq_dashboard"

#: The rq-dashboard release our template overrides were copied from; tests fail loudly on another.
PINNED_VERSION = "0.9.0"

#: Our copies of rq-dashboard's templates (searched before its own) and the static files they add.
HERE = Path(__file__).resolve().parent


def _app_client(url: str, sentinel_options: Any = None, client_options: Any = None) -> tuple[None, Any]:
    # rq-dashboard builds a fresh client from the URL on every request, with redis-py's defaults:
    # no socket timeout and ten retries, so a Redis outage would hang /rq for seconds. Handing it
    # the app's own client (the URL is the same REDIS_URL) keeps one pool and the short timeouts.
    return None, get_redis(current_app)


def _overrides() -> Blueprint:
    # A new blueprint per app: Flask 3 refuses changes to a blueprint once it has been registered.
    return Blueprint("rq_dashboard_guard", __name__, template_folder=str(HERE / "templates"),
                     static_folder=str(HERE / "static"), static_url_path="/guard-static")


def init_app(app: Flask) -> None:
    """Mount the dashboard on ``app`` at /rq, guarded as the module docstring says.

    Raises RuntimeError on an rq-dashboard release other than :data:`PINNED_VERSION`: its pages
    would be served half from our reviewed copies and half from unreviewed new files.
    """
    if rq_dashboard.web.rq_dashboard_version != PINNED_VERSION:
        raise RuntimeError(f"app/dashboard overrides rq-dashboard {PINNED_VERSION}'s templates, but "
                           f"{rq_dashboard.web.rq_dashboard_version} is installed: review them, then update the pin")
    # Process-wide module globals in rq-dashboard; setting them again is harmless.
    json_jobs.install(rq_dashboard.web)
    celery_view.install(rq_dashboard.web)
    rq_dashboard.web.from_url = _app_client

    app.config.from_object(rq_dashboard.default_settings)
    # Set explicitly: otherwise rq-dashboard copies the legacy REDIS_URL key with a warning.
    app.config["RQ_DASHBOARD_REDIS_URL"] = app.config["REDIS_URL"]
    # Likewise for our REDIS_SENTINELS; the dashboard uses the app's client (Sentinel or not) anyway.
    app.config["RQ_DASHBOARD_REDIS_SENTINELS"] = app.config.get("REDIS_SENTINELS")
    with app.app_context():
        # Must run after the URL is set; it raises "No Redis configuration!" otherwise.
        rq_dashboard.web.setup_rq_connection(app)
    # Registered first, so that Flask finds our copies of rq-dashboard's templates before its own.
    app.register_blueprint(_overrides(), url_prefix=URL_PREFIX)
    app.register_blueprint(rq_dashboard.blueprint, url_prefix=URL_PREFIX)
    for endpoint in guard.JOB_VIEWS:
        app.view_functions[endpoint] = guard.job_errors_as_http(app.view_functions[endpoint])
    info = app.view_functions[celery_view.JOB_INFO]
    app.view_functions[celery_view.JOB_INFO] = guard.job_errors_as_http(celery_view.complete_job_info(info))
    app.jinja_env.globals.update(rq_dashboard_nonce=guard.nonce, rq_dashboard_csrf_token=generate_csrf)
    # App-level hooks limited to /rq, not blueprint hooks: rq-dashboard's blueprint is a module global
    # shared by every app in the process, and Flask 3 forbids adding hooks to it once registered.
    app.before_request(_require_basic_auth)
    app.before_request(guard.refuse_unsafe_methods)
    app.after_request(_set_headers)


def _require_basic_auth() -> Response | None:
    return auth.require_basic_auth(URL_PREFIX)


def _set_headers(response: Response) -> Response:
    return guard.set_headers(response) if auth.under_prefix(URL_PREFIX) else response

"""The web app: ``create_app`` builds it from configuration, as Flask's tutorial does.

Run it alone with ``flask --app app run``, or in production with ``gunicorn -c gunicorn.conf.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

# Flask and the blueprints are imported inside create_app, not here: every worker imports this
# package (the tasks live in app.tasks), and RQ's forking worker imports a job's module afresh
# in each work horse, so a heavy package import would cost a quarter second per task.


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Create the app: config (defaults < environment < ``test_config``), Redis, Celery, blueprints, /rq.

    Raises :class:`app.config.ConfigError` when the configuration is unsafe, such as production
    without a ``SECRET_KEY``.
    """
    from flask import Flask
    from flask_wtf.csrf import CSRFProtect

    from app import config, dashboard, redis
    from app.web import api, auth, bulk_pages, errors, events, health, metrics, monitor, pages, ratelimit, security

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.from_mapping(config.load(test_config))
    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only as many hops as the operator vouches for: a client could forge any further ones.
        hops = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    redis.init_app(app)
    # Before every other hook: a stranger's request touches neither Redis nor a view.
    auth.init_app(app)
    security.init_app(app)
    ratelimit.init_app(app)
    events.init_app(app)
    csrf = CSRFProtect(app)
    # The JSON API is called by scripts holding no session, so a CSRF token would only get in the way.
    csrf.exempt(api.bp)

    # Imported here, not at the top: app.jobs belongs to the worker side too and may import this
    # package, so a top-level import would be circular.
    from app.jobs import init_celery

    init_celery(app)

    app.url_map.converters["task_id"] = api.TaskIdConverter
    app.register_blueprint(pages.bp)
    app.register_blueprint(bulk_pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(monitor.bp)
    if app.config["APP_ENV"] == config.DEVELOPMENT:
        # The caught mail may hold anything anyone typed; outside development there is no catcher anyway.
        from app.web import mail

        app.register_blueprint(mail.bp)
    dashboard.init_app(app)
    errors.init_app(app)
    return app

"""Every adapter internal the testing helpers use, in one place (the adapter is being restructured).

Everything else in ``contrib`` uses only the adapter's public API.
"""

from __future__ import annotations

from rq.scheduler import RQScheduler as RQScheduler
from rq.serializers import JSONSerializer as JSONSerializer

from app.celery_compat import app as app_module
from app.celery_compat.worker import LeanWorker as LeanWorker


def current_app_state() -> tuple:
    """The adapter's current and default app, to restore after a test."""
    return getattr(app_module._state, "current_app", None), app_module._default_app


def restore_app_state(state: tuple) -> None:
    current, default = state
    app_module._state.current_app = current
    app_module._default_app = default

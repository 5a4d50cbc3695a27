"""Every adapter internal the testing helpers use, in one place.

Everything else in ``contrib`` uses only the adapter's public API.
"""

from __future__ import annotations

from rq.scheduler import RQScheduler as RQScheduler
from rq.serializers import JSONSerializer as JSONSerializer

from ... import _state
from ...worker import LeanWorker as LeanWorker
from ...worker import rq_queues as rq_queues
from ...worker.hosts import WorkersHost as WorkersHost
from ...worker.pidbox import start_control as start_control


def current_app_state() -> tuple:
    """The adapter's current and default app, to restore after a test."""
    return getattr(_state._tls, "current_app", None), _state._default_app


def restore_app_state(state: tuple) -> None:
    current, default = state
    _state._tls.current_app = current
    _state._default_app = default

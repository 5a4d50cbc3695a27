"""Celery apps for tests, as Celery's ``celery.contrib.testing.app``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from typing import Any

from ... import Celery

# Registers celery.ping, as Celery's TestApp does.
from . import tasks  # noqa: F401
from ._adapter import current_app_state, restore_app_state

#: Celery's test defaults, minus its in-memory broker and backend: here both are Redis, so a test
#: app needs ``broker_url`` (and the backend defaults to the broker).
DEFAULT_TEST_CONFIG: dict[str, Any] = {
    "worker_hijack_root_logger": False,
    "worker_log_color": False,
    "accept_content": {"json"},
    "enable_utc": True,
    "timezone": "UTC",
    "broker_heartbeat": 0,
}


class Trap:
    """Pretends to be an app but raises whenever it is used: catches code that relies on current_app."""

    def __getattr__(self, name: str) -> Any:
        if name in ("_is_coroutine", "__func__"):
            return None  # unittest.mock probes these
        raise RuntimeError("Test depends on current_app")


def TestApp(name: str | None = None, config: dict | None = None, enable_logging: bool = False,  # noqa: N802
            set_as_current: bool = False, log: Any = None, backend: str | None = None, broker: str | None = None,
            **kwargs: Any) -> Celery:
    """An app for one test (or session): Celery's test defaults, then ``config``."""
    config = dict(deepcopy(DEFAULT_TEST_CONFIG), **(config or {}))
    if broker is not None:
        config.pop("broker_url", None)
    if backend is not None:
        config.pop("result_backend", None)
    test_app = Celery(name or "celery.tests", set_as_current=set_as_current, broker=broker, backend=backend,
                      **kwargs)
    test_app.conf.update(config)
    return test_app


@contextmanager
def set_trap(app: Celery) -> Iterator[None]:
    """While the block runs, the current and default app are a :class:`Trap`."""
    saved = current_app_state()
    trap = Trap()
    restore_app_state((trap, trap))
    try:
        yield
    finally:
        restore_app_state(saved)


@contextmanager
def setup_default_app(app: Celery, use_trap: bool = False) -> Iterator[None]:
    """Run the block with ``app`` available; restore the previous current and default app afterwards."""
    saved = current_app_state()
    try:
        if use_trap:
            with set_trap(app):
                yield
        else:
            yield
    finally:
        restore_app_state(saved)
        if app is not saved[0]:
            app.close()

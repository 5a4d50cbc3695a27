"""Celery's pytest fixtures for the adapter, as ``celery.contrib.pytest``.

Enable the plugin with ``-p app.celery_compat.contrib.pytest`` (or ``pytest_plugins = [...]`` in a
conftest.py), then write tests as with Celery::

    @pytest.fixture(scope="session")
    def celery_config():
        return {"broker_url": "redis://127.0.0.1:6390/0"}

    def test_add(celery_app, celery_worker):
        @celery_app.task
        def add(x, y):
            return x + y

        celery_worker.reload()  # not needed here: the worker finds tasks by name at run time
        assert add.delay(2, 3).get(timeout=10) == 5

``celery_worker`` (and ``celery_session_worker``) run the adapter's worker in a thread of the test
process (see ``contrib/testing/worker.py``). The broker must be a Redis URL: Celery's default
in-memory test broker has no counterpart here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import import_module
from typing import Any

import pytest

from .testing import worker
from .testing.app import TestApp, setup_default_app

NO_WORKER = os.environ.get("NO_WORKER")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "celery(**overrides): override celery configuration for a test case")


@contextmanager
def _create_app(enable_logging: bool = False, use_trap: bool = False, parameters: Mapping | None = None,
                **config: Any) -> Iterator[Any]:
    """A test app made from the fixtures' parameters and configuration, reset afterwards."""

    test_app = TestApp(set_as_current=False, enable_logging=enable_logging, config=config, **dict(parameters or {}))
    with setup_default_app(test_app, use_trap=use_trap):
        yield test_app


def _config(request: pytest.FixtureRequest, celery_config: Mapping) -> dict:
    mark = request.node.get_closest_marker("celery")
    return dict(celery_config, **mark.kwargs if mark else {})


@pytest.fixture(scope="session")
def use_celery_app_trap() -> bool:
    """Override to return True: then anything that uses the current or default app raises."""
    return False


@pytest.fixture(scope="session")
def celery_session_app(request: pytest.FixtureRequest, celery_config: Mapping, celery_parameters: Mapping,
                       celery_enable_logging: bool, use_celery_app_trap: bool) -> Iterator[Any]:
    """Session fixture: the app for session fixtures."""
    with _create_app(enable_logging=celery_enable_logging, use_trap=use_celery_app_trap,
                     parameters=celery_parameters, **_config(request, celery_config)) as app:
        if not use_celery_app_trap:
            app.set_default()
            app.set_current()
        yield app


def _load_tasks(app: Any, includes: Sequence[str], class_tasks: Sequence = ()) -> None:
    for module in includes:
        import_module(module)
    for class_task in class_tasks:
        app.register_task(class_task)


@pytest.fixture(scope="session")
def celery_session_worker(request: pytest.FixtureRequest, celery_session_app: Any, celery_includes: Sequence[str],
                          celery_class_tasks: Sequence, celery_worker_pool: Any,
                          celery_worker_parameters: Mapping) -> Iterator[Any]:
    """Session fixture: a worker that lives throughout the test session."""

    if NO_WORKER:
        yield None
        return
    _load_tasks(celery_session_app, celery_includes, celery_class_tasks)
    with worker.start_worker(celery_session_app, pool=celery_worker_pool, **celery_worker_parameters) as w:
        yield w


@pytest.fixture(scope="session")
def celery_enable_logging() -> bool:
    """Override to enable logging."""
    return False


@pytest.fixture(scope="session")
def celery_includes() -> Sequence[str]:
    """Override to name modules to import when a worker starts (task modules, signal receivers...)."""
    return ()


@pytest.fixture(scope="session")
def celery_worker_pool() -> Any:
    """Override to set the worker pool; tasks run in the worker's thread whichever it is."""
    return "solo"


@pytest.fixture(scope="session")
def celery_config() -> Mapping[str, Any]:
    """Override to configure the test app (``celery_app``); give at least ``broker_url``."""
    return {}


@pytest.fixture(scope="session")
def celery_parameters() -> Mapping[str, Any]:
    """Override to change the arguments the test app is made with (``Celery(**parameters)``)."""
    return {}


@pytest.fixture(scope="session")
def celery_worker_parameters() -> Mapping[str, Any]:
    """Override to change the test worker's arguments (``queues``, ``concurrency``, ``hostname``, ...)."""
    return {}


@pytest.fixture()
def celery_app(request: pytest.FixtureRequest, celery_config: Mapping, celery_parameters: Mapping,
               celery_enable_logging: bool, use_celery_app_trap: bool) -> Iterator[Any]:
    """A Celery app for this test."""
    with _create_app(enable_logging=celery_enable_logging, use_trap=use_celery_app_trap,
                     parameters=celery_parameters, **_config(request, celery_config)) as app:
        yield app


@pytest.fixture(scope="session")
def celery_class_tasks() -> Sequence:
    """Override to register task classes with the session app."""
    return []


@pytest.fixture()
def celery_worker(request: pytest.FixtureRequest, celery_app: Any, celery_includes: Sequence[str],
                  celery_worker_pool: Any, celery_worker_parameters: Mapping) -> Iterator[Any]:
    """A worker in a thread for this test; it stops when the test returns."""

    if NO_WORKER:
        yield None
        return
    _load_tasks(celery_app, celery_includes)
    with worker.start_worker(celery_app, pool=celery_worker_pool, **celery_worker_parameters) as w:
        yield w


@pytest.fixture()
def depends_on_current_app(celery_app: Any) -> None:
    """Make the test's app the current app."""
    celery_app.set_current()

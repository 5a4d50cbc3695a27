"""Process and thread state, as Celery's ``_state``: the current app, the task registries, the running task.

A leaf: it imports nothing of the package, so every module (client, worker, backend) can read
the current app or the running task's request without an import cycle. The one thing it cannot
do alone, making a default app when none exists, is done by the factory the app module
registers when it is imported (:func:`set_app_factory`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_tls = threading.local()
_default_app: Any = None
_app_factory: Callable[[str], Any] | None = None

#: Every task of every app, by name: the worker finds a task here whichever app defined it.
all_tasks: dict[str, Any] = {}
#: Tasks made with @shared_task, bound to whichever app is current when they are used.
shared_tasks: dict[str, Any] = {}


def set_app_factory(factory: Callable[[str], Any]) -> None:
    """Say how to make the default app (the ``Celery`` class registers itself here)."""
    global _app_factory
    _app_factory = factory


def current_app() -> Any:
    """The app made or set current last in this thread, else the first app made, else a new default."""
    app = getattr(_tls, "current_app", None) or _default_app
    if app is None:
        if _app_factory is None:
            raise RuntimeError("no Celery app: import app.celery_compat first")
        app = _app_factory("default")
    return app


def set_current_app(app: Any) -> None:
    _tls.current_app = app


def set_default_app(app: Any, only_if_unset: bool = False) -> None:
    global _default_app
    if not only_if_unset or _default_app is None:
        _default_app = app


def find_registered(name: str) -> Any:
    """The task of any app, or the shared task, called ``name``; None when nothing registered it."""
    task = all_tasks.get(name)
    return task if task is not None else shared_tasks.get(name)


# -- the task running in this thread ---------------------------------------------------------
def task_stack() -> list[tuple[Any, Context]]:
    """The (task, request) pairs running in this thread, innermost last."""
    return _tls.__dict__.setdefault("task_stack", [])


def current_task() -> Any:
    stack = task_stack()
    return stack[-1][0] if stack else None


def current_task_request() -> Context | None:
    """The request of the task running in this thread, if any."""
    stack = task_stack()
    return stack[-1][1] if stack else None


class Context:
    """``self.request``: who is running this task, with which arguments, on which attempt."""

    id: str | None = None
    args: Any = None
    kwargs: Any = None
    retries: int = 0
    is_eager: bool = False
    called_directly: bool = True
    delivery_info: dict | None = None
    hostname: str | None = None
    eta: Any = None
    expires: Any = None
    timelimit: tuple = (None, None)
    time_limit: float | None = None
    soft_time_limit: float | None = None
    priority: int | None = None
    properties: dict | None = None
    replaced_task_nesting: int = 0
    stamped_headers: list | None = None
    stamps: dict | None = None
    group: str | None = None
    root_id: str | None = None
    parent_id: str | None = None
    origin: str | None = None
    task: str | None = None
    ignore_result: bool | None = False  # None: the task's own ignore_result decides
    callbacks: Any = None
    errbacks: Any = None
    chord: Any = None
    reply_to: str | None = None
    correlation_id: str | None = None
    headers: dict | None = None
    connection: Any = None
    pipeline: Any = None
    chain: list | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args:
            self.__dict__.update(args[0])
        self.__dict__.update(kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"<Context: {self.__dict__!r}>"

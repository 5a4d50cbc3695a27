"""Celery's task and worker signals, with Celery's names and keyword arguments.

``@task_prerun.connect`` (with or without ``sender=``) registers a receiver; the worker
sends each signal at the same point of a task's life as Celery's worker does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)


class Signal:
    """A list of receivers called with ``sender`` and keyword arguments."""

    def __init__(self, name: str, providing_args: Any = None) -> None:
        self.name = name
        self.receivers: list[tuple[Callable, Any]] = []

    def connect(self, receiver: Callable | None = None, sender: Any = None, weak: bool = False,
                dispatch_uid: Any = None) -> Any:
        """Register ``receiver``; used bare (``@sig.connect``) or with options (``@sig.connect(sender=t)``)."""
        def register(func: Callable) -> Callable:
            if dispatch_uid is not None:
                self.receivers = [
                    (f, s) for f, s in self.receivers if getattr(f, "_dispatch_uid", None) != dispatch_uid
                ]
                func._dispatch_uid = dispatch_uid  # type: ignore[attr-defined]
            # == not "is": a bound method is a new object at each access, equal to the others of
            # the same instance and function (two instances' methods are two receivers).
            if all(f != func or s is not sender for f, s in self.receivers):
                self.receivers.append((func, sender))
            return func

        return register(receiver) if receiver is not None else register

    def disconnect(self, receiver: Callable, sender: Any = None, dispatch_uid: Any = None) -> None:
        self.receivers = [(f, s) for f, s in self.receivers if f != receiver]

    def _matches(self, wanted: Any, sender: Any) -> bool:
        if wanted is None:
            return True
        if wanted is sender:
            return True
        # Celery lets receivers filter on a task's name as well as on the task object.
        return isinstance(wanted, str) and getattr(sender, "name", sender) == wanted

    def send(self, sender: Any, **named: Any) -> list[tuple[Callable, Any]]:
        """Call every matching receiver; a receiver that raises is logged and does not stop the others."""
        responses = []
        for receiver, wanted in list(self.receivers):
            if not self._matches(wanted, sender):
                continue
            try:
                responses.append((receiver, receiver(signal=self, sender=sender, **named)))
            except Exception as exc:
                logger.exception("Signal handler %r raised: %r", receiver, exc)
                responses.append((receiver, exc))
        return responses

    send_robust = send

    def __repr__(self) -> str:
        return f"<Signal: {self.name}>"


before_task_publish = Signal("before_task_publish")
after_task_publish = Signal("after_task_publish")
task_received = Signal("task_received")
task_prerun = Signal("task_prerun")
task_postrun = Signal("task_postrun")
task_success = Signal("task_success")
task_retry = Signal("task_retry")
task_failure = Signal("task_failure")
task_revoked = Signal("task_revoked")
task_rejected = Signal("task_rejected")
task_unknown = Signal("task_unknown")
task_internal_error = Signal("task_internal_error")
worker_init = Signal("worker_init")
worker_process_init = Signal("worker_process_init")
worker_process_shutdown = Signal("worker_process_shutdown")
worker_ready = Signal("worker_ready")
worker_shutdown = Signal("worker_shutdown")
worker_shutting_down = Signal("worker_shutting_down")
setup_logging = Signal("setup_logging")
after_setup_logger = Signal("after_setup_logger")
after_setup_task_logger = Signal("after_setup_task_logger")
beat_init = Signal("beat_init")
import_modules = Signal("import_modules")

__all__ = [name for name, value in dict(globals()).items() if isinstance(value, Signal)] + ["Signal"]

"""``app.amqp``: the part of Celery's AMQP layer that means something on Redis (the queues).

Celery programs and its test suite read ``app.amqp.queues`` to see which queues an app uses.
Here a queue is an RQ list, so the other AMQP objects (producers, exchanges, the message
protocol) do not exist: asking for one raises an error that names it instead of failing later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class QueueSpec:
    """A queue the app knows by name, for a configuration that gave only names."""

    name: str
    routing_key: str | None = None


def _named(entries: Any) -> dict[str, Any]:
    # task_queues may be a list of kombu.Queue-like objects, a dict, or plain names.
    if not entries:
        return {}
    if isinstance(entries, dict):
        return {str(name): spec for name, spec in entries.items()}
    queues = {}
    for entry in entries if isinstance(entries, Iterable) and not isinstance(entries, str) else [entries]:
        name = entry if isinstance(entry, str) else getattr(entry, "name", None)
        if name:
            queues[str(name)] = QueueSpec(entry) if isinstance(entry, str) else entry
    return queues


class AMQP:
    """What ``app.amqp`` offers here: ``queues`` (name -> queue) and the default queue's name."""

    def __init__(self, app: Any) -> None:
        self.app = app
        #: Queues sent to without being configured (Celery's task_create_missing_queues adds them too).
        self.used: set[str] = set()

    @property
    def queues(self) -> dict[str, Any]:
        """The default queue, the configured ``task_queues``, then every queue the app sent to."""
        default = self.app.conf.task_default_queue
        configured = _named(self.app.conf.task_queues)
        queues = configured or {default: QueueSpec(default, routing_key=default)}
        for name in sorted(self.used):
            queues.setdefault(name, QueueSpec(name, routing_key=name))
        return queues

    @property
    def default_queue(self) -> Any:
        return self.queues.get(self.app.conf.task_default_queue) or QueueSpec(self.app.conf.task_default_queue)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NotImplementedError(
            f"app.amqp.{name} is part of Celery's AMQP transport, which does not exist on RQ and Redis: "
            "tasks are RQ jobs in Redis lists (only app.amqp.queues and default_queue are provided)")

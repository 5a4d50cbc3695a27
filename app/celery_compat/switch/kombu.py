"""``kombu`` under the switch: the names people put in Celery's configuration (``task_queues``).

A queue here is an RQ list named by ``Queue.name``; exchanges and routing keys are kept for
reading back but route nothing (Redis has no exchanges). Everything else in kombu is AMQP
transport and is not provided: importing it fails with an error naming it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..app.task import gen_task_id as uuid

__all__ = ["Exchange", "Queue", "uuid"]


@dataclass(frozen=True)
class Exchange:
    """kombu's ``Exchange(name, type="direct")``: accepted for configuration, routes nothing."""

    name: str = ""
    type: str = "direct"
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def __init__(self, name: str = "", type: str = "direct", **options: Any) -> None:  # noqa: A002 - kombu's name
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "options", options)


@dataclass(frozen=True)
class Queue:
    """kombu's ``Queue(name, exchange, routing_key)``: the adapter reads its ``name``."""

    name: str = ""
    exchange: Exchange | str | None = None
    routing_key: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    def __init__(self, name: str = "", exchange: Exchange | str | None = None, routing_key: str | None = None,
                 **options: Any) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "exchange", Exchange(exchange) if isinstance(exchange, str) else exchange)
        object.__setattr__(self, "routing_key", routing_key if routing_key is not None else name)
        object.__setattr__(self, "options", options)


def __getattr__(name: str) -> Any:
    # `from kombu import Connection` names what is missing instead of a bare "cannot import name".
    if name.startswith("_"):
        raise AttributeError(name)
    raise ImportError(f"kombu.{name} is not provided by the Celery import switch: only kombu.Queue, "
                      "kombu.Exchange and kombu.uuid (for task_queues); the rest is AMQP transport, "
                      "which does not exist on RQ and Redis", name="kombu")

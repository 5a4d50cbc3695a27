"""``celery.utils.log`` under the switch: the loggers Celery programs ask for."""

from __future__ import annotations

import logging

__all__ = ["get_logger", "get_task_logger"]


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """A task module's logger; records propagate to the worker's log as Celery's do."""
    return logging.getLogger(name)

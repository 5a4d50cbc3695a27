"""Loggers, as Celery's ``celery.utils.log``: ``get_task_logger(__name__)`` in task modules."""

from __future__ import annotations

import logging

#: The parent of every task logger, as in Celery: configure it to configure them all.
TASK_LOGGER_NAME = "celery.task"


def get_logger(name: str) -> logging.Logger:
    return logging.getLogger(name)


def get_task_logger(name: str) -> logging.Logger:
    """A logger for a task module, under ``celery.task`` as Celery's are."""
    if name in ("celery", TASK_LOGGER_NAME):
        raise RuntimeError(f"logger name {name!r} is reserved")
    logger = logging.getLogger(name)
    # Celery re-parents task loggers so that its task formatter and level apply to them all.
    logger.parent = logging.getLogger(TASK_LOGGER_NAME)
    return logger


task_logger = logging.getLogger(TASK_LOGGER_NAME)
worker_logger = logging.getLogger("celery.worker")

"""The entry point's fixed path: every queued job names ``app.celery_compat.execution.execute_task``.

The code lives in :mod:`.worker.job`. This module only keeps the path that jobs already in
Redis, and those queued from now on, name (``protocol.EXECUTE_TASK``). Worker code: the
client side never imports it.
"""

from __future__ import annotations

from .worker.job import execute_task as execute_task

__all__ = ["execute_task"]

"""Result backends: where a task's state and outcome are stored and read (Redis, as Celery's)."""

from __future__ import annotations

from .redis import RedisBackend as RedisBackend

__all__ = ["RedisBackend"]

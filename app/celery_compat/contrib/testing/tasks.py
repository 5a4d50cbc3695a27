"""Helper tasks for integration tests, as Celery's ``celery.contrib.testing.tasks``."""

from __future__ import annotations

from ... import shared_task


@shared_task(name="celery.ping")
def ping() -> str:
    """Simple task that just returns 'pong' (the test worker's start-up check)."""
    return "pong"

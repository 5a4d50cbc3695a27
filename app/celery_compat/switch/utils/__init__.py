"""``celery.utils`` under the switch: ``uuid``, and ``celery.utils.log``."""

from __future__ import annotations

from ...app.task import gen_task_id as uuid

__all__ = ["uuid"]

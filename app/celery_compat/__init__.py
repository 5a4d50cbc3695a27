"""Celery's task API on RQ and Redis: replace ``celery`` with ``app.celery_compat`` in imports.

>>> from app.celery_compat import Celery
>>> app = Celery("proj", broker="redis://localhost:6379/0")
"""

from __future__ import annotations

from . import states as states
from .app.base import Celery as Celery
from .app.base import current_app as current_app
from .app.task import Task as Task
from .app.task import current_task as current_task
from .app.task import gen_task_id as uuid
from .app.task import shared_task as shared_task
from .canvas import Signature as Signature
from .canvas import chain as chain
from .canvas import chord as chord
from .canvas import group as group
from .canvas import signature as signature
from .canvas import subtask as subtask
from .result import AsyncResult as AsyncResult
from .result import EagerResult as EagerResult
from .result import GroupResult as GroupResult

__all__ = [
    "Celery", "Task", "shared_task", "current_app", "current_task", "states",
    "AsyncResult", "EagerResult", "GroupResult", "Signature", "signature", "subtask", "chain", "group", "chord",
    "uuid",
]

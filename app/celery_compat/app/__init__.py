"""The client side: the ``Celery`` app, tasks, tracing and what a task's outcome sets off.

* :mod:`.base`: ``Celery`` (settings, registry, Redis client, ``send_task``);
* :mod:`.task`: ``Task``, ``@shared_task``; :mod:`.trace`: running a task with Celery's
  semantics, here for ``apply()`` and in the worker (as Celery's ``app/trace.py``);
* :mod:`.chords`, :mod:`.control`, :mod:`.config`, :mod:`.limits`; :mod:`.sentinel` (the master through
  Sentinel), :mod:`.replicas` (a send that waits for replicas).

It never imports the worker side (:mod:`..worker`); a test walks the imports to keep it so.
"""

from __future__ import annotations

from .._state import all_tasks as all_tasks
from .._state import shared_tasks as shared_tasks
from ..protocol import EXECUTE_TASK as EXECUTE_TASK
from . import builtins as builtins
from .base import DEFAULT_REDIS_URL as DEFAULT_REDIS_URL
from .base import Celery as Celery
from .base import TaskRegistry as TaskRegistry
from .base import current_app as current_app
from .base import task_module as task_module
from .sentinel import sentinel_master as sentinel_master

__all__ = ["Celery", "current_app", "TaskRegistry", "sentinel_master", "task_module", "DEFAULT_REDIS_URL",
           "all_tasks", "shared_tasks", "EXECUTE_TASK"]

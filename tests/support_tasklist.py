"""Helpers for the task list's tests: an index of sent tasks filled straight into Redis."""

from __future__ import annotations

from collections.abc import Callable

import redis

from app.celery_compat.app.base import index_task

LONG_RUNNING = "app.tasks.long_running.long_running"


def fill(app, conn: redis.Redis, count: int, state_of: Callable[[int], str] = lambda i: "SUCCESS",
         start: float = 1_700_000_000.0, name: Callable[[int], str] = lambda i: LONG_RUNNING,
         queue: Callable[[int], str] = lambda i: "default") -> list[str]:
    """Index ``count`` sent tasks one second apart (task-0 oldest), with results in the states ``state_of(i)`` gives."""
    backend = app.extensions["celery"].backend
    pipe = conn.pipeline(transaction=False)
    ids = []
    for i in range(count):
        task_id = f"task-{i}"
        index_task(pipe, task_id, name(i), queue(i), f"duration={i + 1}", keep_seconds=10**9, max_tasks=10**6,
                   now=start + i)
        state = state_of(i)
        if state == "PROGRESS":
            backend.store_result(task_id, {"current": 1, "total": 4, "percent": 25}, state, pipeline=pipe)
        elif state != "PENDING":
            backend.store_result(task_id, {"steps": 2}, state, pipeline=pipe)
        ids.append(task_id)
    pipe.execute()
    return ids

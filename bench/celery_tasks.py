"""The no-op task for real Celery 5.7, the peer the benchmark compares with (Redis broker and backend)."""

from __future__ import annotations

import os

from celery import Celery

URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
app = Celery("bench.celery_tasks", broker=URL, backend=URL)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"])


@app.task
def noop(x):
    return x

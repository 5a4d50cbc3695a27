"""The no-op task of the benchmarks, as a Celery-style task (raw RQ uses ``bench.plain_tasks``)."""

from __future__ import annotations

import os

from app.celery_compat import Celery

app = Celery("bench.noop_tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
# bench.memory_per_task shortens the job hashes' window to measure what stays once it has passed.
if os.environ.get("BENCH_JOB_KEEP_SECONDS"):
    app.conf.worker_job_keep_seconds = int(os.environ["BENCH_JOB_KEEP_SECONDS"])


@app.task
def noop(x):
    return x

"""A Celery app with a one-second periodic task, for the `worker.py -B` tests."""

from __future__ import annotations

import os
import time

import redis

from app.celery_compat import Celery

app = Celery("tests.beat_tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))
app.conf.beat_schedule = {"tick-every-second": {"task": "tests.beat_tasks.tick", "schedule": 1.0, "args": ("beat",)}}


@app.task
def tick(label):
    redis.Redis.from_url(app.broker_url).rpush(f"record:{label}", repr(time.time()))


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.add_periodic_task(2.0, tick.s("added"), name="added every 2 s")

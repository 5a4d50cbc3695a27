"""Periodic tasks: a beat_schedule entry and add_periodic_task in on_after_configure, run by the worker's -B."""

import json
import os
import time
from datetime import timedelta

import redis
from celery import Celery

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("periodic", broker=REDIS_URL, backend=REDIS_URL)
app.conf.beat_schedule = {
    "from-beat-schedule": {"task": "periodic.tick", "schedule": 1.0, "args": ("beat_schedule",),
                           "kwargs": {"unit": "s"}},
    "as-timedelta": {"task": "periodic.tick", "schedule": timedelta(seconds=1), "args": ("timedelta",)},
}
store = redis.Redis.from_url(REDIS_URL)


@app.on_after_configure.connect
def setup_periodic_tasks(sender, **kwargs):
    sender.add_periodic_task(1.0, tick.s("add_periodic_task", unit="ms"), name="added-on-configure")


@app.task(bind=True)
def tick(self, source, unit=None):
    store.rpush(f"periodic:{source}", json.dumps([self.name, list(self.request.args), self.request.kwargs]))


def runs(source, at_least, timeout=30.0):
    deadline = time.monotonic() + timeout
    while store.llen(f"periodic:{source}") < at_least and time.monotonic() < deadline:
        time.sleep(0.1)
    return [json.loads(raw) for raw in store.lrange(f"periodic:{source}", 0, -1)]


def main():
    for source in ("beat_schedule", "add_periodic_task", "timedelta"):
        calls = runs(source, 2)
        print(source, "ran at least 2 times", len(calls) >= 2)
        for call in {json.dumps(call) for call in calls}:
            print(source, "called as", *json.loads(call))

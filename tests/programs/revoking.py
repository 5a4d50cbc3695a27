"""Revoking: a task revoked before it runs, a task that expired before it ran, a finished task."""

import os
import time
from datetime import datetime, timedelta, timezone

import redis
from celery import Celery
from celery.exceptions import TaskRevokedError
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("revoking", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


@app.task(bind=True)
def long_running(self):
    store.set(f"revoking:running:{self.request.id}", 1)
    time.sleep(10)
    store.set(f"revoking:ran:{self.request.id}", 1)
    return "ran"


@app.task(bind=True)
def record(self):
    store.set(f"revoking:ran:{self.request.id}", 1)
    return "ran"


def show(label, result):
    try:
        print(label, "get", result.get(timeout=20))
    except TaskRevokedError as exc:
        print(label, "get raised", type(exc).__name__, exc.args)
    fresh = AsyncResult(result.id)
    print(label, "state", fresh.state, fresh.ready(), fresh.successful(), fresh.failed(),
          type(fresh.result).__name__, bool(store.exists(f"revoking:ran:{result.id}")))


def main():
    later = record.apply_async(countdown=3)
    later.revoke()
    by_control = record.apply_async(countdown=3)
    app.control.revoke(by_control.id)
    expired = record.apply_async(expires=datetime.now(timezone.utc) - timedelta(seconds=10))
    show("revoked before it ran", later)
    show("revoked through app.control", by_control)
    show("expired before it ran", expired)

    done = record.delay()
    done.get(timeout=20)
    done.revoke()
    time.sleep(1)
    show("revoked after it finished", done)

    running = long_running.delay()
    deadline = time.monotonic() + 20
    while not store.exists(f"revoking:running:{running.id}") and time.monotonic() < deadline:
        time.sleep(0.05)
    running.revoke(terminate=True)
    show("terminated while running", running)

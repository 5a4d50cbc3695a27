"""Retries: self.retry with a countdown, request.retries, running out of retries, autoretry_for."""

import os
import time

import redis
from celery import Celery, states
from celery.exceptions import MaxRetriesExceededError
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("retries", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


def attempts(task_id):
    """The request.retries of every attempt, as each attempt recorded it."""
    return [int(value) for value in store.lrange(f"retries:{task_id}", 0, -1)]


@app.task(bind=True, max_retries=3)
def flaky(self, succeed_on):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    if self.request.retries < succeed_on:
        raise self.retry(countdown=1, exc=ConnectionError("not yet", self.request.retries))
    return {"attempt": self.request.retries + 1, "args": self.request.args}


@app.task(bind=True, max_retries=1)
def retry_without_exc(self, value, flag=False):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    raise self.retry(countdown=1)


@app.task(bind=True, max_retries=1)
def retry_with_exc(self, key):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    try:
        return {}[key]
    except KeyError as exc:
        raise self.retry(exc=exc, countdown=1) from exc


@app.task(bind=True)
def retry_with_call_limit(self):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    raise self.retry(exc=ValueError("limit given per call"), countdown=1, max_retries=2)


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 2, "countdown": 1})
def auto_gives_up(self):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    raise ConnectionError("still down")


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 3, "countdown": 1})
def auto_recovers(self):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    if self.request.retries < 1:
        raise ConnectionError("down once")
    return "recovered"


@app.task(bind=True, autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 2, "countdown": 1})
def auto_other_error(self):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    raise ValueError("not retried")


@app.task(bind=True, max_retries=None)
def retry_forever(self):
    store.rpush(f"retries:{self.request.id}", self.request.retries)
    if self.request.retries < 2:
        raise self.retry(countdown=1)
    return "no limit"


def main():
    watched = flaky.delay(2)
    others = {
        "retry_without_exc": retry_without_exc.apply_async((1,), {"flag": True}, task_id="retries-fixed-id"),
        "retry_with_exc": retry_with_exc.delay("missing"),
        "retry_with_call_limit": retry_with_call_limit.delay(),
        "auto_gives_up": auto_gives_up.delay(),
        "auto_recovers": auto_recovers.delay(),
        "auto_other_error": auto_other_error.delay(),
        "retry_forever": retry_forever.delay(),
    }

    deadline = time.monotonic() + 20
    while AsyncResult(watched.id).state == states.PENDING and time.monotonic() < deadline:
        time.sleep(0.05)
    retrying = AsyncResult(watched.id)
    print("while waiting to retry", retrying.state, type(retrying.info).__name__, retrying.info.args,
          retrying.ready())
    print("flaky", watched.get(timeout=30), watched.state, attempts(watched.id))

    for name, result in others.items():
        try:
            print(name, "returned", result.get(timeout=30), result.state, attempts(result.id))
        except MaxRetriesExceededError as exc:
            print(name, "raised", type(exc).__name__, exc.args, result.state, attempts(result.id))
        except Exception as exc:
            print(name, "raised", type(exc).__name__, exc.args, result.state, attempts(result.id))

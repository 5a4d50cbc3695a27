"""Signals: task_prerun, task_postrun, task_success, task_failure, task_retry in the worker; publish signals here."""

import json
import os
import time

import redis
from celery import Celery
from celery.signals import (
    after_task_publish,
    before_task_publish,
    task_failure,
    task_postrun,
    task_prerun,
    task_retry,
    task_success,
)

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("signal_receivers", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)
published = []


def record(task_id, *entry):
    store.rpush(f"signals:{task_id}", json.dumps(entry))


@app.task
def add(x, y):
    return x + y


@app.task
def fail(message):
    raise ValueError(message)


@app.task(bind=True)
def retry_once(self):
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("first try"), countdown=1)
    return "second try"


@task_prerun.connect
def on_prerun(sender=None, task_id=None, task=None, args=None, kwargs=None, **extra):
    record(task_id, "task_prerun", sender.name, task is sender, repr(args), repr(kwargs))


@task_postrun.connect
def on_postrun(sender=None, task_id=None, task=None, args=None, kwargs=None, retval=None, state=None, **extra):
    shown = f"{type(retval).__name__}: {retval}" if isinstance(retval, BaseException) else repr(retval)
    record(task_id, "task_postrun", sender.name, state, shown, repr(args), repr(kwargs))


@task_success.connect
def on_success(sender=None, result=None, **extra):
    record(sender.request.id, "task_success", sender.name, repr(result))


@task_failure.connect
def on_failure(sender=None, task_id=None, exception=None, args=None, kwargs=None, einfo=None, **extra):
    record(task_id, "task_failure", sender.name, type(exception).__name__, repr(exception.args),
           repr(args), repr(kwargs), str(einfo).strip().splitlines()[-1])


@task_retry.connect
def on_retry(sender=None, request=None, reason=None, **extra):
    record(request.id, "task_retry", sender.name, request.retries, type(reason).__name__, str(reason))


@task_success.connect(sender=add)
def on_add_success(sender=None, result=None, **extra):
    record(sender.request.id, "task_success for add only", repr(result))


@before_task_publish.connect
def on_before_publish(sender=None, routing_key=None, **extra):
    published.append(("before_task_publish", sender, routing_key))


@after_task_publish.connect
def on_after_publish(sender=None, routing_key=None, **extra):
    published.append(("after_task_publish", sender, routing_key))


def signal_calls(task_id, runs=1):
    """The signals recorded for a task, once ``runs`` task_postrun calls are in (or after 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        calls = [json.loads(raw) for raw in store.lrange(f"signals:{task_id}", 0, -1)]
        if sum(call[0] == "task_postrun" for call in calls) >= runs:
            return calls
        time.sleep(0.05)
    return calls


def main():
    result = add.delay(2, 3)
    print("success", result.get(timeout=20))
    for call in signal_calls(result.id):
        print("success signal", *call)

    result = fail.delay("boom")
    print("failure", type(result.get(timeout=20, propagate=False)).__name__)
    for call in signal_calls(result.id):
        print("failure signal", *call)

    result = retry_once.delay()
    print("retry", result.get(timeout=20))
    for call in signal_calls(result.id, runs=2):
        print("retry signal", *call)

    for entry in published:
        print("client", *entry)
    print("direct call sends no signals", add(1, 1), store.llen("signals:None"))

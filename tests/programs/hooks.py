"""A custom Task base class: before_start, on_success, on_failure, on_retry and after_return hooks, among signals."""

import json
import os
import time

import redis
from celery import Celery, Task
from celery.signals import task_failure, task_postrun, task_prerun, task_retry, task_success

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("hooks", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


def record(task_id, *entry):
    store.rpush(f"hooks:{task_id}", json.dumps(entry))


class RecordingTask(Task):
    """Writes every hook call to Redis, where the client reads it back."""

    def before_start(self, task_id, args, kwargs):
        record(task_id, "before_start", self.name, repr(args), repr(kwargs))

    def on_success(self, retval, task_id, args, kwargs):
        record(task_id, "on_success", repr(retval), repr(args), repr(kwargs))

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        record(task_id, "on_failure", type(exc).__name__, repr(exc.args), repr(args), repr(kwargs),
               str(einfo).strip().splitlines()[-1])

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        record(task_id, "on_retry", type(exc).__name__, repr(exc.args), repr(args), repr(kwargs))

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        shown = type(retval).__name__ if isinstance(retval, BaseException) else repr(retval)
        record(task_id, "after_return", status, shown, repr(args), repr(kwargs), einfo is None)


@task_prerun.connect
def on_prerun(task_id=None, **extra):
    record(task_id, "signal task_prerun")


@task_success.connect
def on_success_signal(sender=None, **extra):
    record(sender.request.id, "signal task_success")


@task_failure.connect
def on_failure_signal(task_id=None, **extra):
    record(task_id, "signal task_failure")


@task_retry.connect
def on_retry_signal(request=None, **extra):
    record(request.id, "signal task_retry")


@task_postrun.connect
def on_postrun(task_id=None, state=None, **extra):
    record(task_id, "signal task_postrun", state)


@app.task(base=RecordingTask)
def add(x, y):
    return x + y


@app.task(base=RecordingTask)
def fail(message, code=0):
    raise ValueError(message, code)


@app.task(bind=True, base=RecordingTask)
def retry_once(self):
    if self.request.retries == 0:
        raise self.retry(exc=ConnectionError("first try"), countdown=1)
    return "second try"


def hook_calls(task_id, runs=1):
    """The hooks and signals recorded for a task, once ``runs`` task_postrun calls are in (or after 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        calls = [json.loads(raw) for raw in store.lrange(f"hooks:{task_id}", 0, -1)]
        if sum(call[0] == "signal task_postrun" for call in calls) >= runs:
            return calls
        time.sleep(0.05)
    return calls


def main():
    result = add.delay(2, 3)
    print("success", result.get(timeout=20))
    for call in hook_calls(result.id):
        print("success hook", *call)

    result = fail.delay("boom", code=7)
    print("failure", type(result.get(timeout=20, propagate=False)).__name__)
    for call in hook_calls(result.id):
        print("failure hook", *call)

    result = retry_once.delay()
    print("retry", result.get(timeout=20))
    for call in hook_calls(result.id, runs=2):
        print("retry hook", *call)

    print("direct call", add(1, 1), store.llen("hooks:None"))

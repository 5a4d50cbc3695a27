"""ignore_result: the task runs, but no state or value is ever stored, so it reads PENDING."""

import os
import time

import redis
from celery import Celery
from celery.exceptions import TimeoutError
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("ignored", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


@app.task(ignore_result=True)
def note(tag):
    store.set(f"ignored:{tag}", "ran")
    return "a value nobody keeps"


@app.task(ignore_result=True)
def note_then_fail(tag):
    store.set(f"ignored:{tag}", "ran")
    raise ValueError("failure nobody keeps")


@app.task
def add(x, y):
    return x + y


def main():
    for label, tag, result in [
        ("ignore_result task", "a", note.delay("a")),
        ("ignore_result task that fails", "b", note_then_fail.delay("b")),
    ]:
        ran = wait_until(lambda tag=tag: store.exists(f"ignored:{tag}"))
        time.sleep(1)  # give a (wrong) result time to be stored
        fresh = AsyncResult(result.id)
        print(label, "ran", bool(ran), fresh.state, fresh.result, fresh.ready())
        try:
            AsyncResult(result.id).get(timeout=0.5)
        except TimeoutError as exc:
            print(label, "get on a fresh handle", type(exc).__name__)
        started = time.monotonic()
        print(label, "get on the returned handle", result.get(timeout=5), time.monotonic() - started < 1)

    result = add.apply_async((1, 2), ignore_result=True)
    checked = add.delay(0, 0)
    checked.get(timeout=20)
    time.sleep(1)
    print("ignore_result per call", AsyncResult(result.id).state, result.get(timeout=5))
    print("other calls still stored", add.delay(2, 2).get(timeout=20), checked.state)

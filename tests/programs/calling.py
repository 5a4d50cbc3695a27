"""Calling tasks: delay, apply_async and its options, send_task by name, direct calls, bad arguments."""

import os

from celery import Celery
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("calling", broker=REDIS_URL, backend=REDIS_URL)


@app.task
def add(x, y):
    return x + y


@app.task
def describe(a, b=0, c=None):
    return {"a": a, "b": b, "c": c}


@app.task(bind=True)
def whoami(self):
    return {"id": self.request.id, "queue": self.request.delivery_info["routing_key"],
            "retries": self.request.retries, "called_directly": self.request.called_directly}


@app.task(bind=True)
def called_directly(self):
    return self.request.called_directly


@app.task
def echo(value):
    return value


def main():
    result = add.delay(2, 3)
    print("delay", result.get(timeout=20), result.state)

    result = describe.apply_async((1,), {"c": 3})
    print("apply_async args and kwargs", result.get(timeout=20))
    result = describe.apply_async(kwargs={"a": "only kwargs"})
    print("apply_async kwargs only", result.get(timeout=20))

    result = add.apply_async((1, 1), countdown=1)
    print("countdown before it runs", result.state)
    print("countdown after", result.get(timeout=20), result.state)

    result = whoami.apply_async(task_id="calling-chosen-id")
    info = result.get(timeout=20)
    print("task_id", result.id, info["id"] == result.id, info["queue"], info["retries"], info["called_directly"])
    print("task_id fresh handle", AsyncResult("calling-chosen-id").state)

    result = whoami.apply_async(queue="reports")
    print("queue", result.get(timeout=20)["queue"])

    result = app.send_task("calling.add", args=(10, 20))
    print("send_task args", result.get(timeout=20), result.state)
    result = app.send_task("calling.add", kwargs={"x": 1, "y": 2})
    print("send_task kwargs", result.get(timeout=20))
    result = app.send_task("calling.not_a_task", args=(1,))
    value = result.get(timeout=20, propagate=False)
    print("send_task unregistered name", result.state, type(value).__name__, value.args)

    print("direct call", add(4, 5), describe(7, c=8), called_directly())
    print("not called directly in the worker", called_directly.delay().get(timeout=20))
    print("task name", add.name, describe.name)

    try:
        add.delay(1)
    except TypeError as exc:
        print("missing argument at delay", type(exc).__name__, exc.args)
    try:
        add.delay(1, 2, 3)
    except TypeError as exc:
        print("extra argument at delay", type(exc).__name__, exc.args)
    try:
        describe.apply_async((1,), {"nope": 2})
    except TypeError as exc:
        print("unknown keyword at apply_async", type(exc).__name__, exc.args)
    try:
        describe.apply_async()
    except TypeError as exc:
        print("missing argument at apply_async", type(exc).__name__, exc.args)

    try:
        echo.delay({1, 2})
    except Exception as exc:
        print("set argument", type(exc).__name__)

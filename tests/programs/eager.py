"""Running tasks in the calling process: apply(), task_always_eager, task_eager_propagates."""

import os

from celery import Celery
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("eager", broker=REDIS_URL, backend=REDIS_URL)


@app.task
def add(x, y):
    return x + y


@app.task
def fail(message):
    raise ValueError(message)


@app.task
def echo(value):
    return value


@app.task
def type_name(value):
    return type(value).__name__


@app.task(bind=True)
def context(self):
    return {"is_eager": self.request.is_eager, "called_directly": self.request.called_directly,
            "retries": self.request.retries, "has_id": self.request.id is not None}


@app.task(bind=True, max_retries=3)
def retry_twice(self):
    if self.request.retries < 2:
        raise self.retry(countdown=60)
    return f"done after {self.request.retries} retries"


def show(label, result):
    value = result.get(propagate=False)
    value = type(value).__name__ if isinstance(value, BaseException) else value
    print(label, type(result).__name__, isinstance(result, AsyncResult), result.state, value,
          result.ready(), result.successful(), result.failed())


def main():
    show("apply", add.apply((2, 3)))
    show("apply with kwargs", add.apply(kwargs={"x": 1, "y": 2}))
    show("apply failure", fail.apply(("boom",)))
    try:
        fail.apply(("boom",)).get()
    except ValueError as exc:
        print("apply failure get raises", type(exc).__name__, exc.args)
    show("apply context", context.apply())
    show("apply with a missing argument", add.apply((1,)))
    result = add.apply((1, 2, 3))
    print("apply with an extra argument", result.state, type(result.result).__name__, result.result.args)
    show("apply keeps a tuple", type_name.apply(((1, 2),)))
    show("apply retries run at once", retry_twice.apply())

    app.conf.task_always_eager = True
    result = add.delay(1, 1)
    show("always eager delay", result)
    print("always eager result is not stored", AsyncResult(result.id).state)
    show("always eager apply_async", add.apply_async((5, 5), countdown=30))
    show("always eager failure", fail.delay("eager boom"))
    show("always eager context", context.delay())
    show("always eager tuple to list", echo.delay((1, (2, 3))))
    show("always eager the task gets a list", type_name.delay((1, 2)))
    try:
        echo.delay({1, 2})
    except Exception as exc:
        print("always eager set argument", type(exc).__name__)

    app.conf.task_eager_propagates = True
    try:
        fail.delay("propagated")
    except ValueError as exc:
        print("eager propagates raises at delay", type(exc).__name__, exc.args)
    show("eager propagates success", add.delay(2, 2))

    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False
    result = add.delay(3, 4)
    print("back to the worker", type(result).__name__, result.get(timeout=20), result.state)

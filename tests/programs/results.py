"""Reading results: unknown ids, get, propagate=False, ready/successful/failed, traceback, forget, states."""

import builtins
import os
from datetime import datetime

from celery import Celery, states
from celery.exceptions import TimeoutError
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("results", broker=REDIS_URL, backend=REDIS_URL)


@app.task
def add(x, y):
    return x + y


@app.task
def fail(message):
    raise ValueError(message)


@app.task
def waits_inside():
    return add.delay(1, 1).get(timeout=5)


def main():
    unknown = AsyncResult("no-such-task-id")
    print("unknown state", unknown.state, unknown.status)
    print("unknown ready/successful/failed", unknown.ready(), unknown.successful(), unknown.failed())
    print("unknown result/info/traceback", unknown.result, unknown.info, unknown.traceback)
    print("unknown str", str(unknown))
    try:
        unknown.get(timeout=0.5)
    except TimeoutError as exc:
        print("unknown get", type(exc).__name__, exc.args, isinstance(exc, builtins.TimeoutError))

    ok = add.delay(20, 22)
    print("get", ok.get(timeout=20))
    print("success state", ok.state, ok.status, ok.state == states.SUCCESS)
    print("success result/info", ok.result, ok.info)
    print("success ready/successful/failed", ok.ready(), ok.successful(), ok.failed())
    print("success traceback", ok.traceback)
    print("name without result_extended", ok.name, AsyncResult(ok.id).name)
    print("date_done", isinstance(ok.date_done, datetime), ok.date_done.tzinfo is not None)
    fresh = AsyncResult(ok.id)
    print("fresh handle", fresh.state, fresh.result, fresh.get(timeout=5))

    bad = fail.delay("boom")
    value = bad.get(timeout=20, propagate=False)
    print("propagate=False", type(value).__name__, value.args)
    print("failure state", bad.state, bad.state == states.FAILURE)
    print("failure ready/successful/failed", bad.ready(), bad.successful(), bad.failed())
    print("failure result", type(bad.result).__name__, bad.result.args)
    print("failure traceback first line", bad.traceback.strip().splitlines()[0])
    print("failure traceback last line", bad.traceback.strip().splitlines()[-1])
    for attempt in (1, 2):
        try:
            bad.get(timeout=20)
        except ValueError as exc:
            print("get raises", attempt, type(exc).__name__, exc.args)
    print("failure date_done", isinstance(bad.date_done, datetime))

    inside = waits_inside.delay()
    value = inside.get(timeout=20, propagate=False)
    print("get inside a task", inside.state, type(value).__name__, str(value).splitlines()[0])

    ok.forget()
    print("forget same handle", ok.state, ok.result)
    print("forget fresh handle", AsyncResult(ok.id).state, AsyncResult(ok.id).ready())

    print("READY_STATES", sorted(states.READY_STATES))
    print("UNREADY_STATES", sorted(states.UNREADY_STATES))
    print("EXCEPTION_STATES", sorted(states.EXCEPTION_STATES))
    print("PROPAGATE_STATES", sorted(states.PROPAGATE_STATES))

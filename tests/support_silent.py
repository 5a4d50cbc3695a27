"""Tasks that used to end in silence (PENDING for ever): rejecting ones and class-based ones.

The workers the tests start import this module on demand, as the message names it.
"""

from __future__ import annotations

import redis

from app.celery_compat import Task
from app.celery_compat.exceptions import Reject
from tests.compat_tasks import app, record


def runs(key: str) -> int:
    """How often a task recorded under ``key`` has run so far."""
    return redis.Redis.from_url(app.broker_url).llen(f"record:{key}")


@app.task
def reject_for_good(reason):
    raise Reject(reason, requeue=False)


@app.task(bind=True)
def reject_until(self, key, times):
    """Requeue its message ``times`` times, then succeed with the number of runs and its retries."""
    record(key, self.request.delivery_info.get("redelivered"))
    if runs(key) <= times:
        raise Reject("not yet", requeue=True)
    return [runs(key), self.request.retries]


@app.task
def always_requeue(key):
    record(key, "run")
    raise Reject("never wanted", requeue=True)


class Multiply(Task):
    """A Celery 1.0-style task class without a name: register_task names it after the class."""

    def run(self, x, y):
        return x * y


class Greet(Task):
    name = "tests.support_silent.greet"

    def __init__(self, greeting: str = "hello") -> None:  # does not call Task.__init__, as Celery allows
        self.greeting = greeting

    def run(self, who):
        return f"{self.greeting} {who}"


multiply = app.register_task(Multiply)
greet = app.register_task(Greet("hi"))


class RefusesToStart(Task):
    name = "tests.support_silent.refuses_to_start"

    def before_start(self, task_id, args, kwargs):
        raise RuntimeError("not today")

    def run(self):
        return "ran anyway"


refuses_to_start = app.register_task(RefusesToStart())

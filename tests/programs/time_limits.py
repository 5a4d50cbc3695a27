"""Time limits: a soft limit caught by the task, a soft limit not caught, a hard limit."""

import os
import time

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("time_limits", broker=REDIS_URL, backend=REDIS_URL)


@app.task(soft_time_limit=1)
def cleans_up():
    try:
        time.sleep(10)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not interrupted"


@app.task(soft_time_limit=1)
def ignores_soft_limit():
    time.sleep(10)
    return "not interrupted"


@app.task(time_limit=1)
def hard_limit():
    time.sleep(10)
    return "not interrupted"


@app.task
def sleeper(seconds):
    time.sleep(seconds)
    return "slept"


def main():
    for label, result in [
        ("soft limit caught", cleans_up.delay()),
        ("soft limit uncaught", ignores_soft_limit.delay()),
        ("hard limit", hard_limit.delay()),
        ("soft limit per call", sleeper.apply_async((10,), soft_time_limit=1)),
        ("within the limits", sleeper.apply_async((0.1,), soft_time_limit=5, time_limit=8)),
    ]:
        value = result.get(timeout=30, propagate=False)
        if isinstance(value, BaseException):
            print(label, result.state, type(value).__name__, result.traceback is None)
        else:
            print(label, result.state, value)

"""Tasks for the celery_compat tests, importable by the worker processes those tests start.

The broker URL comes from ``REDIS_URL``, as a real project's would; the tests point it at
their own Redis server.
"""

from __future__ import annotations

import os
import time

import redis
from rq import get_current_job

from app.celery_compat import Celery, Task
from app.celery_compat.exceptions import SoftTimeLimitExceeded

app = Celery("tests.compat_tasks", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:1/0"))


def record(key: str, value: object) -> None:
    """Append to a Redis list, so a test can see what ran inside the worker (and how often)."""
    redis.Redis.from_url(app.broker_url).rpush(f"record:{key}", str(value))


class TransientError(Exception):
    """A failure worth retrying."""


class PaymentDeclined(Exception):
    """A custom exception with several arguments, as projects define them."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


@app.task
def add(x, y):
    return x + y


@app.task(bind=True, max_retries=1)
def retried_elsewhere(self, **route):
    """Retries once with ``route`` (queue, priority) as Celery's retry options; then says where it ran."""
    if self.request.retries < 1:
        raise self.retry(countdown=0, **route)
    return [self.request.delivery_info["routing_key"], self.request.delivery_info["priority"]]


@app.task(bind=True, max_retries=2, default_retry_delay=0)
def times_ten_after_a_retry(self, x):
    if self.request.retries < 1:
        raise self.retry(exc=TransientError("once more"), countdown=0)
    return x * 10


@app.task
def echo(value):
    return value


@app.task
def fail(message="boom"):
    raise ValueError(message)


@app.task
def decline(code, reason):
    raise PaymentDeclined(code, reason)


@app.task
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="custom.named")
def named():
    return "named"


@app.task(bind=True)
def whoami(self):
    request = self.request
    return {"id": request.id, "retries": request.retries, "queue": (request.delivery_info or {}).get("routing_key"),
            "called_directly": request.called_directly, "args": request.args}


@app.task(bind=True)
def progress(self, steps, delay=0.2):
    for step in range(1, steps + 1):
        self.update_state(state="PROGRESS", meta={"current": step, "total": steps})
        time.sleep(delay)
    return "done"


@app.task(bind=True, track_started=True)
def tracked(self, seconds):
    time.sleep(seconds)
    return "tracked"


@app.task(bind=True, max_retries=2, default_retry_delay=0)
def always_retry(self, with_exc=True):
    record(f"always_retry:{self.request.id}", self.request.retries)
    if with_exc:
        raise self.retry(exc=TransientError(f"attempt {self.request.retries}"))
    raise self.retry()


@app.task(bind=True, max_retries=5)
def succeed_on_third(self):
    record(f"third:{self.request.id}", self.request.retries)
    if self.request.retries < 2:
        raise self.retry(exc=TransientError("not yet"), countdown=1)
    return f"ok after {self.request.retries} retries"


@app.task(bind=True, autoretry_for=(TransientError,), retry_kwargs={"max_retries": 2, "countdown": 0})
def autoretried(self):
    record(f"auto:{self.request.id}", self.request.retries)
    raise TransientError(f"auto {self.request.retries}")


@app.task(bind=True, autoretry_for=(TransientError,), retry_kwargs={"max_retries": 3, "countdown": 0})
def autoretried_other_error(self):
    record(f"other:{self.request.id}", self.request.retries)
    raise KeyError("not retried")


@app.task(soft_time_limit=0.5)
def soft_limited_cleanup():
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        return "cleaned up"
    return "not interrupted"


@app.task(soft_time_limit=0.5)
def soft_limited():
    time.sleep(5)


@app.task(time_limit=0.5)
def hard_limited():
    time.sleep(5)


@app.task(ignore_result=True)
def ignored(key):
    record(key, "ran")
    return "ignored"


@app.task
def unserializable_result():
    return {1, 2, 3}


class HookedTask(Task):
    """A base class whose hooks record what Celery's worker passes them."""

    def on_success(self, retval, task_id, args, kwargs):
        record(f"hooks:{task_id}", f"on_success {retval!r} {args!r}")

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        record(f"hooks:{task_id}", f"on_failure {exc!r} {type(einfo.exception).__name__}")

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        record(f"hooks:{task_id}", f"on_retry {exc!r}")

    def after_return(self, status, retval, task_id, args, kwargs, einfo):
        record(f"hooks:{task_id}", f"after_return {status}")


@app.task(base=HookedTask)
def hooked_add(x, y):
    return x + y


@app.task(base=HookedTask)
def hooked_fail():
    raise RuntimeError("hooked")


@app.task
def remember(value, key):
    record(key, value)
    return value


@app.task
def on_error_inline(request, exc, traceback, key):
    record(key, f"{request.id} {exc!r} {traceback.splitlines()[0]}")


@app.task
def on_error_queued(task_id, key):
    record(key, task_id)


@app.task
def waits_on_another():
    return add.delay(1, 1).get(timeout=1)


@app.task
def tsum(values):
    return sum(values)


@app.task
def mul(x, y):
    return x * y


@app.task
def collect(values, key):
    record(key, ",".join(str(value) for value in values))
    return values


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def safe_to_repeat(self, key, seconds):
    """Records each start, then works; killing its worker mid-way makes it run again."""
    record(key, os.getpid())
    time.sleep(seconds)
    return "finished"


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def kills_its_worker(self, key):
    record(key, os.getpid())
    os.kill(os.getpid(), 9)


@app.task(time_limit=1)
def swallows_time_limit():
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            time.sleep(0.1)
        except Exception:  # noqa: BLE001 - the point: a task that ignores its hard limit
            pass
    return "ignored the limit"


@app.task
def pid():
    return os.getpid()


@app.task
def fails_while_flagged(key):
    if redis.Redis.from_url(app.broker_url).exists(f"flag:{key}"):
        raise RuntimeError("flagged")
    return "recovered"


@app.task(bind=True)
def unstorable(self, where):
    """Put a lone surrogate, which UTF-8 cannot encode, where the worker must store it."""
    text = "bad \ud800 text"
    if where == "meta":
        self.update_state(state="PROGRESS", meta={"note": text})
    if where == "exception":
        raise ValueError(text)
    return text


# -- priorities (tests/test_compat_priority.py) ----------------------------------------------------
@app.task(priority=3)
def remember_at_three(value, key):
    """A task whose own ``priority`` is 3."""
    record(key, value)


@app.task
def held(key, seconds=30):
    """Keep the worker busy until the test pushes to ``record:<key>``."""
    redis.Redis.from_url(app.broker_url).blpop([f"record:{key}"], seconds)


@app.task(bind=True, max_retries=1)
def retry_once(self, value, key):
    """Record ``value:<retries>:<priority>``, and ask to run again once, at once."""
    record(key, f"{value}:{self.request.retries}:{self.request.delivery_info.get('priority')}")
    if not self.request.retries:
        raise self.retry(countdown=0)


# -- rate limits (test_compat_rate_limit.py): each records "<start time> <RQ worker name>" -------
def _record_start(key: str) -> None:
    job = get_current_job()
    record(key, f"{time.time():.6f} {job.worker_name if job is not None else '-'}")


@app.task(rate_limit="2/s")
def paced(key, seconds=0.0):
    _record_start(key)
    time.sleep(seconds)


@app.task(rate_limit="1/s")
def slow_paced(key, seconds=0.0):
    _record_start(key)
    time.sleep(seconds)


@app.task(rate_limit="30/m")
def sparse(key):
    _record_start(key)


@app.task(rate_limit="6/m")
def rare(key):
    """Limited to one start every ten seconds: longer than a heartbeat TTL, and than a warm stop may take."""
    _record_start(key)


@app.task
def unpaced(key):
    _record_start(key)


@app.task(bind=True, max_retries=3)
def retried_after_a_second(self, key):
    """Record each start's time, and retry with countdown=1 three times."""
    record(key, f"{time.time():.6f}")
    if self.request.retries < 3:
        raise self.retry(countdown=1)

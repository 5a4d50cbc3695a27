"""States while a task runs: PENDING while running, STARTED with track_started, PROGRESS from update_state."""

import os
import time

import redis
from celery import Celery, states
from celery.exceptions import Ignore
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
app = Celery("progress", broker=REDIS_URL, backend=REDIS_URL)
store = redis.Redis.from_url(REDIS_URL)


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return None


@app.task(bind=True)
def crunch(self, total):
    """Report each step, then wait until the client has seen it before going on."""
    for step in range(1, total + 1):
        self.update_state(state="PROGRESS", meta={"current": step, "total": total})
        wait_until(lambda step=step: store.exists(f"progress:seen:{step}"))
    return {"current": total, "total": total, "status": "done"}


@app.task
def untracked():
    store.set("progress:untracked:running", 1)
    wait_until(lambda: store.exists("progress:untracked:go"))
    return "untracked done"


@app.task(bind=True, track_started=True)
def tracked(self):
    wait_until(lambda: store.exists("progress:tracked:go"))
    return "tracked done"


@app.task(bind=True)
def custom_final_state(self):
    self.update_state(state="NEEDS_REVIEW", meta={"reason": "manual check"})
    raise Ignore()


def main():
    result = crunch.delay(3)
    for step in (1, 2, 3):
        seen = wait_until(lambda step=step: AsyncResult(result.id).state == "PROGRESS"
                          and AsyncResult(result.id).info["current"] == step)
        fresh = AsyncResult(result.id)
        print("progress", step, bool(seen), fresh.state, fresh.info, fresh.ready(), fresh.successful())
        store.set(f"progress:seen:{step}", 1)
    print("progress final", result.get(timeout=20), result.state, result.ready())

    result = untracked.delay()
    wait_until(lambda: store.exists("progress:untracked:running"))
    print("running without track_started", result.state, result.info)
    store.set("progress:untracked:go", 1)
    print("untracked final", result.get(timeout=20), result.state)

    result = tracked.delay()
    seen = wait_until(lambda: AsyncResult(result.id).state != states.PENDING)
    fresh = AsyncResult(result.id)
    print("running with track_started", bool(seen), fresh.state, sorted(fresh.info), fresh.ready())
    print("started info", isinstance(fresh.info["pid"], int), isinstance(fresh.info["hostname"], str))
    store.set("progress:tracked:go", 1)
    print("tracked final", result.get(timeout=20), result.state)

    result = custom_final_state.delay()
    seen = wait_until(lambda: AsyncResult(result.id).state != states.PENDING)
    time.sleep(0.5)  # Ignore() must not overwrite the custom state afterwards
    fresh = AsyncResult(result.id)
    print("custom state then Ignore", bool(seen), fresh.state, fresh.info, fresh.ready())

    crunch.update_state(task_id="progress-from-the-client", state="PROGRESS", meta={"current": 1, "total": 9})
    fresh = AsyncResult("progress-from-the-client")
    print("update_state from the client", fresh.state, fresh.info, fresh.ready())
    crunch.update_state(task_id="progress-from-the-client", state="SUCCESS", meta={"done": True})
    fresh = AsyncResult("progress-from-the-client")
    print("update_state SUCCESS from the client", fresh.state, fresh.result, fresh.ready(), fresh.get(timeout=5))

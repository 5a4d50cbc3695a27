"""The chaos test: a few hundred tasks while work processes and a whole worker are killed with -9.

What must hold (README, "Delivery guarantees"):

* none lost: every task reaches a final state (SUCCESS, or FAILURE with WorkerLostError for
  a task not safe to repeat whose worker died under it);
* none run twice: every run of a task beyond its first follows a recovery of a run whose
  worker died (the job's redelivery count), which at-least-once delivery allows for a task
  declared safe to repeat (``acks_late`` + ``reject_on_worker_lost``); no other extra run;
* no final state overwritten: after a task's first final state, no state is ever published
  for it again (every stored state is published, so the channel sees every write).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time

from tests import chaos_tasks
from tests.support import wait_until
from tests.support_chaos import StateLog, children_of, final_or_none, redelivered, runs

TASKS = 300


def test_no_task_is_lost_run_twice_or_overwritten_while_workers_are_killed(chaos_app, worker_process, redis_conn):
    # Given three workers of two work processes each, and a few hundred tasks, one in ten not safe to repeat
    first = worker_process("-P", "prefork", "-c", "2", app="tests.chaos_tasks", workers=2)
    second = worker_process("-P", "prefork", "-c", "2", app="tests.chaos_tasks", workers=2)
    worker_process("-P", "prefork", "-c", "2", app="tests.chaos_tasks", workers=2)
    log = StateLog(chaos_app.connection)
    chance = random.Random(18)
    results = [chaos_tasks.counted_once.delay(0.1) if index % 10 == 0
               else chaos_tasks.counted.delay(chance.uniform(0.02, 0.3), 2) for index in range(TASKS)]
    ids = [result.id for result in results]
    started = time.monotonic()
    # When work processes are killed with -9 four times, then a whole worker (supervisor included)
    for _ in range(4):
        time.sleep(1.0)
        victims = children_of(second.pid)
        if victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(chance.choice(victims), signal.SIGKILL)
    os.killpg(first.pid, signal.SIGKILL)
    try:
        wait_until(lambda: all(final_or_none(chaos_app, ids).values()), timeout=90, interval=0.5)
        elapsed = time.monotonic() - started
        time.sleep(1.0)  # any late write would be published by now
    finally:
        log.close()
    # Then none is lost
    finals = final_or_none(chaos_app, ids)
    lost = [task_id for task_id, status in finals.items() if status is None]
    assert lost == [], f"{len(lost)} lost after {elapsed:.0f} s"
    # And none ran more often than its worker deaths explain
    extra = {task_id: (runs(redis_conn, task_id), redelivered(redis_conn, task_id)) for task_id in ids
             if runs(redis_conn, task_id) > 1 + redelivered(redis_conn, task_id)}
    assert extra == {}, "runs beyond 1 + redeliveries (runs, redeliveries)"
    # And no final state was followed by another
    assert log.overwritten() == {}
    # And the kills did hit running tasks (else this test proves nothing)
    interrupted = sum(runs(redis_conn, task_id) - int(redis_conn.hget(chaos_tasks.DONE, task_id) or 0)
                      for task_id in ids)
    print(f"chaos: {TASKS} tasks in {elapsed:.1f} s, {interrupted} runs interrupted, "
          f"{sum(status != 'SUCCESS' for status in finals.values())} WorkerLostError")
    assert interrupted >= 2
    # And only tasks not safe to repeat failed, as WorkerLostError
    for result in results:
        if finals[result.id] != "SUCCESS":
            assert result.task_name == chaos_tasks.counted_once.name
            assert type(result.result).__name__ == "WorkerLostError"

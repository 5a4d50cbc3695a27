"""``/metrics``: queue lengths, tasks by state, run times, outcomes and workers, for Prometheus."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from tests import compat_tasks
from tests.conftest import wait_for


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_count_waiting_tasks_per_queue_and_state(client, celery_app):
    for _ in range(3):
        compat_tasks.add.delay(1, 1)
    compat_tasks.add.apply_async((1, 1), queue="other")
    samples = scrape(client)
    assert samples[("jobs_queue_length", (("queue", "celery"),))] == 3
    assert samples[("jobs_tasks", (("queue", "other"), ("state", "queued")))] == 1
    assert samples[("jobs_tasks", (("queue", "celery"), ("state", "failed")))] == 0


def test_metrics_show_run_times_and_outcomes_reported_by_the_workers(client, celery_app, worker_process):
    # Given a worker that ran a successful, a failing and a slow task
    worker_process("-c", "1")
    compat_tasks.add.delay(1, 2).get(timeout=15)
    compat_tasks.sleep.delay(0.3).get(timeout=15)
    failed = compat_tasks.fail.delay()
    wait_for(failed.ready, timeout=15)
    # When the workers' counters have been flushed (every heartbeat, 5 s)
    deadline_key = ("jobs_tasks_completed_total", (("outcome", "failed"), ("task", "tests.compat_tasks.fail")))
    wait_for(lambda: scrape(client).get(deadline_key) == 1, timeout=15, interval=0.5)
    samples = scrape(client)
    # Then outcomes and the run-time histogram are there, per task
    assert samples[("jobs_tasks_completed_total", (("outcome", "succeeded"), ("task", "tests.compat_tasks.add")))] == 1
    sleep_buckets = {labels: value for (name, labels), value in samples.items()
                     if name == "jobs_task_runtime_seconds_bucket" and ("task", "tests.compat_tasks.sleep") in labels}
    assert sleep_buckets[(("le", "0.25"), ("task", "tests.compat_tasks.sleep"))] == 0
    assert sleep_buckets[(("le", "0.5"), ("task", "tests.compat_tasks.sleep"))] == 1
    assert samples[("jobs_workers", ())] >= 1
    assert samples[("jobs_seconds_since_last_dequeue", ())] < 60


def test_metrics_stay_cheap_with_a_hundred_thousand_tasks_in_redis(client, celery_app, redis_conn):
    # Given 100,000 finished tasks in the registry
    with redis_conn.pipeline(transaction=False) as pipe:
        for chunk in range(10):
            pipe.zadd("rq:finished:celery", {f"task-{chunk}-{i}": time.time() + 3600 for i in range(10_000)})
        pipe.sadd("rq:queues", "rq:queue:celery")
        pipe.execute()
    # When /metrics is scraped, it counts them without reading them
    started = time.perf_counter()
    samples = scrape(client)
    assert samples[("jobs_tasks", (("queue", "celery"), ("state", "finished")))] == 100_000
    assert time.perf_counter() - started < 2

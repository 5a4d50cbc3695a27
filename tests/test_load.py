"""A small run of the load test (bench/load_test.py): through the API, every task exactly once.

Only the counts are checked; the speed it prints is for the benchmark, not for CI.
"""

from __future__ import annotations

from bench.load_test import run


def test_every_task_submitted_through_the_api_succeeds_exactly_once(tmp_path, start_redis_server):
    # (start_redis_server only makes this test skip or fail like the others when no Redis binary exists)
    result = run(tasks=300, clients=4, workdir=str(tmp_path), timeout=120)
    assert (result["submitted"], result["refused"]) == (300, 0), result["first_errors"]
    assert (result["lost"], result["duplicated"], result["not_success"]) == (0, 0, 0), result

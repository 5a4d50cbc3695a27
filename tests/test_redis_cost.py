"""What a task costs in Redis: one script call to send it, one to record its success.

Counted with ``INFO commandstats`` on the test's own Redis (``bench.commands_per_task`` lists the
whole cost, command by command). Fewer round trips and commands per task are issue 19's point.
"""

from __future__ import annotations

from tests import compat_tasks


def _calls(conn) -> dict[str, int]:
    return {key.removeprefix("cmdstat_"): value["calls"] for key, value in conn.info("commandstats").items()}


def _counted(conn, action) -> dict[str, int]:
    before = _calls(conn)
    action()
    after = _calls(conn)
    return {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}


def test_a_plain_send_is_one_script_call_with_no_transaction_around_it(celery_app, redis_conn):
    # When a task is sent with no eta and no parent
    counted = _counted(redis_conn, lambda: compat_tasks.add.delay(1, 2))
    # Then its job and its index entry went out as one script, without MULTI/EXEC
    assert counted.get("eval") == 1 and "evalsha" not in counted
    assert "multi" not in counted and "exec" not in counted
    assert counted.get("hset") == 2 and counted.get("zadd") == 3 and counted.get("rpush") == 1


def test_a_success_and_its_result_are_recorded_by_one_script_call(celery_app, burst_worker, redis_conn):
    # Given a sent task
    result = compat_tasks.add.delay(2, 3)
    # When a worker runs it
    counted = _counted(redis_conn, burst_worker)
    # Then its result was published once, from the finish script (FENCED_STORE, an EVAL, is not used)
    assert result.get(timeout=5) == 5
    # (the burst worker's own start and stop cost many more commands: only these are the task's)
    assert counted.get("publish") == 1 and counted.get("zrem") == 1
    assert "eval" not in counted

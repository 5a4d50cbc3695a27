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
    # Given a Redis that has seen the send script once (the first send gives its text: EVAL)
    compat_tasks.add.delay(0, 0)
    # When a task is sent with no eta and no parent
    counted = _counted(redis_conn, lambda: compat_tasks.add.delay(1, 2))
    # Then its job and its index entry went out as one script, by its SHA1, without MULTI/EXEC
    assert counted.get("evalsha") == 1 and "eval" not in counted
    assert "multi" not in counted and "exec" not in counted
    assert counted.get("hset") == 2 and counted.get("zadd") == 3 and counted.get("rpush") == 1


def test_a_send_to_a_queue_that_holds_tasks_costs_eight_commands_inside_redis(celery_app, redis_conn):
    # Given a queue that already holds a task (and an index trimmed on an earlier send)
    compat_tasks.add.delay(0, 0)
    celery_app.conf.task_index_trim_every = 1000
    # When another task is sent
    counted = _counted(redis_conn, lambda: compat_tasks.add.delay(1, 2))
    # Then: the EVAL, three index ZADDs, the index hash and its expiry, the job hash, the push
    # (besides the result's SUBSCRIBE, and the UNSUBSCRIBE of the previous one's, as Celery does);
    # no check for a repeated send (ZADD CH tells) and no SADD (the queue is registered)
    sent = {name: calls for name, calls in counted.items() if name not in ("info", "subscribe", "unsubscribe")}
    assert sum(sent.values()) == 8, counted
    assert "sadd" not in counted and "hget" not in counted


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


def test_a_send_after_redis_forgot_its_scripts_gives_the_script_again(celery_app, redis_conn):
    # Given a Redis that knew the send script, then forgot it (as after a restart)
    compat_tasks.add.delay(0, 0)
    redis_conn.script_flush()
    # When a task is sent
    counted = _counted(redis_conn, lambda: compat_tasks.add.delay(1, 2))
    # Then its SHA1 was refused and the script's text sent once: the task is queued once
    assert counted.get("eval") == 1
    assert redis_conn.llen("rq:queue:celery") == 2

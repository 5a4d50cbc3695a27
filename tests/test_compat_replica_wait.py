"""Which sends wait for replicas (``wait_for_replicas``), on a Redis that has none, so a waited send fails.

What must hold (README, "More machines, and Redis Sentinel"):

* a caller's send waits, a group's or a chord's header included: NotReplicatedError names the
  tasks, and they are queued all the same;
* what a task sends itself, in a worker (callbacks, chain steps, errbacks, a chord's body), does
  not wait: every follow-up is sent, and the task ends as it ran.
"""

from __future__ import annotations

import pytest
from rq.job import Job

from app.celery_compat import chord, group
from app.celery_compat.exceptions import NotReplicatedError
from tests import compat_tasks


def test_a_plain_delay_by_a_caller_waits_for_replicas_too(waiting_app, redis_conn):
    # A plain send is one script call, sent without a pipeline when nothing waits: not when something does
    with pytest.raises(NotReplicatedError, match="0 of 1 replica") as raised:
        compat_tasks.add.delay(1, 2)
    assert Job.exists(raised.value.task_ids[0], connection=redis_conn)


def test_a_one_command_send_refuses_a_second_command(celery_app):
    # The stand-in for a plain send's pipeline: a second command would not be atomic with the first
    pipe = celery_app.send_pipeline(transaction=False, one_command=True)
    pipe.eval("return 1", 0)
    with pytest.raises(RuntimeError, match="one command"):
        pipe.eval("return 2", 0)
    assert celery_app.execute_send(pipe, []) == [1]


def test_a_group_sent_by_a_caller_waits_for_replicas_and_names_its_tasks(waiting_app, redis_conn):
    with pytest.raises(NotReplicatedError, match="0 of 1 replica") as raised:
        group(compat_tasks.add.s(1, 2), compat_tasks.add.s(3, 4)).apply_async()
    assert len(raised.value.task_ids) == 2
    assert all(Job.exists(task_id, connection=redis_conn) for task_id in raised.value.task_ids)


def test_a_chord_header_sent_by_a_caller_waits_for_replicas(waiting_app, redis_conn):
    with pytest.raises(NotReplicatedError, match="0 of 1 replica") as raised:
        chord([compat_tasks.add.s(1, 2), compat_tasks.add.s(3, 4)], compat_tasks.echo.s()).apply_async()
    assert len(raised.value.task_ids) == 2
    assert all(Job.exists(task_id, connection=redis_conn) for task_id in raised.value.task_ids)


def test_what_a_task_sends_in_the_worker_does_not_wait_so_every_follow_up_is_sent(waiting_app, burst_worker,
                                                                                   redis_conn):
    # Given a task with two callbacks, then a step, then a chord, whose send waited in vain (it is queued)
    first, a, b, body = compat_tasks.add.s(1, 2), compat_tasks.add.s(10), compat_tasks.add.s(20), compat_tasks.echo.s()
    first.link(a)
    first.link(b)
    first_result, a_result, b_result, body_result = first.freeze(), a.freeze(), b.freeze(), body.freeze()
    flow = first | compat_tasks.add.s(100) | chord([compat_tasks.add.si(1, 1)], body)
    with pytest.raises(NotReplicatedError):
        flow.apply_async()
    # When a worker runs everything, on the same Redis with the same settings
    burst_worker()
    # Then every callback, step and the chord ran, and the first task is a success for RQ as for Celery
    assert first_result.state == "SUCCESS"
    assert Job.fetch(first_result.id, connection=redis_conn).get_status() == "finished"
    assert (a_result.get(timeout=1), b_result.get(timeout=1), body_result.get(timeout=1)) == (13, 23, [2])

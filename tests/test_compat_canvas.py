"""The canvas: chain, group and chord, with Celery's result order and failure semantics."""

from __future__ import annotations

import pytest

from app.celery_compat import chain, chord, group, signature, states
from app.celery_compat.exceptions import ChordError
from app.celery_compat.result import AsyncResult, GroupResult
from tests import compat_tasks as t


def test_a_chain_passes_each_result_to_the_next_task(celery_app, burst_worker):
    result = chain(t.add.s(1, 2), t.add.s(3), t.mul.s(10))()
    burst_worker()
    assert result.get(timeout=5) == 60
    assert (result.parent.get(timeout=5), result.parent.parent.get(timeout=5)) == (6, 3)


def test_the_pipe_operator_and_immutable_signatures_compose_a_chain(celery_app, burst_worker):
    result = (t.add.s(1, 1) | t.echo.si("fresh") | t.echo.s())()
    burst_worker()
    assert result.get(timeout=5) == "fresh"


def test_when_a_chain_step_fails_the_rest_never_runs_and_fails_with_the_same_error(
        celery_app, burst_worker, redis_conn):
    # Given a chain whose middle step fails
    result = (t.add.s(1, 1) | t.fail.si("middle") | t.remember.s("after-failure"))()
    burst_worker()
    # Then the last step never ran, yet its result is ready: FAILURE with the middle step's error
    assert redis_conn.exists("record:after-failure") == 0
    assert AsyncResult(result.id).state == states.FAILURE
    with pytest.raises(ValueError, match="middle"):
        result.get(timeout=2)


def test_a_group_runs_its_members_and_lists_their_results_in_order(celery_app, burst_worker):
    result = group(t.add.s(i, i) for i in range(10))()
    assert isinstance(result, GroupResult)
    assert celery_app.queue("celery").count == 10
    burst_worker()
    assert result.get(timeout=5) == [2 * i for i in range(10)]
    assert (result.completed_count(), result.ready(), result.successful(), result.failed()) == (10, True, True, False)


def test_a_group_reraises_the_first_failure_unless_propagate_is_false(celery_app, burst_worker):
    result = group(t.add.s(1, 1), t.fail.si("member"), t.add.s(2, 2))()
    burst_worker()
    with pytest.raises(ValueError, match="member"):
        result.get(timeout=5)
    values = result.get(timeout=5, propagate=False)
    assert values[0] == 2 and isinstance(values[1], ValueError) and values[2] == 4
    assert result.failed() and not result.successful()


def test_a_saved_group_result_is_restored_by_its_id(celery_app, burst_worker):
    result = group(t.add.s(1, 2), t.add.s(3, 4))()
    result.save()
    burst_worker()
    assert GroupResult.restore(result.id).get(timeout=5) == [3, 7]


def test_a_chord_body_gets_the_header_results_in_header_order(celery_app, burst_worker):
    result = chord([t.add.s(i, 1) for i in range(5)])(t.collect.s("ordered"))
    burst_worker()
    assert result.get(timeout=5) == [1, 2, 3, 4, 5]


def test_group_piped_into_a_task_is_a_chord(celery_app, burst_worker):
    result = (group(t.add.s(1, 1), t.add.s(2, 2)) | t.tsum.s() | t.mul.s(3))()
    burst_worker()
    assert result.get(timeout=5) == 18


def test_a_failed_header_task_fails_the_body_with_chord_error_and_get_raises_the_original(
        celery_app, burst_worker, redis_conn):
    result = chord([t.add.s(1, 1), t.fail.si("header")], t.collect.s("never"))()
    burst_worker()
    assert redis_conn.exists("record:never") == 0
    assert result.state == states.FAILURE
    assert isinstance(result.result, ChordError) and "raised ValueError('header')" in str(result.result)
    with pytest.raises(ValueError, match="header"):
        result.get(timeout=5)


def test_a_chord_of_fifty_across_two_workers_calls_back_exactly_once(celery_app, worker_process, redis_conn):
    # Given two worker processes
    worker_process("-c", "2", "-P", "solo", workers=2)
    # When a chord of 50 header tasks runs on both
    result = chord([t.add.s(i, 0) for i in range(50)])(t.collect.s("fifty"))
    # Then the body ran once, with the 50 results in header order
    assert result.get(timeout=60) == list(range(50))
    assert redis_conn.lrange("record:fifty", 0, -1) == [",".join(str(i) for i in range(50)).encode()]


def test_signatures_are_json_and_can_be_rebuilt_and_sent_by_name(celery_app, burst_worker):
    sig = signature("tests.compat_tasks.add", args=(2,), kwargs={"y": 5})
    rebuilt = signature(dict(sig))
    assert rebuilt == sig
    result = rebuilt.delay()
    burst_worker()
    assert result.get(timeout=5) == 7


def test_freeze_gives_the_result_before_sending(celery_app, burst_worker):
    sig = t.add.s(1, 1)
    frozen = sig.freeze()
    sent = sig.apply_async()
    assert frozen.id == sent.id

"""Nesting rules of the canvas, as in Celery 5.7: any chain, group and chord inside any other.

A chord's body runs exactly once, when every leaf of its header is done (the last step of a
header chain, every member of a header group, the body of a header chord), with the header's
results in header order. Whatever cannot run any more ends FAILURE at once: nothing waits for ever.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from app.celery_compat import chain, chord, group, keys, signals, signature, states
from app.celery_compat.canvas import StampingVisitor
from app.celery_compat.exceptions import ChordError, NotRegistered, WorkerLostError
from app.celery_compat.exceptions import TimeoutError as CeleryTimeoutError
from app.celery_compat.result import AsyncResult, GroupResult, ResultSet
from tests import compat_canvas_tasks as ct
from tests import compat_tasks as t


def test_groups_nested_in_a_group_are_unrolled_into_one_flat_result(celery_app, burst_worker):
    result = group(group(t.add.s(1, 1), t.add.s(2, 2)), t.add.s(3, 3))()
    burst_worker()
    assert result.get(timeout=5) == [2, 4, 6]


def test_a_chord_header_of_chains_gives_the_body_each_chains_last_result_in_order(
        celery_app, burst_worker, redis_conn):
    header = [t.add.s(1, 1) | t.mul.s(10), t.add.s(2, 2) | t.mul.s(100) | t.add.s(1)]
    result = chord(header)(t.collect.s("chains"))
    burst_worker()
    assert result.get(timeout=5) == [20, 401]
    assert redis_conn.lrange("record:chains", 0, -1) == [b"20,401"]  # the body ran once


def test_a_chord_in_a_chord_header_counts_with_its_body(celery_app, burst_worker):
    inner = chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s())
    result = chord([inner, t.add.s(10, 10)])(t.collect.s("outer"))
    burst_worker()
    assert result.get(timeout=5) == [6, 20]


def test_a_chain_ending_in_a_group_inside_a_chord_header_gives_a_nested_list(celery_app, burst_worker):
    header = [t.add.s(1, 1) | group(t.mul.s(2), t.mul.s(3)), t.add.s(5, 5)]
    result = chord(header)(t.collect.s("nested"))
    burst_worker()
    assert result.get(timeout=5) == [[4, 6], 10]


def test_a_chord_body_that_is_a_group_gets_the_header_results_in_every_member(celery_app, burst_worker):
    result = chord([t.add.s(1, 1), t.add.s(2, 2)], group(t.tsum.s(), t.collect.s("member")))()
    burst_worker()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=5) == [6, [2, 4]]


def test_a_chord_body_that_is_a_chain_runs_its_steps_after_the_header(celery_app, burst_worker):
    result = chord([t.add.s(1, 1), t.add.s(2, 2)], t.tsum.s() | t.mul.s(10))()
    burst_worker()
    assert result.get(timeout=5) == 60


def test_a_chord_inside_a_chain_passes_its_body_result_to_the_next_step(celery_app, burst_worker):
    result = chain(t.add.s(1, 1), chord([t.mul.s(2), t.mul.s(3)], t.tsum.s()), t.mul.s(10))()
    burst_worker()
    assert result.get(timeout=5) == 100
    assert result.parent.get(timeout=5) == 10  # the chord's body


def test_a_chain_whose_last_step_is_a_group_returns_the_groups_results(celery_app, burst_worker):
    result = chain(t.add.s(1, 1), group(t.mul.s(2), t.mul.s(3)))()
    burst_worker()
    assert result.get(timeout=5) == [4, 6]


def test_a_group_between_chain_steps_waits_for_all_its_members(celery_app, burst_worker):
    result = chain(t.add.s(1, 1), group(t.mul.s(2), t.mul.s(3)), t.tsum.s(), t.mul.s(2))()
    burst_worker()
    assert result.get(timeout=5) == 20


def test_empty_groups_in_a_chain_are_skipped(celery_app, burst_worker):
    result = chain(t.add.s(1, 1), group([]), t.mul.s(5))()
    burst_worker()
    assert result.get(timeout=5) == 10


def test_a_chord_with_an_empty_header_runs_its_body_with_no_results(celery_app, burst_worker):
    result = chord([], t.collect.s("empty"))()
    burst_worker()
    assert result.get(timeout=5) == []


def test_a_chain_failing_in_a_chord_header_fails_the_body_with_chord_error(celery_app, burst_worker, redis_conn):
    header = [t.add.s(1, 1), t.fail.si("midway") | t.add.s(1) | t.add.s(2)]
    result = chord(header)(t.collect.s("never"))
    burst_worker()
    assert result.state == states.FAILURE and isinstance(result.result, ChordError)
    assert redis_conn.exists("record:never") == 0


def test_a_failed_inner_chord_fails_the_outer_chord_too(celery_app, burst_worker, redis_conn):
    inner = chord([t.fail.si("deep"), t.add.s(1, 1)], t.tsum.s())
    result = chord([inner, t.add.s(2, 2)])(t.collect.s("outer-never"))
    burst_worker()
    assert result.state == states.FAILURE and isinstance(result.result, ChordError)
    assert redis_conn.exists("record:outer-never") == 0


def test_a_header_task_missing_on_the_worker_fails_the_chord_instead_of_waiting(celery_app, burst_worker):
    header = [t.add.s(1, 1), signature("tests.compat_tasks.no_such_task")]
    result = chord(header)(t.tsum.s() | t.mul.s(2))
    burst_worker()
    assert result.state == states.FAILURE
    assert isinstance(result.parent.result, ChordError)  # the body; the chain step after it fails the same
    assert "NotRegistered" in str(result.parent.result)


def test_a_chain_step_missing_on_the_worker_fails_the_rest_of_the_chain(celery_app, burst_worker):
    result = chain(signature("tests.compat_tasks.no_such_task"), t.add.s(1), t.mul.s(2))()
    burst_worker()
    with pytest.raises(NotRegistered):
        result.get(timeout=5)


def test_a_chord_leaf_counted_twice_counts_once_and_a_retried_last_count_still_claims(celery_app):
    backend = celery_app.backend
    assert backend.chord_part("g1", "a", 2) is False
    assert backend.chord_part("g1", "a", 2) is False  # a repeat (a call retried after a lost reply)
    assert backend.chord_part("g1", "b", 2) is True  # completes the header: sends the body
    assert backend.chord_part("g1", "b", 2) is True  # the same call retried: still its claim
    assert backend.chord_part("g1", "a", 2) is False  # any other leaf: never a second body


def test_chord_state_expires_with_the_results(celery_app, redis_conn):
    celery_app.conf.result_expires = 600
    celery_app.backend.chord_part("g2", "a", 1)
    assert 0 < redis_conn.ttl(keys.chord_counter("g2")) <= 600
    assert 0 < redis_conn.ttl(keys.chord_claim("g2")) <= 600


def test_a_task_replaced_by_a_chain_keeps_its_id_and_the_chain_it_was_in(celery_app, burst_worker):
    first = ct.replaced_by_chain.s(4)
    first.freeze()
    result = chain(first, t.mul.s(2))()
    burst_worker()
    assert result.get(timeout=5) == 100
    assert result.parent.id == first.id and result.parent.get(timeout=5) == 50


def test_a_chord_header_task_replaced_by_a_group_gives_the_groups_list(celery_app, burst_worker):
    result = chord([ct.replaced_by_group.s(10), t.add.s(1, 1)])(t.collect.s("replaced"))
    burst_worker()
    assert result.get(timeout=5) == [[11, 12], 2]


def test_add_to_chord_appends_results_after_the_header(celery_app, burst_worker):
    result = chord([ct.adds_to_its_chord.s(1), t.add.s(2, 2)])(t.collect.s("grown"))
    burst_worker()
    assert result.get(timeout=5) == [1, 4, 101, 6]


def test_the_same_signature_listed_many_times_runs_as_many_tasks(celery_app, burst_worker):
    repeated = (t.add.si(1, 1),) * 5
    result = group(chord(repeated, t.tsum.s()), chord((group(repeated),), t.tsum.s()))()
    burst_worker()
    assert result.get(timeout=5) == [10, 10]


def test_map_starmap_and_chunks_run_their_items_in_built_in_tasks(celery_app, burst_worker):
    in_group = group(t.add.starmap([(1, 1), (2, 2)]), t.echo.map(["a", "b"]))()
    in_chain = chain(t.add.si(1, 1), t.add.starmap([(3, 3)]))()
    parts = t.add.chunks([(i, i) for i in range(5)], 2)()
    burst_worker()
    assert in_group.get(timeout=5) == [[2, 4], ["a", "b"]]
    assert in_chain.get(timeout=5) == [6]
    assert parts.get(timeout=5) == [[0, 2], [4, 6], [8]]


def test_a_failed_chord_calls_the_bodys_errbacks_in_both_of_celerys_forms(celery_app, burst_worker, redis_conn):
    sig = chord([t.fail.si("header"), t.add.s(1, 1)], t.tsum.s())
    sig.link_error(ct.records_request_and_error.s("inline"))
    sig.link_error(t.on_error_queued.s("queued"))
    result = sig()
    burst_worker()
    assert result.state == states.FAILURE
    assert redis_conn.lrange("record:inline", 0, -1) == [f"{result.id} ChordError".encode()]
    assert redis_conn.lrange("record:queued", 0, -1) == [result.id.encode()]


def test_a_frozen_chord_applied_twice_runs_its_body_twice(celery_app, burst_worker, redis_conn):
    sig = chord([t.add.s(1, 1), t.add.s(2, 2)], t.collect.s("twice"))
    sig.freeze()
    first = sig.apply_async()
    burst_worker()
    second = sig.apply_async()
    burst_worker()
    assert first.id == second.id and second.get(timeout=5) == [2, 4]
    assert redis_conn.lrange("record:twice", 0, -1) == [b"2,4", b"2,4"]


def test_a_generator_header_is_sent_as_it_is_consumed(celery_app, burst_worker):
    queued_when_yielding = []

    def header():
        for i in range(4):
            queued_when_yielding.append(celery_app.queue("celery").count)
            yield t.add.s(i, i)

    sig = chord(header(), t.collect.s("streamed"))
    assert queued_when_yielding == []  # not consumed by building the chord
    result = sig()
    # Each task is queued once the next is yielded; the last waits until the header's size is known.
    assert queued_when_yielding == [0, 0, 1, 2]
    burst_worker()
    assert result.get(timeout=5) == [0, 2, 4, 6]


def test_an_empty_generator_header_runs_the_body_with_no_results(celery_app, burst_worker):
    result = chord((t.add.s(i, i) for i in range(0)), t.collect.s("none"))()
    burst_worker()
    assert result.get(timeout=5) == []


def test_each_step_of_a_chain_carries_its_own_priority_to_the_worker(celery_app, burst_worker):
    result = chain(ct.delivery_priority.si().set(priority=3), ct.delivery_priority.si().set(priority=5))()
    burst_worker()
    assert (result.parent.get(timeout=5), result.get(timeout=5)) == (3, 5)


class _Stamp42(StampingVisitor):
    def on_signature(self, sig, **headers):
        return {"stamp": 42}


def test_stamps_reach_every_task_of_a_canvas_and_its_request(celery_app, burst_worker):
    received = []

    def on_received(request=None, **kwargs):
        received.append((request.task_name, {name: request.stamps[name] for name in request.stamped_headers}))

    canvas = chord([t.add.s(1, 1), t.add.s(2, 2) | t.mul.s(10)], t.tsum.s())
    canvas.link_error(t.on_error_queued.s("never"))
    canvas.stamp(visitor=_Stamp42(), origin="test")
    signals.task_received.connect(on_received)
    try:
        result = canvas()
        burst_worker()
        assert result.get(timeout=5) == 42
    finally:
        signals.task_received.disconnect(on_received)
    assert len(received) == 4 and all(stamps == {"stamp": 42, "origin": "test"} for _, stamps in received)
    errback = canvas.body.options["link_error"][0]
    assert errback["options"]["stamp"] == 42 and "stamp" in errback["options"]["stamped_headers"]


def test_a_header_task_whose_worker_keeps_dying_fails_the_chord(celery_app, worker_process):
    # Given a header task that kills its worker process on every delivery, until it is given up
    worker_process("-P", "prefork", "-c", "1")
    result = chord([t.kills_its_worker.si("in-chord"), t.add.s(1, 1)], t.tsum.s())()
    # Then the chord's body fails instead of waiting for a header that will never finish
    with pytest.raises(WorkerLostError):
        result.get(timeout=60)
    assert isinstance(result.result, ChordError)


def test_a_group_body_of_a_failed_chord_fails_each_member_with_the_original_error(celery_app, burst_worker):
    body = group(t.tsum.s(), t.collect.s("never"))
    body.link_error(t.on_error_queued.s("group-errback"))
    result = chain(group(t.add.s(1, 1), t.fail.si("header")), body)()
    burst_worker()
    with pytest.raises(ValueError, match="header"):
        result.get(timeout=5)
    assert all(isinstance(member.result, ValueError) for member in result.results)
    assert sorted(celery_app.connection.lrange("record:group-errback", 0, -1)) == sorted(
        member.id.encode() for member in result.results)


def test_join_native_with_a_zero_timeout_polls_once(celery_app):
    results = ResultSet([AsyncResult(f"never-{i}") for i in range(3)])
    started = time.monotonic()
    with pytest.raises(CeleryTimeoutError):
        results.join_native(timeout=0, interval=30)
    assert time.monotonic() - started < 5


def test_an_immutable_errback_keeps_its_own_arguments(celery_app, burst_worker, redis_conn):
    # remember(value, key) has two parameters: Celery calls it in place, as an immutable signature
    sig = t.fail.si("boom")
    sig.link_error(t.remember.si("errback ran", "immutable-errback"))
    sig.delay()
    burst_worker()
    assert redis_conn.lrange("record:immutable-errback", 0, -1) == [b"errback ran"]


def test_signatures_inside_a_message_keep_their_arguments_types(celery_app, burst_worker):
    sig = t.echo.si(b"raw")
    sig.link(t.collect.si([b"in a callback"], "typed"))
    result = chain(sig, t.echo.si(Decimal("1.5")))()
    chord_result = chord([t.echo.si(b"x")], t.echo.s())()
    burst_worker()
    assert result.get(timeout=5) == Decimal("1.5")
    assert chord_result.get(timeout=5) == [b"x"]
    assert celery_app.connection.lrange("record:typed", 0, -1) == [b"b'in a callback'"]


def test_link_options_of_a_chain_or_chord_follow_its_end_and_are_not_kept(celery_app, burst_worker, redis_conn):
    body = t.tsum.s()
    body.link(t.remember.si("own", "links"))
    sig = chord([t.add.si(1, 1), t.add.si(2, 2)], body)
    first = sig.apply_async(link=t.remember.s("links"))
    ending_in_chord = chain(t.add.si(1, 1), chord([t.add.s(10), t.add.s(20)], t.tsum.s()))
    second = ending_in_chord.apply_async(link=t.remember.s("chain-links"))
    burst_worker()
    assert (first.get(timeout=5), second.get(timeout=5)) == (6, 34)
    assert sorted(redis_conn.lrange("record:links", 0, -1)) == [b"6", b"own"]
    assert redis_conn.lrange("record:chain-links", 0, -1) == [b"34"]
    assert sig.body.options["link"] == [dict(t.remember.si("own", "links"))]  # applying added nothing to sig


def test_a_link_set_as_a_single_dictionary_is_stamped_and_still_runs(celery_app, burst_worker, redis_conn):
    sig = t.add.si(1, 1)
    sig.options["link"] = dict(t.remember.si("linked", "dict-link"))
    sig.stamp(visitor=_Stamp42())
    sig.delay()
    burst_worker()
    assert sig.options["link"][0]["options"]["stamp"] == 42
    assert redis_conn.lrange("record:dict-link", 0, -1) == [b"linked"]


def test_a_failed_chord_body_lists_its_queued_errbacks_as_children(celery_app, burst_worker):
    sig = chord([t.fail.si("header")], t.tsum.s())
    sig.link_error(t.on_error_queued.s("children"))
    result = sig()
    burst_worker()
    (errbacks,) = result.children
    assert isinstance(errbacks, GroupResult) and errbacks.get(timeout=5) == [None]


def test_a_groups_errbacks_join_each_members_own(celery_app, burst_worker, redis_conn):
    member = t.fail.si("member")
    member.link_error(t.on_error_queued.s("own"))
    sig = group(member, t.add.s(1, 1)).set(link_error=t.on_error_queued.s("group"))
    result = sig()
    burst_worker()
    failed_id = result.results[0].id.encode()
    assert redis_conn.lrange("record:own", 0, -1) == [failed_id]
    assert redis_conn.lrange("record:group", 0, -1) == [failed_id]


def test_an_errback_set_as_one_signature_runs_when_the_chord_fails(celery_app, burst_worker, redis_conn):
    first = t.tsum.s().set(link_error=t.on_error_queued.s("single"))
    result = chord([t.add.si(1, 1), t.fail.si("header")], group(first, t.tsum.s()))()
    burst_worker()
    assert redis_conn.lrange("record:single", 0, -1) == [result.results[0].id.encode()]


def test_a_chord_link_error_option_joins_a_group_bodys_own_errback(celery_app, burst_worker, redis_conn):
    body = group(t.fail.s(), t.tsum.s()).set(link_error=t.on_error_queued.s("both"))
    result = chord([t.add.si(1, 1)], body).apply_async(link_error=t.on_error_queued.s("both"))
    burst_worker()
    with pytest.raises(ValueError):
        result.get(timeout=5)
    assert redis_conn.lrange("record:both", 0, -1) == [result.results[0].id.encode()] * 2


def test_on_error_returns_the_signature_and_link_error_the_errback(celery_app):
    errback = t.on_error_queued.s("x")
    canvases = (t.add.s(1, 1), chain(t.add.s(1, 1), t.mul.s(2)), group(t.add.s(1, 1)),
                chord([t.add.s(1, 1)], t.tsum.s()))
    for sig in canvases:
        assert sig.on_error(errback) is sig
        assert sig.link_error(errback) is errback

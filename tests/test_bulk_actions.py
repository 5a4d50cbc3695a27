"""Bulk actions on the task list: retry every failed task, or cancel every waiting one, a filter matches.

Each shows how many tasks it will act on before doing anything, acts on at most a batch per
request, says what it did and what it skipped with why, and goes on from where it stopped.
"""

from __future__ import annotations

from app.celery_compat import keys, states
from app.celery_compat.result import AsyncResult
from app.web import bulk
from app.web.history import Query
from tests import compat_tasks
from tests.support_gunicorn import BASIC, PRODUCTION_SETTINGS


def _text(response) -> str:
    """The page's HTML with runs of white space as one space, as a reader sees the text."""
    return " ".join(response.get_data(as_text=True).split())


def _sent_count(redis_conn, name: str) -> int:
    return redis_conn.zcard(keys.tasks_by_name(name))


def _failed(burst_worker, count: int) -> list[str]:
    ids = [compat_tasks.fail.delay(f"boom {n}").id for n in range(count)]
    burst_worker()
    return ids


def test_the_confirmation_step_counts_the_failed_tasks_and_changes_nothing(client, celery_app, burst_worker,
                                                                            redis_conn):
    # Given three failed tasks and one that succeeded
    _failed(burst_worker, 3)
    compat_tasks.add.delay(1, 2)
    burst_worker()
    # When "Retry all failed" is opened for the whole list
    page = _text(client.get("/tasks/bulk/retry"))
    # Then it says three tasks will be retried, and nothing was sent yet
    assert "3 tasks will be retried" in page and 'id="bulk-confirm"' in page
    assert _sent_count(redis_conn, "tests.compat_tasks.fail") == 3


def test_retry_all_failed_sends_each_celery_task_again_by_name_with_its_arguments(client, celery_app,
                                                                                 burst_worker, redis_conn):
    # Given three failed tasks a Celery program sent, and one that succeeded
    failed = _failed(burst_worker, 3)
    compat_tasks.add.delay(1, 2)
    burst_worker()
    # When the retry is confirmed
    page = _text(client.post("/tasks/bulk/retry", data={}, follow_redirects=True))
    # Then the summary says three were retried, none skipped, and three copies were sent by name
    assert "Retried 3." in page and "skipped" not in page
    assert _sent_count(redis_conn, "tests.compat_tasks.fail") == 6
    # And a worker runs the copies with the same arguments (they fail the same way)
    burst_worker()
    messages = sorted(str(AsyncResult(task_id).info) for task_id in _newest(redis_conn, 3))
    assert messages == sorted(str(AsyncResult(task_id).info) for task_id in failed)


def _newest(redis_conn, count: int) -> list[str]:
    return [member.decode() for member in redis_conn.zrevrange(keys.tasks_by_name("tests.compat_tasks.fail"),
                                                              0, count - 1)]


def test_cancel_all_revokes_only_the_waiting_tasks_the_filter_matches(client, celery_app):
    # Given three waiting tasks on one queue and one on another
    here = [compat_tasks.sleep.apply_async((10,), queue="slow").id for _ in range(3)]
    elsewhere = compat_tasks.sleep.apply_async((10,), queue="other").id
    # When "Cancel all" is confirmed for queue "slow"
    assert "3 tasks will be cancelled" in _text(client.get("/tasks/bulk/cancel?queue=slow"))
    page = _text(client.post("/tasks/bulk/cancel", data={"queue": "slow"}, follow_redirects=True))
    # Then those three are revoked and the other still waits
    assert "Cancelled 3." in page
    assert [AsyncResult(task_id).state for task_id in here] == [states.REVOKED] * 3
    assert AsyncResult(elsewhere).state == states.PENDING


def test_the_lists_bulk_buttons_act_on_its_time_range_too(client, celery_app, redis_conn):
    # Given three waiting tasks, the first sent an hour before the others
    early, *late = [compat_tasks.sleep.apply_async((10,), queue="slow").id for _ in range(3)]
    sent = redis_conn.zscore(keys.TASKS, early)
    redis_conn.zadd(keys.TASKS, {early: sent - 3600})
    # When the list is filtered to the last half hour and its "Cancel all" button followed
    page = client.get(f"/tasks?since={sent - 1800:.6f}").get_data(as_text=True)
    link = page.split('id="bulk-cancel" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "since=" in link
    # Then the confirmation counts only the two tasks in the range
    assert "2 tasks will be cancelled" in _text(client.get(link))


def test_a_batch_stops_at_its_bound_and_the_next_goes_on_from_there(app, celery_app, burst_worker, monkeypatch):
    # Given three failed tasks and batches of two
    failed = _failed(burst_worker, 3)
    monkeypatch.setattr(bulk, "BATCH", 2)
    with app.test_request_context():
        # When one batch runs, it retries the two newest and says more remain
        first = bulk.run(bulk.RETRY, Query())
        assert first.done == failed[:0:-1] and first.more is not None
        # And the next batch, from its cursor, retries the last one and finds no more
        second = bulk.run(bulk.RETRY, Query(), before=first.more)
    assert second.done == failed[:1] and second.more is None


def test_a_task_that_cannot_be_retried_is_skipped_with_its_reason(client, celery_app, burst_worker, redis_conn):
    # Given two failed tasks, one whose message has expired
    kept, gone = _failed(burst_worker, 2)
    redis_conn.delete(keys.job(gone))
    # When all failed tasks are retried
    page = _text(client.post("/tasks/bulk/retry", data={}, follow_redirects=True))
    # Then one is retried and the other is listed as skipped, with why
    assert "Retried 1, 1 skipped: its message is gone (expired)" in page
    assert f'href="/tasks/{gone}"' in page


def test_a_retry_over_a_state_that_cannot_be_retried_counts_nothing(client, celery_app, burst_worker):
    compat_tasks.add.delay(1, 2)
    burst_worker()
    page = _text(client.get("/tasks/bulk/retry?state=SUCCESS"))
    assert "No failed or cancelled task matches" in page and 'id="bulk-confirm"' not in page


def test_reloading_the_summary_shows_it_again_and_retries_nothing(client, celery_app, burst_worker, redis_conn):
    # Given two failed tasks, retried once: the POST sends the browser to the summary's own address
    _failed(burst_worker, 2)
    response = client.post("/tasks/bulk/retry", data={})
    assert response.status_code == 303
    summary = response.headers["Location"]
    assert "Retried 2." in _text(client.get(summary))
    # When the summary is loaded again (the browser's reload)
    again = client.get(summary)
    # Then it says the same, and no task was sent a second time
    assert again.status_code == 200 and "Retried 2." in _text(again)
    assert _sent_count(redis_conn, "tests.compat_tasks.fail") == 4


def test_an_expired_summary_is_a_404_that_acts_on_nothing(client):
    assert client.get("/tasks/bulk/retry/done/no-such-summary").status_code == 404


def test_an_unknown_bulk_action_is_a_404(client):
    assert client.get("/tasks/bulk/delete").status_code == 404
    assert client.post("/tasks/bulk/delete").status_code == 404


def test_a_bulk_action_needs_the_forms_csrf_token(make_app, redis_url, celery_app, burst_worker, redis_conn):
    # Given failed tasks and the app with CSRF protection on, as in production
    _failed(burst_worker, 2)
    client = make_app(redis_url).test_client()
    # When the retry is posted without the confirmation form's token, it is refused and nothing is sent
    assert client.post("/tasks/bulk/retry", data={}).status_code == 400
    assert _sent_count(redis_conn, "tests.compat_tasks.fail") == 2


def test_outside_development_the_bulk_pages_need_credentials(make_app, redis_url, redis_conn):
    client = make_app(redis_url, **PRODUCTION_SETTINGS).test_client()
    assert client.get("/tasks/bulk/retry").status_code == 401
    assert client.get("/tasks/bulk/retry", headers=BASIC).status_code == 200

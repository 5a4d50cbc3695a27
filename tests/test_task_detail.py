"""A task's page beyond its status: the timeline, its relatives, and Retry with edited arguments."""

from __future__ import annotations

import re
import time

import pytest

from app.celery_compat import chain, keys
from app.celery_compat.result import AsyncResult
from tests import compat_tasks
from tests.support import wait_for


def _text(response) -> str:
    return " ".join(response.get_data(as_text=True).split())


def _timeline(page: str) -> list[str]:
    """The timeline's lines, each as ``what`` (the first words before its time)."""
    block = page[page.index('id="timeline"'):page.index("</ol>")]
    return re.findall(r'<span class="what">([^<]+)</span>', block)


def test_the_timeline_shows_sent_each_retry_with_its_reason_the_last_start_and_the_end(client, celery_app,
                                                                                       burst_worker):
    # Given a task that asked to be retried twice, then failed
    result = compat_tasks.always_retry.delay()
    burst_worker()
    # When its page is opened
    page = _text(client.get(f"/tasks/{result.id}"))
    # Then the timeline lists, in order, its sending, both retries with their reasons, its last run and its end
    assert _timeline(page) == ["Sent", "Retry 1", "Retry 2", "Started (run 3)", "Failed"]
    assert "TransientError: attempt 0" in page and "TransientError: attempt 1" in page


def test_the_api_answers_the_timeline_the_page_shows(client, celery_app, burst_worker):
    # Given a task that retried twice, then failed
    result = compat_tasks.always_retry.delay()
    burst_worker()
    # When its timeline is asked of the API (the task page reads it there when the state changes)
    response = client.get(f"/api/tasks/{result.id}/timeline")
    # Then it holds the page's lines, oldest first, each retry with its reason, and is never cached
    events = response.json["events"]
    assert [event["what"] for event in events] == _timeline(_text(client.get(f"/tasks/{result.id}")))
    assert "TransientError: attempt 0" in events[1]["detail"] and events[0]["detail"] == ""
    assert [event["at"] for event in events] == sorted(event["at"] for event in events)
    assert response.headers["Cache-Control"] == "no-store"


def test_the_api_has_no_timeline_for_an_unknown_task(client):
    assert client.get("/api/tasks/no-such-task/timeline").status_code == 404


def test_a_task_that_never_retried_has_a_plain_timeline(client, celery_app, burst_worker):
    result = compat_tasks.add.delay(1, 2)
    burst_worker()
    assert _timeline(_text(client.get(f"/tasks/{result.id}"))) == ["Sent", "Started", "Succeeded"]


def test_a_chain_step_links_to_its_parent_and_the_parent_to_its_child(client, celery_app, burst_worker):
    # Given a two-step chain a worker ran
    last = chain(compat_tasks.add.s(1, 2), compat_tasks.add.s(3))()
    burst_worker()
    first_id = last.parent.id
    # Then the second step's page links to the first as its parent and root
    page = _text(client.get(f"/tasks/{last.id}"))
    assert f'<dt>Parent</dt> <dd><a href="/tasks/{first_id}">' in page
    assert f'<dt>Root</dt> <dd><a href="/tasks/{first_id}">' in page
    # And the first step's page links to the second as its child
    assert f'<dt>Child</dt> <dd><a href="/tasks/{last.id}">' in _text(client.get(f"/tasks/{first_id}"))


def test_a_group_member_shows_its_group(client, celery_app):
    from app.celery_compat import group

    result = group(compat_tasks.add.s(1, 1), compat_tasks.add.s(2, 2))()
    page = _text(client.get(f"/tasks/{result.results[0].id}"))
    assert f"<dt>Group</dt> <dd><code>{result.id}</code></dd>" in page


def test_retry_with_edited_arguments_sends_the_celery_task_again_with_them(client, celery_app, burst_worker):
    # Given a failed task, whose page offers its arguments to edit
    failed = compat_tasks.fail.delay("boom")
    burst_worker()
    page = client.get(f"/tasks/{failed.id}").get_data(as_text=True)
    assert "&#34;args&#34;: [\n    &#34;boom&#34;\n  ]" in page
    # When it is retried with other arguments
    response = client.post(f"/tasks/{failed.id}/retry-edited", data={"arguments": '{"args": ["edited"]}'})
    # Then the new task's page opens, and a worker runs it with them
    assert response.status_code == 303
    new_id = response.headers["Location"].rsplit("/", 1)[-1]
    burst_worker()
    assert str(AsyncResult(new_id).info) == "edited"


@pytest.mark.parametrize(("typed", "message"), [
    ('{"args": ["x"', "Arguments are not valid JSON"),
    ('["x"]', "Arguments must be a JSON object"),
    ('{"args": "x"}', "Args must be a JSON array"),
    ('{"args": [], "retries": 3}', "Arguments may hold only args and kwargs, not retries"),
    ("[" * 50 + "]" * 50, "Arguments must be a JSON object"),
    ('{"a": ' * 30 + "1" + "}" * 30, "Arguments nest deeper than 20 levels"),
])
def test_edited_arguments_that_are_wrong_show_the_form_again_with_why(client, celery_app, burst_worker, redis_conn,
                                                                     typed, message):
    failed = compat_tasks.fail.delay("boom")
    burst_worker()
    sent = redis_conn.zcard(keys.TASKS)
    response = client.post(f"/tasks/{failed.id}/retry-edited", data={"arguments": typed})
    page = _text(response)
    assert response.status_code == 422 and message in page and 'aria-invalid="true"' in page
    assert redis_conn.zcard(keys.TASKS) == sent  # nothing was sent


def test_an_edited_long_running_task_follows_the_form_rules(client, celery_app):
    # Given a cancelled long-running task submitted from the form
    task_id = client.post("/api/tasks/long-running", json={"duration": 5}).json["id"]
    client.post(f"/tasks/{task_id}/cancel")
    # When it is retried with a duration out of bounds, the page says why
    response = client.post(f"/tasks/{task_id}/retry-edited", data={"arguments": '{"duration": 0}'})
    assert response.status_code == 422 and "Duration must be between 1 and 3600" in _text(response)
    # And with a good one, a new task of that duration is submitted
    response = client.post(f"/tasks/{task_id}/retry-edited", data={"arguments": '{"duration": 7}'})
    new_id = response.headers["Location"].rsplit("/", 1)[-1]
    assert client.get(f"/api/tasks/{new_id}").json["arguments"] == {"duration": 7}


def test_a_successful_tasks_job_hash_goes_early_while_its_page_still_shows_everything(client, celery_app,
                                                                                      burst_worker, redis_conn):
    # Given RQ job hashes of successful tasks kept one second (results are kept a day)
    celery_app.conf.worker_job_keep_seconds = 1
    # And a chain whose second step was retried once before it succeeded
    last = chain(compat_tasks.add.s(1, 2), compat_tasks.times_ten_after_a_retry.s())()
    burst_worker()
    first_id = last.parent.id
    # Then its job hash and its finished-registry entry are due within the second, its result a day later
    job_key = keys.job(last.id)
    assert redis_conn.pttl(job_key) == -2 or 0 < redis_conn.pttl(job_key) <= 1000
    assert redis_conn.zscore(keys.REGISTRIES["finished"]("celery").key, last.id) <= time.time() + 1
    assert redis_conn.ttl(keys.meta(last.id)) > 86000
    wait_for(lambda: not redis_conn.exists(job_key), timeout=5)
    # When its status, its page and the task list are read after that
    status = client.get(f"/api/tasks/{last.id}").json
    page = _text(client.get(f"/tasks/{last.id}"))
    [row] = [row for row in client.get("/api/tasks").json["tasks"] if row["id"] == last.id]
    # Then they still show its result, worker, times, arguments, retries and relatives
    assert (status["state"], status["result"], status["arguments"]) == ("SUCCESS", 30, {"args": [3], "kwargs": {}})
    assert status["worker"] and status["created_at"] <= status["started_at"] <= status["finished_at"]
    assert _timeline(page) == ["Sent", "Retry 1", "Started (run 2)", "Succeeded"]
    assert status["kind"] == "tests.compat_tasks.times_ten_after_a_retry" and "<dt>Queue</dt><dd>celery</dd>" in page
    assert f'<dt>Parent</dt> <dd><a href="/tasks/{first_id}">' in page
    assert (row["state"], row["worker"], row["retries"]) == ("SUCCESS", status["worker"], 1)
    assert row["started_at"] == status["started_at"] and row["runtime"] >= 0


def test_a_failed_tasks_job_hash_is_kept_as_long_as_its_result_for_requeue(client, celery_app, burst_worker,
                                                                          redis_conn):
    # Given RQ job hashes of successful tasks kept one second
    celery_app.conf.worker_job_keep_seconds = 1
    # When a task fails
    result = compat_tasks.fail.delay()
    burst_worker()
    # Then its job hash stays (rq-dashboard's Requeue needs it) at least as long as its result
    assert redis_conn.ttl(keys.job(result.id)) >= redis_conn.ttl(keys.meta(result.id)) > 86000


def test_a_plain_rq_job_stored_with_pickle_is_shown_as_not_a_task_of_ours(client, celery_app, redis_conn):
    # Given a job another RQ program queued with RQ's default serializer (pickle), never unpickled here
    from rq import Queue

    Queue("default", connection=redis_conn).enqueue("os.getcwd", job_id="plain-rq-pickled")
    # When its page is opened, it answers without its name or arguments instead of failing (500)
    response = client.get("/tasks/plain-rq-pickled")
    assert response.status_code == 200 and "plain-rq-pickled" in response.get_data(as_text=True)


def test_a_parent_of_many_children_lists_a_hundred_and_counts_the_rest(client, celery_app, redis_conn):
    # Given a task noted as the parent of 250 tasks
    parent = compat_tasks.add.delay(1, 2).id
    redis_conn.sadd(keys.task_children(parent), *[f"child-{n:04d}" for n in range(250)])
    # When its page is opened, it links a hundred of them and says how many more there are
    page = client.get(f"/tasks/{parent}").get_data(as_text=True)
    assert page.count('href="/tasks/child-') == 100
    assert "And 150 more children." in _text_of(page)


def _text_of(page: str) -> str:
    return " ".join(page.split())

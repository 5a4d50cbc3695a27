"""A task whose outcome cannot be stored ends FAILURE with an EncodeError, as in Celery (issue 12, item 9).

A lone surrogate ("\\ud800") is valid in a Python string but not in UTF-8, so Redis cannot hold
it. Before, such a task stayed STARTED for ever and its page answered 500.
"""

from __future__ import annotations

import pytest

from tests import compat_tasks
from tests.support import wait_for


@pytest.mark.parametrize("pool", ["prefork", "solo", "fork"])
@pytest.mark.parametrize("where", ["result", "meta", "exception"])
def test_an_unencodable_result_meta_or_error_ends_the_task_as_failure_with_an_encode_error(
        where, pool, celery_app, redis_conn, worker_process):
    # Given a worker, and a task that puts a lone surrogate in its result, its progress or its error
    worker_process("-P", pool, "-c", "1")
    result = compat_tasks.unstorable.delay(where)
    # When it has run, then it ended FAILURE, not STARTED for ever
    wait_for(lambda: result.state == "FAILURE", timeout=20)
    # And the stored error says what could not be stored, in a document every client can read
    assert type(result.result).__name__ == "EncodeError"
    assert "can't encode character '\\ud800'" in str(result.result)
    document = redis_conn.get(f"celery-task-meta-{result.id}")
    document.decode("utf-8")
    # And RQ's side agrees: the job failed, it is not left started
    wait_for(lambda: redis_conn.hget(f"rq:job:{result.id}", "status") == b"failed", timeout=10)
    # And the worker goes on working
    assert compat_tasks.add.delay(1, 1).get(timeout=10) == 2


def test_unencodable_arguments_stored_with_the_outcome_do_not_stop_the_failure_being_stored(
        celery_app, redis_conn, burst_worker):
    # Given result_extended, which stores a task's arguments with its outcome, and an argument
    # holding a lone surrogate
    celery_app.conf.result_extended = True
    result = compat_tasks.echo.delay("arg \ud800")
    # When a worker runs it
    burst_worker()
    # Then it ends FAILURE with an EncodeError, its name kept and its argument written readably
    assert result.state == "FAILURE" and type(result.result).__name__ == "EncodeError"
    assert result.name == "tests.compat_tasks.echo" and result.args == ["arg \\ud800"]

"""``ping``: the smallest real task, for checking the whole path end to end and for load tests.

It records that it ran under its token (a Redis set per batch, and a counter), so a load test
can check that every submitted task ran exactly once: the set counts distinct runs, the counter
counts all of them.
"""

from __future__ import annotations

from app.celery_compat import Task, shared_task

#: Runs are kept a day, like results.
RECORD_SECONDS = 86400


def runs_key(batch: str) -> str:
    return f"ping:runs:{batch}"


def count_key(batch: str) -> str:
    return f"ping:count:{batch}"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def ping(self: Task, token: str) -> str:
    """Record ``token`` (``batch:anything``) as run, and answer ``pong``."""
    batch = token.split(":", 1)[0]
    with self.app.connection.pipeline(transaction=False) as pipe:
        pipe.sadd(runs_key(batch), token)
        pipe.incr(count_key(batch))
        pipe.expire(runs_key(batch), RECORD_SECONDS)
        pipe.expire(count_key(batch), RECORD_SECONDS)
        pipe.execute()
    return "pong"

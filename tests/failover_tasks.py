"""Tasks for the Sentinel failover tests: each run leaves its mark outside the cluster under test.

The side-effect counter lives in a plain Redis of its own (``FAILOVER_COUNTER_URL``), as an
external effect would (an email, a row elsewhere): it survives the failover, so a test counts the
runs of each task id whatever the cluster lost. The broker is the cluster, through Sentinel
(``FAILOVER_BROKER_URL``, Celery's ``sentinel://`` form; master ``mymaster``).
"""

from __future__ import annotations

import functools
import os
import time

import redis

from app.celery_compat import Celery

app = Celery("tests.failover_tasks", broker=os.environ.get("FAILOVER_BROKER_URL", "sentinel://127.0.0.1:1/0"))
app.conf.broker_transport_options = {"master_name": "mymaster", "socket_timeout": 2.0}
app.conf.worker_heartbeat_interval = 0.5
app.conf.worker_heartbeat_ttl = 3.0
app.conf.worker_lost_max_redeliveries = 10

RUNS = "failover:runs"
DONE = "failover:done"
STARTED_AT = "failover:started-at"
FIRST_STARTED_AT = "failover:first-started-at"


@functools.lru_cache(maxsize=1)
def _counter() -> redis.Redis:
    return redis.Redis.from_url(os.environ["FAILOVER_COUNTER_URL"])


@app.task(bind=True, acks_late=True, reject_on_worker_lost=True)
def counted(self, seconds: float = 0.0) -> str:
    """Safe to repeat; counts its runs (begun, ended, first and last start time) by task id in the counter Redis."""
    _counter().hincrby(RUNS, self.request.id, 1)
    _counter().hset(STARTED_AT, self.request.id, repr(time.time()))
    _counter().hsetnx(FIRST_STARTED_AT, self.request.id, repr(time.time()))
    time.sleep(seconds)
    _counter().hincrby(DONE, self.request.id, 1)
    return self.request.id

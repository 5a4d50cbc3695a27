"""Redis failover through Sentinel, with real processes: a master, a replica, three sentinels.

What must hold (README, "More machines, and Redis Sentinel": Failover, What an acknowledged task survives):

* a send configured with ``wait_for_replicas`` returns only once a replica has the task, and
  says so with NotReplicatedError (the task queued, but not safe) when none confirms in time;
* the master killed with -9 during a load, cut off from its replica just before (what it
  acknowledged then never reached the replica that takes over): with WAIT, every task whose
  ``.delay()`` returned reaches a final state; a task runs twice only if it ran while the link
  was down; the worker and the client carry on against the new master by themselves, in seconds;
* a worker survives its master's demotion (a blocked pop answered UNBLOCKED), and stops
  promptly on a Sentinel connection.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from rq.job import Job

from app.celery_compat import keys
from app.celery_compat.exceptions import ImproperlyConfigured, NotReplicatedError
from tests import failover_tasks
from tests.support import ROOT, spawn_worker, stop_workers, wait_for, wait_until
from tests.support_sentinel import Load, failover_figures

RATE = 50.0  # sends per second, from before the kill until after the old master's return
ACKED_BEFORE = 100
SENT_WHILE_CUT = 3
ACKED_AFTER = 50
CONCURRENCY = 2


def test_a_send_without_any_replica_fails_clearly_after_the_wait_yet_its_task_is_queued(make_app, own_redis_server):
    # Given the web app's Celery on a Redis that has no replica, told to wait for one for 0.2 s
    app = make_app(own_redis_server.url, REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.2)
    celery = app.extensions["celery"]
    # When a task is sent
    started = time.monotonic()
    with pytest.raises(NotReplicatedError, match="0 of 1 replica") as raised:
        celery.send_task("app.tasks.ping.ping", kwargs={"token": "t:1"})
    # Then the caller learns it after the wait, with the task's id, and the task is queued all the same
    assert 0.2 <= time.monotonic() - started < 2
    task_id = raised.value.task_ids[0]
    assert Job.exists(task_id, connection=own_redis_server.client())


def test_the_api_answers_503_with_the_task_id_when_no_replica_confirms_a_submit(make_app, own_redis_server):
    app = make_app(own_redis_server.url, REDIS_WAIT_REPLICAS=1, REDIS_WAIT_TIMEOUT=0.2)
    response = app.test_client().post("/api/tasks/ping", json={"token": "t:2"})
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert "replica" in response.json["error"]
    assert Job.exists(response.json["id"], connection=own_redis_server.client())


def test_a_send_returns_only_once_the_replica_has_the_task(failover_app, sentinel_cluster):
    # Given a client waiting for one replica, and the replica frozen for 0.3 s
    app = failover_app(wait_for_replicas=1, wait_timeout=1.5)
    os.kill(sentinel_cluster.replica.process.pid, signal.SIGSTOP)
    thaw = threading.Timer(0.3, os.kill, (sentinel_cluster.replica.process.pid, signal.SIGCONT))
    thaw.start()
    try:
        # When a task is sent
        started = time.monotonic()
        result = failover_tasks.counted.delay(0)
        elapsed = time.monotonic() - started
    finally:
        thaw.join()
    # Then .delay() returned after the replica came back, and the replica already holds the task
    assert 0.25 <= elapsed < 1.5
    replica = sentinel_cluster.replica.client()
    assert replica.exists(keys.job(result.id))
    assert app.connection.exists(keys.job(result.id))


def test_a_wait_longer_than_the_socket_timeout_is_refused():
    from app.celery_compat import Celery

    app = Celery("x", broker="redis://127.0.0.1:1/0")
    app.conf.broker_transport_options = {"wait_for_replicas": 1, "wait_timeout": 2, "socket_timeout": 1}
    with pytest.raises(ImproperlyConfigured, match="wait_timeout"):
        app.connection  # noqa: B018 - building the client checks its options


def test_with_wait_no_acknowledged_task_is_lost_when_the_master_dies_cut_off_from_its_replica(
        failover_app, sentinel_cluster, own_redis_server, tmp_path):
    # Given a worker and a client reaching the cluster through Sentinel, the client waiting for a replica
    app = failover_app(wait_for_replicas=1, wait_timeout=0.5)
    worker = start_worker(app, tmp_path)
    counter = own_redis_server.client()
    load = Load(failover_tasks.counted, RATE).start()
    try:
        # When, in the middle of a load of tasks, the replication link goes down (the master's
        # writes reach no replica: without WAIT, sends still return)
        wait_for(lambda: len(load.ids("acked")) >= ACKED_BEFORE, timeout=30)
        cut_at = time.time()
        sentinel_cluster.cut_replication()
        wait_for(lambda: len(load.ids("acked", "not-replicated", "failed", after=cut_at)) >= SENT_WHILE_CUT, timeout=30)
        # and then the master is killed with -9
        old = sentinel_cluster.kill_master()
        killed_at = time.time()  # after the kill: a send begun later can only reach the new master
        sentinel_cluster.wait_for_failover(old)
        promoted_at = time.time()
        # and comes back (Sentinel makes it the new master's replica), while the load goes on
        sentinel_cluster.rejoin(old)
        wait_for(lambda: len(load.ids("acked", after=promoted_at)) >= ACKED_AFTER, timeout=30)
        load.stop()
        # Then every task whose .delay() returned reaches a final state
        acked = load.ids("acked")
        wait_until(lambda: all(meta["status"] in ("SUCCESS", "FAILURE") for meta in app.backend.get_many_meta(acked)),
                   timeout=60, interval=0.5)
        figures = failover_figures(load, app, counter, killed_at)
        # And the client's result waiting (one pub/sub connection, made before the kill) follows too
        assert failover_tasks.counted.delay(0).get(timeout=30)
    finally:
        load.stop()
        stop_workers([worker])
    print(f"failover: promoted after {promoted_at - killed_at:.1f} s; {figures}")
    assert figures["lost"] == 0, f"acknowledged, never final: {figures['lost_ids']}"
    # And the sends made while no replica could confirm them said so (not acknowledged)
    assert load.ids("not-replicated", after=cut_at)
    # And a task ran twice only if its first run began while the link was down (or was running
    # when it went down): its claim or its result never reached the replica that took over
    assert all(cut_at - 1.0 <= started <= killed_at for started in figures["twice_first_started"].values())
    # And the worker carried on against the new master by itself, within seconds
    assert figures["resume_s"] is not None and figures["resume_s"] < 20


def test_a_worker_on_sentinel_stops_promptly_with_no_stale_reply_on_its_connections(failover_app, tmp_path):
    # Given a worker on the cluster, idle in its blocking pop
    app = failover_app()
    worker = start_worker(app, tmp_path)
    time.sleep(1.0)
    # When it is stopped (SIGTERM interrupts the pop's read)
    started = time.monotonic()
    stop_workers([worker])
    # Then it stops at once and cleanly: the interrupted connection was dropped, not handed back
    # to the pool with the pop's reply still to come (the next command read it as its own)
    log = (tmp_path / "worker.log").read_text()
    assert time.monotonic() - started < 5, log[-2000:]
    assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("pool", [("-P", "prefork", "-c", "2"), ("-P", "fork")], ids=["prefork", "fork"])
def test_a_worker_waits_out_its_master_being_demoted_then_carries_on(pool, own_redis_server, start_redis_server,
                                                                     tmp_path):
    # Given a worker idle in its blocking pop on a master
    from app.celery_compat import Celery
    from tests.support_chaos import children_of

    master, other = own_redis_server, start_redis_server()
    env = {**os.environ, "REDIS_URL": master.url, "PYTHONPATH": str(ROOT)}
    app = Celery("demoted", broker=master.url, set_as_current=False)
    popping = 2 if "prefork" in pool else 1
    worker = spawn_worker(["-A", "tests.compat_tasks", "-u", master.url, *pool, "-l", "INFO"],
                          env, tmp_path / "worker.log", app.connection, workers=popping)
    try:
        processes = sorted(children_of(worker.pid)) if "prefork" in pool else []
        # (RQ's own -P fork worker pops a queue's several priority lists with BLPOP)
        blocked = lambda: sum(client["cmd"] in ("blmove", "blpop")  # noqa: E731
                              for client in master.client().client_list())
        wait_for(lambda: blocked() >= popping, timeout=15)
        # When the master is demoted to a replica (Redis unblocks the pop with UNBLOCKED), then promoted back
        master.client().replicaof("127.0.0.1", other.port)
        wait_for(lambda: "read-only replica" in (tmp_path / "worker.log").read_text(), timeout=10)
        time.sleep(1.0)
        master.client().replicaof("NO", "ONE")
        # Then the worker waited it out: no traceback, the same work processes, and it runs tasks again
        result = app.send_task("tests.compat_tasks.add", (2, 3))
        assert result.get(timeout=30) == 5
        log = (tmp_path / "worker.log").read_text()
        assert "Traceback" not in log and "UNBLOCKED" not in log, log[-3000:]
        assert set(processes) <= set(children_of(worker.pid))
    finally:
        stop_workers([worker])
        app.close()


def start_worker(app, tmp_path):
    """``python worker.py -A tests.failover_tasks -P prefork -c 2`` on the cluster, through Sentinel."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)
    return spawn_worker(["-A", "tests.failover_tasks", "-P", "prefork", "-c", str(CONCURRENCY), "-l", "INFO"],
                        env, tmp_path / "worker.log", app.connection, workers=CONCURRENCY)

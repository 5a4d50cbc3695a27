"""A real Sentinel cluster on loopback: a master, a replica and three sentinels, for failover tests.

Debian ships no ``redis-sentinel`` binary: a sentinel is ``redis-server <conf> --sentinel``. Every
process runs in the foreground in its own temporary directory on a free port, stores nothing on
disk (a failover is about replication, not persistence), and is stopped by its pid. Timeouts are
short (``down-after-milliseconds`` 1000), so a killed master is replaced in a few seconds.
``bench/failover.py`` uses it too.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import redis

from app.celery_compat.exceptions import NotReplicatedError
from app.celery_compat.states import READY_STATES
from app.embedded_redis import free_port
from tests import failover_tasks

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000


class Node:
    """One redis-server process (a data node or a sentinel) started from its own configuration file."""

    def __init__(self, binary: str, workdir: Path, config: str, sentinel: bool = False) -> None:
        self.binary, self.workdir, self.sentinel = binary, workdir, sentinel
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        # A sentinel rewrites its file (what it learns of the cluster), so each gets its own.
        self.config_path = workdir / ("sentinel.conf" if sentinel else "redis.conf")
        self.config_path.write_text(f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\nsave \"\"\n"
                                    f"appendonly no\nlogfile {workdir / 'server.log'}\n{config}")
        self.process: subprocess.Popen | None = None

    def start(self) -> Node:
        args = [self.binary, str(self.config_path), *(["--sentinel"] if self.sentinel else [])]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return self
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.config_path} did not start: {self.log()}") from None
                time.sleep(0.02)
            finally:
                client.close()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

    def kill(self) -> None:
        """``kill -9``: no shutdown, no last replication to anyone."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.workdir / "server.log").read_text()[-2000:]
        return ""


class SentinelCluster:
    """A master, one replica and three sentinels (quorum 2) on 127.0.0.1; use as a context manager.

    ``url`` is Celery's ``sentinel://`` form for the adapter (master name: :data:`MASTER_NAME`).
    """

    def __init__(self, workdir: Path, binary: str = "/usr/bin/redis-server") -> None:
        self.workdir, self.binary = workdir, binary
        self.master = Node(binary, workdir / "node-0", "")
        self.replica = Node(binary, workdir / "node-1", f"replicaof 127.0.0.1 {self.master.port}\n")
        monitor = (f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2\n"
                   f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                   f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                   f"sentinel parallel-syncs {MASTER_NAME} 1\n")
        self.sentinels = [Node(binary, workdir / f"sentinel-{index}", monitor, sentinel=True) for index in range(3)]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{node.port}/0" for node in self.sentinels)

    @property
    def nodes(self) -> list[Node]:
        return [self.master, self.replica, *self.sentinels]

    def start(self) -> SentinelCluster:
        try:
            for node in self.nodes:
                node.start()
            self.wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_until_ready(self, timeout: float = 20.0) -> None:
        """Until the replica is in sync and every sentinel knows the replica and the other sentinels."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._synced() and all(self._sentinel_sees_all(node) for node in self.sentinels):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Sentinel cluster did not settle in {timeout} s")

    def _synced(self) -> bool:
        with contextlib.closing(self.replica.client()) as client:
            return client.info("replication").get("master_link_status") == "up"

    def _sentinel_sees_all(self, node: Node) -> bool:
        with contextlib.closing(node.client()) as client:
            master = client.sentinel_master(MASTER_NAME)
        return int(master.get("num-slaves", 0)) >= 1 and int(master.get("num-other-sentinels", 0)) >= 2

    def master_address(self) -> tuple[str, int]:
        """Where the sentinels say the master is now (the first sentinel that answers)."""
        for node in self.sentinels:
            with contextlib.suppress(redis.exceptions.RedisError), contextlib.closing(node.client()) as client:
                host, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                return host.decode() if isinstance(host, bytes) else host, int(port)
        raise RuntimeError("no sentinel answers")

    def node_at(self, port: int) -> Node:
        return next(node for node in (self.master, self.replica) if node.port == port)

    def cut_replication(self) -> None:
        """Drop the replication link and keep it down: writes from now on reach the master alone.

        As a network cut between them would: the master closes the replica's connection, and the
        replica's reconnections fail their handshake (a password the master does not have), so no
        partial resync brings those writes over before the master dies. :meth:`wait_for_failover`
        lifts it on the node it returns.
        """
        replica = self.node_at(self.replica_port())
        with contextlib.closing(replica.client()) as client:
            client.config_set("masterauth", "not-the-masters-password")
        with contextlib.closing(self.node_at(self.master_address()[1]).client()) as client:
            client.client_kill_filter(_type="replica")

    def replica_port(self) -> int:
        port = self.master_address()[1]
        return next(node.port for node in (self.master, self.replica) if node.port != port)

    def kill_master(self) -> Node:
        """``kill -9`` the current master; returns its node (``.start()`` brings it back, as a replica)."""
        node = self.node_at(self.master_address()[1])
        node.kill()
        return node

    def wait_for_failover(self, old: Node, timeout: float = 30.0) -> Node:
        """Until the sentinels name another master and it accepts writes; returns the new master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError, redis.exceptions.RedisError):
                port = self.master_address()[1]
                if port != old.port:
                    new = self.node_at(port)
                    with contextlib.closing(new.client()) as client:
                        if client.info("replication").get("role") == "master":
                            client.config_set("masterauth", "")  # cut_replication's, if any
                            return new
            time.sleep(0.05)
        raise RuntimeError(f"no failover within {timeout} s")

    def rejoin(self, node: Node, timeout: float = 60.0) -> None:
        """Restart a killed node and wait until the sentinels made it a replica of the master, in sync.

        Sentinel converts a returning old master only once it has been up and reporting itself a
        master for 8 s (4 publish periods), seen through an INFO refresh that comes every 10 s for
        a replica: 8 to 20 s before the full sync even starts. 30 s was missed once on a loaded machine.
        """
        node.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.exceptions.RedisError), contextlib.closing(node.client()) as client:
                info = client.info("replication")
                if info.get("role") == "slave" and info.get("master_link_status") == "up":
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the restarted node on port {node.port} did not become a replica in {timeout} s")

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> SentinelCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Load:
    """Sends tasks from a thread, one every ``1 / rate`` s, until :meth:`stop`, recording how each send ended.

    Each task gets its id before the send, so a send that failed is still known by it. ``outcome``
    maps an id to ``"acked"`` (``.delay()`` returned), ``"not-replicated"`` (queued, but no replica
    confirmed it: NotReplicatedError) or ``"failed"`` (an error: unknown whether it was queued).
    The pace never catches up after slow sends, so a fault shows as a stretch of errors, not a burst.
    """

    def __init__(self, task: Any, rate: float, seconds: float = 0.02) -> None:
        self.task, self.rate, self.seconds = task, rate, seconds
        self.sent_at: dict[str, float] = {}
        self.outcome: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="failover-load", daemon=True)

    def start(self) -> Load:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1 / self.rate):
            task_id = str(uuid.uuid4())
            self.sent_at[task_id] = time.time()
            try:
                self.task.apply_async((self.seconds,), task_id=task_id)
                self.outcome[task_id] = "acked"
            except NotReplicatedError:
                self.outcome[task_id] = "not-replicated"
            except redis.exceptions.RedisError:
                self.outcome[task_id] = "failed"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def ids(self, *outcomes: str, after: float = 0.0) -> list[str]:
        """Tasks whose send ended so, among those sent after the time ``after``."""
        return [task_id for task_id, outcome in list(self.outcome.items())
                if outcome in outcomes and self.sent_at[task_id] > after]


def failover_figures(load: Load, app: Any, counter: redis.Redis, killed_at: float) -> dict[str, Any]:
    """What a failover cost: sends refused, acknowledged tasks lost, tasks run twice, seconds to resume.

    Resume: from the kill until the first task written after it (so to the new master) began to run.
    ``twice_first_started``: when each task run twice first began (its first run's claim or result
    had not reached the replica when the master died).
    """
    acked = load.ids("acked")
    metas = app.backend.get_many_meta(acked)
    lost = [task_id for task_id, meta in zip(acked, metas, strict=True) if meta["status"] not in READY_STATES]
    runs = {key.decode(): int(value) for key, value in counter.hgetall(failover_tasks.RUNS).items()}
    started = {key.decode(): float(value) for key, value in counter.hgetall(failover_tasks.STARTED_AT).items()}
    first = {key.decode(): float(value) for key, value in counter.hgetall(failover_tasks.FIRST_STARTED_AT).items()}
    written_after = load.ids("acked", "not-replicated", after=killed_at)
    first_start = min((started[task_id] for task_id in written_after if task_id in started), default=None)
    twice = sorted(task_id for task_id, count in runs.items() if count > 1)
    return {
        "sent": len(load.outcome), "acked": len(acked), "not_replicated": len(load.ids("not-replicated")),
        "failed": len(load.ids("failed")), "lost": len(lost), "lost_ids": lost,
        "run_twice": len(twice), "twice_first_started": {task_id: first[task_id] for task_id in twice},
        "resume_s": None if first_start is None else round(first_start - killed_at, 2),
    }

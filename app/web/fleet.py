"""The Workers page's data: every worker node and its processes, read from what workers keep in Redis.

No broadcast and no event stream: a node lists itself every few seconds while it listens to the
remote control (``keys.node``: host, pid, pool, size, queues, its RQ workers' names); each RQ
worker's hash holds its heartbeat and counts; RQ's started registries and the job hashes say what
runs where. One page costs four round trips whatever the number of tasks.

An RQ worker that belongs to no listening node (a ``--burst`` run, a plain ``rq worker``) is shown
as a node of its own, without the control buttons: nothing would answer them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import redis

from app.celery_compat import keys, view

#: The RQ worker hash's fields the page shows.
WORKER_FIELDS = ("pid", "hostname", "queues", "state", "birth", "last_heartbeat",
                 "successful_job_count", "failed_job_count", "total_working_time")


@dataclass(frozen=True)
class RunningTask:
    id: str
    name: str | None
    since: datetime | None


@dataclass
class Process:
    """One RQ worker: a prefork work process, or a solo worker itself."""

    name: str
    host: str | None
    pid: int | None
    last_heartbeat: datetime | None
    processed: int  # every task it ended, failed ones included (Flower's "Processed")
    failed: int
    running: list[RunningTask] = field(default_factory=list)


@dataclass
class Node:
    """A worker node as ``app.control`` addresses it (``celery@host``), or a lone RQ worker."""

    name: str
    host: str | None
    pid: int | None
    pool: str
    concurrency: int
    queues: list[str]
    started: datetime | None
    controllable: bool
    processes: list[Process] = field(default_factory=list)

    @property
    def running(self) -> list[RunningTask]:
        return [task for process in self.processes for task in process.running]

    @property
    def processed(self) -> int:
        return sum(process.processed for process in self.processes)

    @property
    def failed(self) -> int:
        return sum(process.failed for process in self.processes)

    @property
    def last_heartbeat(self) -> datetime | None:
        beats = [process.last_heartbeat for process in self.processes if process.last_heartbeat]
        return max(beats) if beats else None

    @property
    def state(self) -> str:
        """busy (running a task), idle, or starting (listening, but no work process registered yet)."""
        if self.running:
            return "busy"
        return "idle" if self.processes else "starting"


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


def _count(value: bytes | None) -> int:
    return int(float(value)) if value else 0


def _moment(value: bytes | None) -> datetime | None:
    text = _text(value)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _listed_nodes(conn: redis.Redis) -> list[dict[str, str]]:
    names = [name.decode() for name in conn.zrangebyscore(keys.CONTROL_NODES, time.time(), "+inf")]
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hgetall(keys.node(name))
        replies = pipe.execute()
    return [{key.decode(): value.decode() for key, value in fields.items()} for fields in replies if fields]


def _processes(conn: redis.Redis) -> dict[str, tuple[Process, list[str]]]:
    """Every registered RQ worker, by name, with the queues it consumes."""
    names = sorted(keys.worker_name(key.decode()) for key in conn.smembers(keys.WORKERS))
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.hmget(keys.worker(name), *WORKER_FIELDS)
        replies = pipe.execute()
    found = {}
    for name, values in zip(names, replies, strict=True):
        fields = dict(zip(WORKER_FIELDS, values, strict=True))
        if fields["birth"] is None and fields["last_heartbeat"] is None:
            continue  # a bare hash left by a state write, or one that just expired
        pid = _text(fields["pid"])
        process = Process(name, _text(fields["hostname"]), int(pid) if pid and pid.isdigit() else None,
                          _moment(fields["last_heartbeat"]),
                          _count(fields["successful_job_count"]) + _count(fields["failed_job_count"]),
                          _count(fields["failed_job_count"]))
        found[name] = (process, [queue for queue in (_text(fields["queues"]) or "").split(",") if queue])
    return found


def _task_names(conn: redis.Redis, task_ids: list[str]) -> dict[str, str | None]:
    with conn.pipeline(transaction=False) as pipe:
        for task_id in task_ids:
            pipe.hget(keys.task_info(task_id), "name")
        return {task_id: _text(name) for task_id, name in zip(task_ids, pipe.execute(), strict=True)}


def _node_of(listing: dict[str, str], processes: dict[str, tuple[Process, list[str]]]) -> Node:
    started = float(listing.get("started") or 0)
    names = json.loads(listing.get("workers") or "[]")
    return Node(
        name=listing["hostname"], host=listing.get("host"),
        pid=int(listing["pid"]) if listing.get("pid", "").isdigit() else None,
        pool=listing.get("pool") or "?", concurrency=int(listing.get("concurrency") or 0),
        queues=json.loads(listing.get("queues") or "[]"),
        started=datetime.fromtimestamp(started, timezone.utc) if started else None, controllable=True,
        processes=[processes[name][0] for name in names if name in processes],
    )


def _lone_node(process: Process, queues: list[str]) -> Node:
    return Node(name=process.name, host=process.host, pid=process.pid, pool="rq", concurrency=1, queues=queues,
                started=None, controllable=False, processes=[process])


def nodes(conn: redis.Redis) -> list[Node]:
    """Every worker node, by name, with its processes and what they run now."""
    listings = _listed_nodes(conn)
    processes = _processes(conn)
    # RQ's hash keeps the queues a worker started with; a node lists those add_consumer gave it since.
    queue_names = sorted({queue for _, queues in processes.values() for queue in queues}
                         | {queue for listing in listings for queue in json.loads(listing.get("queues") or "[]")})
    running = view.running_on(conn, queue_names)
    names = _task_names(conn, [task.task_id for task in running.values()])
    for worker, task in running.items():
        if worker in processes:
            processes[worker][0].running.append(RunningTask(task.task_id, names.get(task.task_id), task.started_at))
    found = [_node_of(listing, processes) for listing in listings]
    claimed = {process.name for node in found for process in node.processes}
    for name, (process, queues) in processes.items():
        if name not in claimed:
            found.append(_lone_node(process, queues))
    return sorted(found, key=lambda node: node.name)


def node_names(conn: redis.Redis) -> set[str]:
    """The nodes listening to the remote control now: the only ones the page's buttons address."""
    return {name.decode() for name in conn.zrangebyscore(keys.CONTROL_NODES, time.time(), "+inf")}

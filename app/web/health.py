"""``/healthz``: what load balancers and operators probe, and the banner pages show when stuck."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from redis.exceptions import RedisError
from rq import Worker

from app.celery_compat import keys
from app.celery_compat.stats import STATS_KEY
from app.redis import get_redis, health

bp = Blueprint("health", __name__)
#: Pages ask at most this often; /healthz always asks afresh.
BANNER_CACHE_SECONDS = 5.0


def consumption(conn: Any, stuck_after: float) -> dict[str, Any]:
    """Is work being taken? ``{"workers", "waiting", "oldest_wait_s", "last_dequeue_s", "stuck"}``.

    Stuck means: tasks wait, workers are connected, yet the oldest waiting task has waited longer
    than ``stuck_after`` and no worker took a task for as long (when workers report it).
    """
    queue_keys = sorted(key.decode() for key in conn.smembers(keys.QUEUES))
    with conn.pipeline(transaction=False) as pipe:
        for key in queue_keys:
            pipe.llen(key)
            pipe.lindex(key, 0)
        pipe.hget(STATS_KEY, "last_dequeued_at")
        replies = pipe.execute()
    lengths, heads, last_dequeued = replies[0:-1:2], replies[1:-1:2], replies[-1]
    now = time.time()
    oldest = _oldest_wait(conn, [head for head in heads if head], now)
    last_dequeue_s = now - float(last_dequeued) if last_dequeued else None
    workers = live_workers(conn)
    waiting = sum(lengths)
    stuck = bool(waiting and workers and oldest is not None and oldest > stuck_after
                 and (last_dequeue_s is None or last_dequeue_s > stuck_after))
    return {"workers": workers, "waiting": waiting, "oldest_wait_s": oldest, "last_dequeue_s": last_dequeue_s,
            "stuck": stuck}


def live_workers(conn: Any) -> int:
    """Registered workers that are alive: their key has not expired (it does without heartbeats) and records no death.

    RQ's count is the size of its set of workers, which still holds a worker killed with -9
    until some worker's maintenance cleans it.
    """
    names = list(conn.smembers(Worker.redis_workers_keys))
    if not names:
        return 0
    with conn.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(name)
            pipe.hexists(name, "death")
        replies = pipe.execute()
    return sum(1 for exists, dead in zip(replies[::2], replies[1::2], strict=True) if exists and not dead)


def out_of_memory(conn: Any) -> bool:
    """Whether Redis refuses writes at its memory limit (``maxmemory`` reached with ``noeviction``)."""
    try:
        memory = conn.info("memory")
    except RedisError:  # INFO denied by an ACL: say nothing rather than guess
        return False
    limit = int(memory.get("maxmemory") or 0)
    policy = str(memory.get("maxmemory_policy", "noeviction"))
    return bool(limit) and policy == "noeviction" and int(memory.get("used_memory") or 0) >= limit


def _oldest_wait(conn: Any, head_ids: list[bytes], now: float) -> float | None:
    from datetime import datetime

    if not head_ids:
        return None
    with conn.pipeline(transaction=False) as pipe:
        for job_id in head_ids:
            pipe.hget(keys.job(job_id.decode()), "enqueued_at")
        stamps = [stamp for stamp in pipe.execute() if stamp]
    waits = [now - datetime.fromisoformat(stamp.decode().replace("Z", "+00:00")).timestamp() for stamp in stamps]
    return max(waits) if waits else None


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """200 ``{"status": "ok"|"degraded", "reason", "redis", "workers", "queues"}``; 503 ``"down"`` without Redis.

    Degraded: Redis is out of memory, or tasks are stuck (``reason`` says which). ``workers``
    counts only live ones.
    """
    conn = get_redis()
    redis_health = health(conn)
    workers = queues = None
    if redis_health["ok"]:
        try:
            queues = consumption(conn, float(current_app.config["STUCK_AFTER_SECONDS"]))
            workers = queues["workers"]
        except RedisError as exc:  # Redis went away between the ping and the reads
            redis_health = {"ok": False, "latency_ms": None, "error": f"{type(exc).__name__}: {exc}"}
    reason = None
    if not redis_health["ok"]:
        status, code = "down", 503
    else:
        if out_of_memory(conn):
            reason = "Redis out of memory: new tasks are refused until memory is freed"
        elif queues["stuck"]:
            reason = "tasks wait while no worker takes any"
        status, code = ("degraded" if reason else "ok"), 200
    body = jsonify(status=status, reason=reason, redis=redis_health, workers=workers, queues=queues)
    return body, code, {"Cache-Control": "no-store"}


@bp.app_context_processor
def stuck_banner() -> dict[str, Any]:
    """``system_stuck`` for base.html's banner, asked of Redis at most every few seconds per process."""
    cache = current_app.extensions.setdefault("health_banner", {"at": 0.0, "stuck": False})
    if time.monotonic() - cache["at"] > BANNER_CACHE_SECONDS:
        try:
            cache["stuck"] = consumption(get_redis(), float(current_app.config["STUCK_AFTER_SECONDS"]))["stuck"]
        except RedisError:
            cache["stuck"] = False  # a Redis outage has its own 503 page
        cache["at"] = time.monotonic()
    return {"system_stuck": cache["stuck"]}

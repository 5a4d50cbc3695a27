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
    workers = Worker.count(connection=conn)
    waiting = sum(lengths)
    stuck = bool(waiting and workers and oldest is not None and oldest > stuck_after
                 and (last_dequeue_s is None or last_dequeue_s > stuck_after))
    return {"workers": workers, "waiting": waiting, "oldest_wait_s": oldest, "last_dequeue_s": last_dequeue_s,
            "stuck": stuck}


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
    """200 ``{"status": "ok"|"degraded", "redis", "workers", "queues"}``; 503 ``"down"`` when Redis is not there."""
    conn = get_redis()
    redis_health = health(conn)
    workers = queues = None
    if redis_health["ok"]:
        try:
            queues = consumption(conn, float(current_app.config["STUCK_AFTER_SECONDS"]))
            workers = queues["workers"]
        except RedisError as exc:  # Redis went away between the ping and the reads
            redis_health = {"ok": False, "latency_ms": None, "error": f"{type(exc).__name__}: {exc}"}
    if not redis_health["ok"]:
        status, code = "down", 503
    else:
        status, code = ("degraded" if queues["stuck"] else "ok"), 200
    body = jsonify(status=status, redis=redis_health, workers=workers, queues=queues)
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

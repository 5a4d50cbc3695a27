"""``/healthz``: what load balancers and operators probe."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from redis.exceptions import RedisError
from rq import Worker

from app.redis import get_redis, health

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """200 ``{"redis": {...}, "workers": n}`` when Redis answers, 503 with the reason when it does not."""
    conn = get_redis()
    redis_health = health(conn)
    workers = None
    if redis_health["ok"]:
        try:
            workers = Worker.count(connection=conn)
        except RedisError as exc:  # Redis went away between the ping and the count
            redis_health = {"ok": False, "latency_ms": None, "error": f"{type(exc).__name__}: {exc}"}
    status = 200 if redis_health["ok"] else 503
    return jsonify(redis=redis_health, workers=workers), status, {"Cache-Control": "no-store"}

"""``/metrics``: queue, task and worker figures for Prometheus."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST

from app.metrics import render
from app.redis import get_redis

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    priorities = current_app.extensions["celery"].amqp.priorities
    return Response(render(get_redis(), priorities), content_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})

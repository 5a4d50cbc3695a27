"""The project's Celery-style app, configured from the Flask app's settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.celery_compat import Celery

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_QUEUE = "default"  # the queue `rq worker` listens on when given none


def make_celery(redis_url: str, socket_timeout: float = 1.0, sentinel_master: str | None = None,
                wait_replicas: int = 0, wait_timeout: float = 0.5) -> Celery:
    """A Celery app on ``redis_url`` (or Celery's ``sentinel://`` form) whose tasks go to RQ's ``default`` queue.

    ``wait_replicas``: sends return once that many replicas have the task (see ``replicas.py``).
    """
    from app.redis import client_options

    celery = Celery("app", broker=redis_url, set_as_current=False)
    transport = client_options(socket_timeout)  # fail fast while Redis is down, like the app's own client
    if sentinel_master:
        transport["master_name"] = sentinel_master
    if wait_replicas:
        transport.update(wait_for_replicas=wait_replicas, wait_timeout=wait_timeout)
    celery.conf.update(
        broker_transport_options=transport,
        task_default_queue=DEFAULT_QUEUE,
        result_extended=True,  # the pages show a task's name and arguments
        imports=("app.tasks.long_running", "app.tasks.email", "app.tasks.ping"),
    )
    return celery


def init_celery(flask_app: Flask) -> Celery:
    """Create the app's Celery, make it the default one, and keep it in ``app.extensions``."""
    from app.config import broker_url

    settings = flask_app.config
    celery = make_celery(broker_url(settings), float(settings["REDIS_SOCKET_TIMEOUT"]),
                         settings.get("REDIS_SENTINEL_MASTER") if settings.get("REDIS_SENTINELS") else None,
                         int(settings.get("REDIS_WAIT_REPLICAS") or 0),
                         float(settings.get("REDIS_WAIT_TIMEOUT") or 0.5))
    celery.set_default()
    flask_app.extensions["celery"] = celery
    return celery

"""The project's Celery-style app, configured from the Flask app's settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.celery_compat import Celery

if TYPE_CHECKING:
    from flask import Flask

DEFAULT_QUEUE = "default"  # the queue `rq worker` listens on when given none


def make_celery(redis_url: str, socket_timeout: float = 1.0) -> Celery:
    """A Celery app on ``redis_url`` whose tasks go to RQ's ``default`` queue."""
    from app.redis import client_options

    celery = Celery("app", broker=redis_url, set_as_current=False)
    celery.conf.update(
        # Fail fast while Redis is down, like the app's own client (pages answer 503, not hang).
        broker_transport_options=client_options(socket_timeout),
        task_default_queue=DEFAULT_QUEUE,
        result_extended=True,  # the pages show a task's name and arguments
        imports=("app.tasks.long_running",),
    )
    return celery


def init_celery(flask_app: Flask) -> Celery:
    """Create the app's Celery, make it the default one, and keep it in ``app.extensions``."""
    celery = make_celery(flask_app.config["REDIS_URL"], float(flask_app.config["REDIS_SOCKET_TIMEOUT"]))
    celery.set_default()
    flask_app.extensions["celery"] = celery
    return celery

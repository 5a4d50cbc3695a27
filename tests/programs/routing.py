"""Routing and configuration: config_from_object with a namespace, task_routes, queue=, shared_task, eta, send_task."""

import os
import re
import time
from datetime import datetime, timedelta, timezone

from celery import Celery, shared_task
from celery.result import AsyncResult

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")


class Config:
    """Settings as a Django project keeps them: upper case, behind the ``CELERY_`` prefix."""

    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ROUTES = {
        "routing.report": {"queue": "reports"},
        "routing.bulk_*": {"queue": "bulk"},
        re.compile(r"routing\.by_regex_\w+"): {"queue": "reports"},
    }
    CELERY_TASK_TIME_LIMIT = 30
    TASK_SOFT_TIME_LIMIT = 10  # no prefix: not read


app = Celery("routing")
app.config_from_object(Config, namespace="CELERY")


def where(request):
    return (request.delivery_info or {}).get("routing_key")


@app.task(bind=True)
def plain(self):
    return where(self.request)


@app.task(bind=True)
def report(self):
    return where(self.request)


@app.task(bind=True)
def bulk_import(self, rows):
    return {"queue": where(self.request), "rows": rows}


@app.task(bind=True)
def bulk_export(self):
    return where(self.request)


@app.task(bind=True)
def by_regex_route(self):
    return where(self.request)


@app.task(bind=True, queue="reports")
def declared_queue(self):
    return where(self.request)


@app.task
def stamp():
    return time.time()


@shared_task(bind=True)
def shared_add(self, x, y):
    return {"sum": x + y, "queue": where(self.request), "name": self.name}


def main():
    print("config broker_url", app.conf.broker_url == REDIS_URL, app.conf.result_backend == REDIS_URL)
    print("config task_routes", sorted(key for key in app.conf.task_routes if isinstance(key, str)))
    print("config task_time_limit", app.conf.task_time_limit)
    print("config key without the prefix", app.conf.task_soft_time_limit)

    print("default queue", plain.delay().get(timeout=20))
    print("route by name", report.delay().get(timeout=20))
    print("route by glob", bulk_import.delay(3).get(timeout=20), bulk_export.delay().get(timeout=20))
    print("route by regex", by_regex_route.delay().get(timeout=20))
    print("queue= beats the route", report.apply_async(queue="bulk").get(timeout=20))
    print("queue= on plain", plain.apply_async(queue="reports").get(timeout=20))
    print("queue in the decorator", declared_queue.delay().get(timeout=20))

    print("shared_task", shared_add.name, shared_add.delay(1, 2).get(timeout=20))
    print("shared_task direct call", shared_add(3, 4))

    print("send_task routed by name", app.send_task("routing.bulk_import", args=(9,)).get(timeout=20))
    print("send_task queue=", app.send_task("routing.plain", queue="reports").get(timeout=20))

    eta = datetime.now(timezone.utc) + timedelta(seconds=3)
    result = stamp.apply_async(eta=eta)
    print("eta before it runs", result.state, AsyncResult(result.id).state)
    time.sleep(1)
    print("eta still waiting", AsyncResult(result.id).state)
    ran_at = result.get(timeout=20)
    print("eta after", result.state, ran_at >= eta.timestamp() - 0.5)

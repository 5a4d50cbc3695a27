"""A Celery program whose app names its Redis in ``broker_url`` (from DROPIN_BROKER, as settings would)."""

import os

from app.celery_compat import Celery

app = Celery("brokered", broker=os.environ["DROPIN_BROKER"])


@app.task
def add(x, y):
    return x + y

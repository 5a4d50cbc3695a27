"""A Celery program with a bug at import time."""

from app.celery_compat import Celery

app = Celery("raises")
SETTINGS = {}["missing"]

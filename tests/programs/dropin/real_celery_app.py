"""A Celery program importing the real celery: without the switch, the adapter's worker cannot run it."""

from celery import Celery

app = Celery("real", broker="redis://127.0.0.1:1/0")

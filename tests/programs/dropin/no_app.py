"""A module that holds no Celery app."""

VALUE = 1

"""Celery's ``celery.contrib`` for the adapter: the pytest plugin and the testing helpers."""

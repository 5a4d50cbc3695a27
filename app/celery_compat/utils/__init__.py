"""Celery's ``celery.utils`` modules that programs and tests import: node names, task loggers."""

"""Celery's command line: ``python -m app.celery_compat -A proj worker|beat|inspect|call|...``.

As ``celery.bin``, it is worker-side code (the ``worker`` command runs one); no client module imports it.
"""

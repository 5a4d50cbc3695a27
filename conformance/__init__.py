"""Celery 5.7's own integration suite as the adapter's yardstick: ``make conformance`` (see run.py)."""

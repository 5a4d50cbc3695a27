"""Celery's ``celery.contrib.testing``: an embedded test worker (``worker``), test apps (``app``),
the integration-test ``Manager`` (``manager``) and the ``celery.ping`` task (``tasks``)."""

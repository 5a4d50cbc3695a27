"""One line for programs that start themselves: ``import app.celery_compat.shim`` turns the switch on.

After it, ``import celery`` and ``from kombu import Queue`` give the adapter (see :mod:`.switch`).
Put it before the first ``import celery`` (``celery_compat.shim`` when the adapter is installed).
"""

from __future__ import annotations

from .switch import install

install()

"""``python -m app.celery_compat`` (``python -m celery_compat`` when installed): Celery's command line."""

from __future__ import annotations

import sys

from .bin.celery import main

if __name__ == "__main__":
    sys.exit(main())

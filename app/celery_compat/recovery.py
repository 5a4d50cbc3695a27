"""The failure callback's fixed path: every queued job names ``app.celery_compat.recovery.on_job_failure``.

The code lives in :mod:`.worker.recovery`; this module keeps the path RQ imports when its
maintenance finds a job abandoned (``protocol.FAILURE_CALLBACK``). Worker code.
"""

from __future__ import annotations

from .worker.recovery import on_job_failure as on_job_failure

__all__ = ["on_job_failure"]

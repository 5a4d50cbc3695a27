"""``solar``: runs at a sun event (sunrise, dusk...) seen from a place."""

from __future__ import annotations

from typing import Any

from .base import BaseSchedule


class solar(BaseSchedule):  # noqa: N801 - Celery's name
    """Celery's sunrise/sunset schedule: it needs astronomy (Celery uses ``ephem``), not provided here."""

    def __init__(self, event: str, lat: float, lon: float, **kwargs: Any) -> None:
        raise NotImplementedError(
            "solar schedules (celery.schedules.solar) are not supported by app.celery_compat: "
            "use a crontab at the times you need"
        )

"""``solar``: runs at a sun event (sunrise, solar noon, civil dusk...) seen from a place.

Celery computes the events with the ``ephem`` library; here they come from the sunrise
equation (the NOAA approximation), within about a minute of ``ephem``'s times at
non-polar latitudes, with no extra dependency. An event that does not happen on a day (no
sunrise in the polar night, no astronomical dusk in a white night) is looked for on the
following days, up to a year ahead, as Celery does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .base import BaseSchedule, schedstate
from .localtime import UTC

#: The sun's altitude (degrees) at each event, and whether the event is when it rises (-1), sets (+1)
#: or culminates (0). Sunrise and sunset are the upper limb at the horizon, refraction included
#: (-0°34' for the limb, less the sun's 16' radius); dawns and dusks are the centre's.
EVENTS: dict[str, tuple[float, int]] = {
    "dawn_astronomical": (-18.0, -1), "dawn_nautical": (-12.0, -1), "dawn_civil": (-6.0, -1),
    "sunrise": (-50 / 60, -1), "solar_noon": (0.0, 0), "sunset": (-50 / 60, 1),
    "dusk_civil": (-6.0, 1), "dusk_nautical": (-12.0, 1), "dusk_astronomical": (-18.0, 1),
}
#: Days ahead to look for an event that does not happen every day.
MAX_SEARCH_DAYS = 366
J2000 = 2451545.0  # the Julian day of 2000-01-01 12:00 UTC
UNIX_EPOCH_JD = 2440587.5
OBLIQUITY = math.radians(23.4397)


def _julian(moment: datetime) -> float:
    return moment.timestamp() / 86400 + UNIX_EPOCH_JD


def _from_julian(day: float) -> datetime:
    return datetime.fromtimestamp((day - UNIX_EPOCH_JD) * 86400, tz=UTC)


def event_on(day: int, event: str, lat: float, lon: float) -> datetime | None:
    """When ``event`` happens on solar day ``day`` (days since J2000) at ``lat``/``lon``; None if it does not."""
    altitude, direction = EVENTS[event]
    mean_day = day - lon / 360
    anomaly = math.radians((357.5291 + 0.98560028 * mean_day) % 360)
    centre = 1.9148 * math.sin(anomaly) + 0.02 * math.sin(2 * anomaly) + 0.0003 * math.sin(3 * anomaly)
    longitude = math.radians((math.degrees(anomaly) + centre + 282.9372) % 360)
    transit = J2000 + mean_day + 0.0053 * math.sin(anomaly) - 0.0069 * math.sin(2 * longitude)
    if direction == 0:
        return _from_julian(transit)
    declination = math.asin(math.sin(longitude) * math.sin(OBLIQUITY))
    phi = math.radians(lat)
    cos_hour_angle = ((math.sin(math.radians(altitude)) - math.sin(phi) * math.sin(declination))
                      / (math.cos(phi) * math.cos(declination)))
    if not -1 <= cos_hour_angle <= 1:
        return None  # the sun stays above or below that altitude all day
    return _from_julian(transit + direction * math.degrees(math.acos(cos_hour_angle)) / 360)


class solar(BaseSchedule):  # noqa: N801 - Celery's name
    """Celery's ``solar(event, lat, lon)``: due at each ``event`` (see ``EVENTS``) seen from ``lat``/``lon``."""

    def __init__(self, event: str, lat: float, lon: float, nowfun: Callable[[], datetime] | None = None,
                 app: Any = None) -> None:
        if event not in EVENTS:
            raise ValueError(f'Argument event "{event}" is invalid, must be one of {", ".join(sorted(EVENTS))}.')
        if not -90 <= lat <= 90:
            raise ValueError(f"Argument latitude {lat} is invalid, must be between -90 and 90.")
        if not -180 <= lon <= 180:
            raise ValueError(f"Argument longitude {lon} is invalid, must be between -180 and 180.")
        self.event, self.lat, self.lon = event, lat, lon
        super().__init__(nowfun=nowfun, app=app)

    def next_after(self, moment: datetime) -> datetime:
        """The first event strictly after ``moment``; a year later when there is none (then it looks again)."""
        start = self.maybe_make_aware(moment).astimezone(UTC)
        first_day = math.floor(_julian(start) - J2000) - 1
        for day in range(first_day, first_day + MAX_SEARCH_DAYS + 2):
            when = event_on(day, self.event, self.lat, self.lon)
            if when is not None and when > start:
                return when
        return start + timedelta(days=MAX_SEARCH_DAYS)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.next_after(last_run_at) - self.maybe_make_aware(self.now()).astimezone(UTC)

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due once the first event after ``last_run_at`` has come; ``next`` is then the one after now."""
        remaining = max(self.remaining_estimate(last_run_at).total_seconds(), 0)
        if remaining == 0:
            return schedstate(True, max(self.remaining_estimate(self.now()).total_seconds(), 0))
        return schedstate(False, remaining)

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, solar):
            return (other.event, other.lat, other.lon) == (self.event, self.lat, self.lon)
        return NotImplemented

    __hash__ = object.__hash__

    def __reduce__(self) -> tuple:
        return self.__class__, (self.event, self.lat, self.lon)

    def __repr__(self) -> str:
        return f"<solar: {self.event} at latitude {self.lat}, longitude: {self.lon}>"

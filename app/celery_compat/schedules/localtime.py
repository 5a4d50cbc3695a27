"""Local clock arithmetic for schedules: aware datetimes, and the boundaries of a local clock across its changes."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

UTC = timezone.utc


def app_timezone(app: Any) -> tzinfo:
    """The app's ``timezone`` setting as a tzinfo (a name or a tzinfo); UTC when unset."""
    zone = app.conf.get("timezone")
    if not zone:
        return UTC if app.conf.get("enable_utc", True) else datetime.now().astimezone().tzinfo
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def maybe_make_aware(moment: datetime, zone: tzinfo | None = None) -> datetime:
    """``moment`` itself when aware; a naive one is read as UTC (and shown in ``zone`` when given)."""
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(zone) if zone is not None else moment
    return moment


def wall_instants(wall: datetime, zone: tzinfo) -> list[datetime]:
    """Every UTC instant at which a clock in ``zone`` shows the naive ``wall`` time.

    Two when the clock went back over it, one usually. A wall time the clock jumped over
    counts once, shifted forward by the jump (as ``dateutil.tz.resolve_imaginary`` does): a
    midnight skipped by a clock change becomes the moment the clock shows 01:00.
    """
    found = set()
    for fold in (0, 1):
        instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:  # skipped by the clock
            offset_before = (wall - timedelta(days=1)).replace(tzinfo=zone).utcoffset()
            instant = (wall - offset_before).replace(tzinfo=UTC)
        found.add(instant)
    return sorted(found)


def _clock_unit(interval: timedelta) -> timedelta | None:
    """The boundary a relative interval snaps to: whole hours from an hour up, minutes from a minute."""
    for unit in (timedelta(hours=1), timedelta(minutes=1)):
        if interval >= unit:
            return unit
    return None


def _truncate(wall: datetime, unit: timedelta) -> datetime:
    if unit == timedelta(hours=1):
        return wall.replace(minute=0, second=0, microsecond=0)
    return wall.replace(second=0, microsecond=0)


def relative_deadline(start: datetime, interval: timedelta, zone: tzinfo) -> datetime:
    """When a ``relative`` interval that last ran at ``start`` runs next (UTC).

    From a day up, it counts calendar days: the first midnight, after ``start``, of the date
    ``interval`` after ``start``'s. Below a day, it is the last whole local hour (minute, for
    intervals under an hour) reached by ``start + interval``, never one at or before ``start``;
    when a clock change leaves none in between, the first one after ``start``.
    """
    start_utc = start.astimezone(UTC)
    local = start.astimezone(zone).replace(tzinfo=None)
    if interval >= timedelta(days=1):
        midnight = datetime.combine((local + interval).date(), time())
        later = [instant for instant in wall_instants(midnight, zone) if instant > start_utc]
        return min(later, default=start_utc + interval)
    target = start_utc + interval
    unit = _clock_unit(interval)
    if unit is None:
        return target.replace(microsecond=0)
    local_target = target.astimezone(zone).replace(tzinfo=None)
    wall, last = _truncate(min(local, local_target), unit) - unit, max(local, local_target) + 2 * unit
    instants: list[datetime] = []
    while wall <= last:
        instants.extend(wall_instants(wall, zone))
        wall += unit
    within = [instant for instant in instants if start_utc < instant <= target]
    return max(within) if within else min(instant for instant in instants if instant > start_utc)

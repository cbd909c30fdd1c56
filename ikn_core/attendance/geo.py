"""Geofence check for office check-ins made in the app (pure geometry).

An app check-in at an ``office`` is accepted only when the reported position is
within the policy's ``geofence_radius_m`` of the building AND the fix is at least
that precise (``accuracy_m <= radius``): a fix vaguer than the fence proves nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from ikn_core.attendance.errors import SignalError

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG)
_P = TypeVar("_P")


@dataclass(frozen=True, slots=True)
class Coordinates:
    """WGS 84 latitude/longitude in degrees; ``accuracy_m`` the fix's radius, if known."""

    lat: float
    lon: float
    accuracy_m: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise SignalError("lat", "must be a number from -90 to 90")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise SignalError("lon", "must be a number from -180 to 180")
        if self.accuracy_m is not None and not (
            math.isfinite(self.accuracy_m) and self.accuracy_m >= 0
        ):
            raise SignalError("accuracy_m", "must be a number >= 0")


def distance_m(a: Coordinates, b: Coordinates) -> float:
    """Great-circle (haversine) distance in metres."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def within_geofence(point: Coordinates, centre: Coordinates, radius_m: float) -> bool:
    """True when ``point`` lies within ``radius_m`` of ``centre`` with a fix no vaguer
    than the radius (an unknown accuracy is taken as exact)."""
    if point.accuracy_m is not None and point.accuracy_m > radius_m:
        return False
    return distance_m(point, centre) <= radius_m


def within_geofences(
    point: Coordinates, places: Iterable[tuple[_P, Coordinates]], radius_m: float
) -> list[_P]:
    """The places whose geofence holds ``point`` (as ``within_geofence``), nearest
    first (ties in the order given)."""
    inside = [
        (distance_m(point, centre), n, place)
        for n, (place, centre) in enumerate(places)
        if within_geofence(point, centre, radius_m)
    ]
    return [place for _, _, place in sorted(inside, key=lambda t: (t[0], t[1]))]

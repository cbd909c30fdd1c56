"""A place's utilisation over a period, as the console's pages show it: the analytics
API's own tables (``ikn_store.analytics.queries``: utilisation and funnel by bucket and
over the whole period, hours by weekday), for one building, floor, zone, desk or agency,
with the figures of people withheld when fewer than ``min_group`` distinct people are
behind them (UU 27/2022: no facility manager sees one identifiable person's presence).

What counts as a figure of people, and how the people are counted: docs/web.md,
"Utilisation".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from ikn_store.analytics import queries as analytics
from ikn_store.analytics.queries import MAX_DAYS, Bucket, Level, Query, ScopePlace

# The levels a page may look at, in the order the form offers them.
LEVELS = (Level.BUILDING, Level.FLOOR, Level.ZONE, Level.DESK, Level.AGENCY)
# The columns of each table that count no person (desks, sensors' live time); every
# other column is a figure of people, withheld from a group too small.
PUBLIC = {
    "utilisation": frozenset({"place", "bucket", "desks", "live_minutes"}),
    "funnel": frozenset({"place", "bucket"}),
    "heatmap": frozenset({"weekday", "hour", "live_minutes"}),
}
HEATMAP_COLUMNS = ("weekday", "hour", "live_minutes", "occupied_minutes", "occupancy_share")


def query_of(place: ScopePlace, bucket: Bucket, first: date, last: date) -> Query:
    """The analytics API's query whose rows of ``place`` are the place's figures
    (``level`` and the filter the API takes: a desk's zone; an agency is campus-wide).
    A period too long for the bucket, or one ending before it starts: ValueError."""
    key = {Level.BUILDING: "building", Level.FLOOR: "floor"}.get(place.level, "zone")
    value = place.zone_id if place.level is Level.DESK else place.id
    filters: dict[str, str | None] = {} if place.level is Level.AGENCY else {key: value}
    return Query(place.level, bucket, first, last, **filters)


def api_parameters(query: Query) -> dict[str, str]:
    """The query as the API's parameters (``/api/v1/analytics/utilisation?...``)."""
    found = {"level": query.level.value, "bucket": query.bucket.value}
    found |= {"from": query.first.isoformat(), "to": query.last.isoformat()}
    return found | {k: v for k in ("building", "floor", "zone") if (v := getattr(query, k))}


@dataclass(frozen=True, slots=True)
class Report:
    """The figures of one place: ``utilisation`` and ``funnel`` per bucket, ``total``
    and ``funnel_total`` over the period (None: no data), ``heatmap`` per weekday
    (1 Monday .. 7 Sunday) and hour; ``people``: the group behind them."""

    place: ScopePlace
    query: Query
    people: int
    min_group: int
    utilisation: list[dict[str, Any]] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] | None = None
    funnel_total: dict[str, Any] | None = None
    heatmap: list[dict[str, Any]] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        """Whether the figures of people may be shown: a group of ``min_group`` or more."""
        return self.people >= self.min_group

    def rows(self, table: str) -> list[dict[str, Any]]:
        """``table``'s rows (utilisation, funnel, heatmap) for a download: each figure of
        people as ``<N`` when the group is too small."""
        found: list[dict[str, Any]] = getattr(self, table)
        if self.shown:
            return found
        public, hidden = PUBLIC[table], f"<{self.min_group}"
        return [{k: v if k in public else hidden for k, v in row.items()} for row in found]


async def report(
    conn: asyncpg.Connection,
    place: ScopePlace,
    bucket: Bucket,
    first: date,
    last: date,
    *,
    min_group: int,
    heatmap: bool = True,
) -> Report:
    """The place's figures for the period in ``bucket``s (ValueError: see ``query_of``);
    ``heatmap=False``: without the hours by weekday (a month of hourly rows a query)."""
    query = query_of(place, bucket, first, last)
    mine = _of(place)
    rows = mine(await analytics.utilisation(conn, query))
    total = mine(await analytics.utilisation_over_period(conn, query))
    # The most desks in use at one moment were as many different people: a lower bound.
    peak = int(total[0]["peak_occupied"]) if total else 0
    people = max(await analytics.people_behind(conn, query, place.id), peak)
    funnel_total = mine(await analytics.funnel(conn, query, whole_period=True))
    return Report(
        place,
        query,
        people,
        min_group,
        utilisation=rows,
        funnel=mine(await analytics.funnel(conn, query)),
        total=total[0] if total else None,
        funnel_total=funnel_total[0] if funnel_total else None,
        heatmap=await _heatmap(conn, query, mine) if heatmap else [],
    )


def _of(place: ScopePlace) -> Any:
    """Keeps the rows of ``place`` (the API's tables answer every place of the filter)."""

    def mine(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [dict(r) for r in rows if r["place"] == place.id]

    return mine


async def _heatmap(conn: asyncpg.Connection, query: Query, mine: Any) -> list[dict[str, Any]]:
    """Occupied and live minutes of each weekday and hour of the period, summed over
    the API's hourly rows (asked a month at a time, the most ``bucket=hour`` answers),
    and their occupancy share."""
    sums: dict[tuple[int, int], list[float]] = {}
    first, step = query.first, MAX_DAYS[Bucket.HOUR]
    while first <= query.last:
        last = min(first + timedelta(days=step - 1), query.last)
        hours = Query(
            query.level, Bucket.HOUR, first, last, query.building, query.floor, query.zone
        )
        for row in mine(await analytics.utilisation(conn, hours)):
            start = datetime.fromisoformat(row["bucket"])
            cell = sums.setdefault((start.isoweekday(), start.hour), [0.0, 0.0])
            cell[0] += row["live_minutes"]
            cell[1] += row["occupied_minutes"]
        first = last + timedelta(days=1)
    return [
        {
            "weekday": weekday,
            "hour": hour,
            "live_minutes": _number(live),
            "occupied_minutes": _number(occupied),
            "occupancy_share": round(occupied / live, 4) if live else None,
        }
        for (weekday, hour), (live, occupied) in sorted(sums.items())
    ]


def _number(value: float) -> float | int:
    """A sum of minutes as the API writes one: whole without a fraction."""
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded

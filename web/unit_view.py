"""What the My unit page shows, read through the service layer the API's reports share
(``ikn_service.reports``): the month of each person of the supervisor's agency and
unit, the year's unexcused absences of those near a PP 94/2021 threshold, and the
requests waiting for a decision. Plain functions and data; the page renders them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.attendance import AbsenceBand, AbsenceSummary, Policies, near_threshold, next_band
from ikn_core.attendance.requests import RequestError
from ikn_service import disruptions, reports
from ikn_service.attendance import check_decider
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance.days import counted_spans
from ikn_store.attendance.requests import Request
from ikn_store.people import Person, unit_people

# Unexcused days or fewer from the next PP 94/2021 band: shown among those to watch.
WATCH_MARGIN = 2
# The month's table, in the CSV's order: a summary key, "wfa_over_cap" (the WFA days
# beyond the weekly remote-work cap, PermenPANRB 4/2025) or "late_days".
COLUMNS = (
    "days_present",
    "wfo",
    "wfa",
    "wfa_over_cap",
    "late_days",
    "late_minutes",
    "unexcused_absences",
    "excused",
)


@dataclass(frozen=True, slots=True)
class Filters:
    """The month's table: which month (its first day), whose names hold ``name``, and
    with ``flagged`` only those with absences or lateness."""

    month: date
    name: str = ""
    flagged: bool = False

    def keeps(self, row: Row) -> bool:
        wanted = self.name.casefold()
        named = wanted in row.person.name.casefold() or wanted in row.person.id.casefold()
        return named and (row.flagged or not self.flagged)

    def query(self) -> dict[str, str]:
        """The filters as the page's GET parameters."""
        found = {"month": f"{self.month:%Y-%m}", "q": self.name}
        return {**found, "flagged": "1"} if self.flagged else found


@dataclass(frozen=True, slots=True)
class Row:
    """A person's month: the API's summary and the days they were late."""

    person: Person
    totals: Mapping[str, int]

    @property
    def flagged(self) -> bool:
        return self.totals["unexcused_absences"] > 0 or self.totals["late_days"] > 0

    def cells(self) -> list[int]:
        return [self.totals[c] for c in COLUMNS]


@dataclass(frozen=True, slots=True)
class Watched:
    """Someone at or near a PP 94/2021 threshold: the year so far, the next band."""

    person: Person
    year: AbsenceSummary
    next: AbsenceBand | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A request waiting for a decision; ``mine``: the supervisor's own (not theirs)."""

    request: Request
    name: str
    mine: bool


@dataclass(frozen=True, slots=True)
class Unit:
    zone: ZoneInfo
    today: date
    rows: tuple[Row, ...]  # the filters' rows, by name
    watched: tuple[Watched, ...]
    pending: tuple[Pending, ...]  # the supervisor's to decide, then their own
    # the platform's disruption windows touching the unit in the month (outage grace)
    disruptions: tuple[disruptions.Touching, ...] = ()


async def zone_of(conn: asyncpg.Connection, me: Person) -> ZoneInfo:
    """The zone of the supervisor's building (their days, their "today")."""
    return (await counted_spans(conn, [me.id]))[me.id][1]


async def read_unit(
    conn: asyncpg.Connection, policies: Policies, me: Person, filters: Filters, now: datetime
) -> Unit:
    zone = await zone_of(conn, me)
    today = now.astimezone(zone).date()
    people = {p.id: p for p in await unit_people(conn, me.agency, me.unit)}
    first = filters.month
    days = reports.until_today(policies, first, reports.month_end(first), today)
    month = await reports.by_person(conn, policies, list(people), days, now)
    rows = [
        Row(
            people[p],
            {
                **reports.summary(rs),
                "wfa_over_cap": reports.wfa_over_cap(rs),
                "late_days": reports.late_days(rs),
            },
        )
        for p, rs in month.items()
    ]
    return Unit(
        zone=zone,
        today=today,
        rows=tuple(sorted((r for r in rows if filters.keeps(r)), key=lambda r: r.person.name)),
        watched=await _watched(conn, policies, people, first.year, now=now, today=today),
        pending=await _pending(conn, me, people),
        disruptions=tuple(
            await disruptions.of_unit(conn, policies, me.agency, me.unit, days, now=now)
        ),
    )


async def _watched(
    conn: asyncpg.Connection,
    policies: Policies,
    people: Mapping[str, Person],
    year: int,
    *,
    now: datetime,
    today: date,
) -> tuple[Watched, ...]:
    """Those at or ``WATCH_MARGIN`` days from a threshold, the most absent first."""
    found = await reports.year_absences(conn, policies, list(people), year, now=now, today=today)
    first = policies.versions[0].effective_from  # a year before any policy: the first's
    policy = policies.in_force(max(first, min(today, date(year, 12, 31))))
    watched = [
        Watched(people[p], s, next_band(s.total, policy))
        for p, s in found.items()
        if near_threshold(s, policy, WATCH_MARGIN)
    ]
    return tuple(sorted(watched, key=lambda w: (-w.year.total, w.person.name)))


async def _pending(
    conn: asyncpg.Connection, me: Person, people: Mapping[str, Person]
) -> tuple[Pending, ...]:
    found = await requests_store.visible_to(conn, me, unit=True)
    waiting = [
        Pending(r, people[r.person_id].name if r.person_id in people else r.person_id, _mine(r, me))
        for r in found
        if r.status == "pending"
    ]
    return tuple(sorted(waiting, key=lambda p: (p.mine, p.request.requested_at)))


def _mine(request: Request, me: Person) -> bool:
    """Not ``me``'s to decide (their own, by the service's rule)."""
    try:
        check_decider(request, me, me.agency, me.unit)
    except RequestError:
        return True
    return False

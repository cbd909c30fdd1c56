"""Attendance use cases: clock in or out from the app, file a leave, travel or
correction request, approve or reject it, and the job that recomputes dirty days and
purges old coordinates."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.attendance import Coordinates, PlaceType, Policies, Policy, within_geofences
from ikn_core.attendance.errors import OutsideGeofence
from ikn_core.attendance.requests import (
    KINDS,
    NotHappenedYet,
    NotYourUnit,
    OwnRequest,
    RequestDecided,
    UnknownEvidence,
)
from ikn_core.attendance.sent import event_time
from ikn_core.attendance.week import over_cap_if_remote
from ikn_core.door_code import DoorCodeRefused, check
from ikn_core.fields import InvalidField, parse_day, parse_time
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance import signals as ledger
from ikn_store.attendance.days import mark_dirty, recompute_dirty
from ikn_store.attendance.requests import NewRequest, Request
from ikn_store.booking.bookings import check_in_at_door
from ikn_store.people import Person


@dataclass(frozen=True, slots=True)
class Clock:
    """Clock in or out (``kind``: ``app_check_in``, ``app_check_out``) from the app at
    ``at``, at a declared place type, from ``point`` when given; ``source``: unique.
    ``sent``: the phone's time of a clocking queued offline, then ``at`` is its receipt
    and the clocking's time is ``sent`` inside the bounds (``ikn_core.attendance.sent``)."""

    person_id: str
    kind: str
    at: datetime
    place_type: PlaceType
    point: Coordinates | None
    source: str
    sent: datetime | None = None


async def clock(conn: asyncpg.Connection, cmd: Clock, policy: Policy) -> ledger.StoredSignal:
    """Store the clocking; an ``office`` one only inside a building's geofence (the
    policy's radius, with a fix that precise: ``OutsideGeofence``), at the nearest."""
    at = event_time(cmd.sent, cmd.at, policy.late_signal_after)  # refused first
    sites: list[ledger.BuildingSite] = []
    if cmd.place_type == PlaceType.OFFICE:
        sites = await _office(conn, cmd.point, policy.geofence_radius_m)
    point = cmd.point
    signal = ledger.NewSignal(
        person_id=cmd.person_id,
        kind=cmd.kind,
        at=at,
        received_at=None if cmd.sent is None else cmd.at,
        place_type=str(cmd.place_type),
        source=cmd.source,
        building_id=sites[0].id if sites else None,
        lat=point.lat if point else None,
        lon=point.lon if point else None,
        accuracy_m=point.accuracy_m if point else None,
        also_within=tuple(s.id for s in sites[1:]),
    )
    return await ledger.add_app_signal(conn, signal, policy)


@dataclass(frozen=True, slots=True)
class RemoteCap:
    """A remote clock-in's day against the weekly cap: its rank among the week's WFA
    days, the cap, and whether it is over (recorded all the same, shown to the
    supervisor: ``week.mark_over_cap``)."""

    rank: int
    cap: int

    @property
    def over(self) -> bool:
        return self.rank > self.cap


# The person's WFA days of a week: stored as such, or (not computed yet) with only
# home or field signals.
_WEEK_WFA = """
SELECT day FROM attendance_days WHERE person_id = $1 AND mode = 'wfa' AND day >= $2 AND day < $3
UNION
SELECT (at AT TIME ZONE $4)::date FROM attendance_signals
WHERE person_id = $1 AND at >= ($2::timestamp AT TIME ZONE $4)
  AND at < ($3::timestamp AT TIME ZONE $4)
GROUP BY 1 HAVING bool_and(place_type IN ('home', 'field'))
"""


async def remote_cap(
    conn: asyncpg.Connection, policies: Policies, person_id: str, day: date, zone: ZoneInfo
) -> RemoteCap:
    """``day`` (in ``zone``, the person's) as a WFA day of ``person_id`` among their other
    WFA days of its ISO week."""
    monday = day - timedelta(days=day.weekday())
    rows = await conn.fetch(_WEEK_WFA, person_id, monday, monday + timedelta(days=7), zone.key)
    others = [r["day"] for r in rows if r["day"] != day]
    cap = policies.in_force(day).remote_days_per_week
    over = over_cap_if_remote(day, others, policies)
    rank = over[0] if over else len([d for d in others if d < day]) + 1
    return RemoteCap(rank, cap)


async def _office(
    conn: asyncpg.Connection, point: Coordinates | None, radius: float
) -> list[ledger.BuildingSite]:
    """The buildings whose geofence holds ``point``, nearest first."""
    if point is not None:
        sites = await ledger.located_buildings(conn)
        inside = within_geofences(point, [(s, Coordinates(s.lat, s.lon)) for s in sites], radius)
        if inside:
            return inside
    raise OutsideGeofence(radius)


@dataclass(frozen=True, slots=True)
class DoorScan:
    """``person_id`` scanned a door's code (its query's ``b``, ``w``, ``s``) at ``at``."""

    person_id: str
    building_id: str
    window: str
    signature: str
    at: datetime


@dataclass(frozen=True, slots=True)
class DoorCheckIn:
    building_id: str
    at: datetime  # when the presence was recorded (a replay: the first scan's time)
    new: bool  # False: this person scanned this code before (nothing stored again)
    desks: tuple[str, ...] = ()  # the desks whose bookings this scan checked in


async def door_check_in(
    conn: asyncpg.Connection, cmd: DoorScan, key: bytes, policy: Policy
) -> DoorCheckIn:
    """Record the person's presence in the building the code is of (a ``door_qr``
    signal at ``office``), when the code is ours and current (``DoorCodeRefused``
    otherwise), and check in the person's booking of the day there, as a badge tap at
    the door does (``check_in_at_door``). One signal per person and code: a second scan
    of it stores nothing."""
    code = check(key, cmd.building_id, cmd.window, cmd.signature, cmd.at)
    if not await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM buildings WHERE id = $1)", code.building_id
    ):
        raise DoorCodeRefused("door-code-unreadable", "the code's building is gone")
    source = f"door:{code.building_id}:{code.window}:{cmd.person_id}"
    signal = ledger.NewSignal(
        person_id=cmd.person_id,
        kind="door_qr",
        at=cmd.at,
        place_type=str(PlaceType.OFFICE),
        source=source,
        building_id=code.building_id,
    )
    async with conn.transaction():
        added = await ledger.add_signal(conn, signal, policy) is not None
        booked = await check_in_at_door(conn, cmd.person_id, code.building_id, cmd.at)
    desks = tuple(b.desk_id for b in booked)
    if added:
        return DoorCheckIn(code.building_id, cmd.at, True, desks)
    first = await ledger.signal_at(conn, source, "door_qr")
    return DoorCheckIn(code.building_id, first or cmd.at, False, desks)


@dataclass(frozen=True, slots=True)
class DecideRequest:
    """Approve (or reject) a request as ``approver``."""

    request_id: UUID
    approver: Person
    approve: bool


def new_request(
    person_id: str, body: Mapping[str, Any], now: datetime, zone: ZoneInfo
) -> NewRequest:
    """The request ``body`` asks for (``kind``, ``from``, ``to``, ``reason``, a
    correction's ``clock_in``, ``clock_out``, ``evidence``), or ``InvalidField``: a
    correction is of a day that has begun (in ``zone``, the person's, at ``now``), its
    times on that day, not in the future, the clock-out after the clock-in."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise InvalidField("kind", "required: cuti, dinas_luar or correction", "kind-required")
    first = parse_day("from", body.get("from"))
    last = parse_day("to", body["to"]) if body.get("to") is not None else first
    if last < first or (last - first).days > 366:
        raise InvalidField("to", "on or after from, at most a year later", "to-range")
    reason = body.get("reason")
    if not isinstance(reason, str) or not 1 <= len(reason.strip()) <= 1000:
        raise InvalidField("reason", "required: 1-1000 characters", "reason-required")
    clock_in = clock_out = None
    evidence = _evidence(body)
    if kind == "correction":
        clock_in, clock_out = _correction_times(body, first, last, now, zone)
    elif body.get("clock_in") is not None or body.get("clock_out") is not None:
        raise InvalidField("clock_in", "only a correction gives clock times", "times-not-asked")
    elif evidence:
        raise InvalidField("evidence", "only a correction cites evidence", "evidence-not-asked")
    return NewRequest(
        person_id, str(kind), first, last, reason.strip(), clock_in, clock_out, evidence=evidence
    )


_SIGNAL_ID = re.compile(r"s[0-9]{1,18}")


def _evidence(body: Mapping[str, Any]) -> tuple[int, ...]:
    """The signal ids (``s17``) a correction cites: late evidence it makes count."""
    value = body.get("evidence")
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > 100:
        reason = "a list of at most 100 signal ids such as s17"
        raise InvalidField("evidence", reason, "evidence-format")
    if not all(isinstance(item, str) and _SIGNAL_ID.fullmatch(item) for item in value):
        raise InvalidField("evidence", "a list of signal ids such as s17", "evidence-format")
    return tuple(int(item[1:]) for item in value)


def _correction_times(
    body: Mapping[str, Any], first: date, last: date, now: datetime, zone: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """A correction's clock-in and clock-out, on ``first`` in ``zone``, by ``now``."""
    at_now = now.astimezone(zone)
    if first > at_now.date():
        reason = f"a correction is of a day that has begun ({at_now.date()} {at_now:%Z} or before)"
        raise InvalidField("from", reason, "correction-not-begun")
    if last != first:
        raise InvalidField("to", "a correction is for one day", "correction-one-day")
    if body.get("clock_in") is None and body.get("clock_out") is None and not body.get("evidence"):
        reason = "a correction gives clock_in, clock_out, evidence"
        raise InvalidField("clock_in", reason, "correction-empty")
    times = {
        name: parse_time(name, body[name]) if body.get(name) is not None else None
        for name in ("clock_in", "clock_out")
    }
    for name, at in times.items():
        if at is None:
            continue
        if at.astimezone(zone).date() != first:
            reason = f"must fall on {first} ({at_now:%Z}, {zone.key})"
            raise InvalidField(name, reason, "time-other-day")
        if at > at_now:
            reason = "in the future: a correction records what happened"
            raise InvalidField(name, reason, "time-future")
    clock_in, clock_out = times["clock_in"], times["clock_out"]
    if clock_in is not None and clock_out is not None and clock_out <= clock_in:
        raise InvalidField("clock_out", "must be after clock_in", "out-before-in")
    return clock_in, clock_out


async def file_request(conn: asyncpg.Connection, new: NewRequest, by: str) -> Request:
    """File ``new`` for ``by``; a correction cites only device signals (badge taps,
    desk sensors) of its person on its day (``UnknownEvidence``)."""
    async with conn.transaction():
        if new.evidence:
            found = await requests_store.evidence_found(conn, new)
            if new.kind != "correction" or found != len(set(new.evidence)):
                raise UnknownEvidence(
                    f"a correction cites badge or desk signals of its person on {new.first} only"
                )
        return await requests_store.insert(conn, new, by)


def check_decider(request: Request, approver: Person, agency: str, unit: str) -> None:
    """A pending request is decided by a supervisor of its person's agency and unit
    (``agency``, ``unit``), never by its requester or its subject."""
    if request.status != "pending":
        raise RequestDecided(f"the request was {request.status} already")
    if approver.id in (request.requested_by, request.person_id):
        raise OwnRequest("a request cannot be decided by its requester or its subject")
    if (approver.agency, approver.unit) != (agency, unit):
        raise NotYourUnit("only a supervisor of the same agency and unit decides it")


async def decide(
    conn: asyncpg.Connection, cmd: DecideRequest, policies: Policies, *, now: datetime
) -> Request:
    """Approve or reject; an approval recomputes the days covered, all audited (each
    day's record before and after as it counts at ``now``), in one transaction."""
    async with conn.transaction():
        request, agency, unit = await requests_store.locked(conn, cmd.request_id)
        check_decider(request, cmd.approver, agency, unit)
        zone = await requests_store.zone_of(conn, request.person_id)
        begun = request.first <= now.astimezone(zone).date()
        if cmd.approve and request.kind == "correction" and not begun:
            raise NotHappenedYet(f"{request.first} has not begun in {zone.key}")
        decided = await requests_store.record_decision(
            conn, request, cmd.approver.id, cmd.approve, zone
        )
        if cmd.approve:
            await requests_store.apply(conn, decided, cmd.approver.id, policies, now)
    return decided


def load_policies(path: str, kept_days: int | None = None) -> Policies:
    """The policy file at ``path``, or the national default when empty (PolicyError if
    bad); reporting only the last ``kept_days`` (``IKN_ATTENDANCE_RETENTION_DAYS``)."""
    return (Policies.load(path) if path else Policies.default()).keeping(kept_days)


async def _recompute_all_dirty(conn: asyncpg.Connection, policies: Policies) -> int:
    done = 0
    while (n := await recompute_dirty(conn, policies)) > 0:
        done += n
    return done


async def recompute_round(conn: asyncpg.Connection, policies: Policies) -> int:
    """The recompute job's round: every dirty day recomputed (how many). Coordinates
    past the policy's retention are the retention job's (``ikn_service.retention``)."""
    return await _recompute_all_dirty(conn, policies)


async def recompute_days(
    conn: asyncpg.Connection, policies: Policies, people: list[str] | None, days: list[date]
) -> tuple[int, int]:
    """Recompute ``days`` of ``people`` (None: everyone): how many days were marked, and
    how many dirty days were recomputed (those and any others)."""
    marked = await mark_dirty(conn, people, days)
    return marked, await _recompute_all_dirty(conn, policies)

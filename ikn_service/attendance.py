"""Attendance use cases: clock in or out from the app, file a leave, travel or
correction request, approve or reject it, and the job that recomputes dirty days and
purges old coordinates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

import asyncpg

from ikn_core.attendance import Coordinates, PlaceType, Policies, Policy, within_geofences
from ikn_core.attendance.errors import OutsideGeofence
from ikn_core.attendance.requests import (
    NotHappenedYet,
    NotYourUnit,
    OwnRequest,
    RequestDecided,
    UnknownEvidence,
)
from ikn_core.attendance.sent import event_time
from ikn_store.attendance import requests as requests_store
from ikn_store.attendance import signals as ledger
from ikn_store.attendance.days import mark_dirty, recompute_dirty
from ikn_store.attendance.requests import NewRequest, Request
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
class DecideRequest:
    """Approve (or reject) a request as ``approver``."""

    request_id: UUID
    approver: Person
    approve: bool


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


def load_policies(path: str) -> Policies:
    """The policy file at ``path``, or the national default when empty (PolicyError if bad)."""
    return Policies.load(path) if path else Policies.default()


async def _recompute_all_dirty(conn: asyncpg.Connection, policies: Policies) -> int:
    done = 0
    while (n := await recompute_dirty(conn, policies)) > 0:
        done += n
    return done


async def recompute_round(
    conn: asyncpg.Connection, policies: Policies, now: datetime, today: date
) -> int:
    """The recompute job's round: every dirty day recomputed (how many), then the
    coordinates older than today's policy keeps purged."""
    done = await _recompute_all_dirty(conn, policies)
    await ledger.purge_coordinates(conn, ledger.retention_cutoff(now, policies.in_force(today)))
    return done


async def recompute_days(
    conn: asyncpg.Connection, policies: Policies, people: list[str] | None, days: list[date]
) -> tuple[int, int]:
    """Recompute ``days`` of ``people`` (None: everyone): how many days were marked, and
    how many dirty days were recomputed (those and any others)."""
    marked = await mark_dirty(conn, people, days)
    return marked, await _recompute_all_dirty(conn, policies)

"""Leave (cuti), official travel (dinas luar) and correction requests, and their audit.

The steps ``ikn_service.attendance`` composes into its use cases (file, approve,
reject): the rules and their errors (``ikn_core.attendance.requests``) live there.
The table refuses a request decided by its requester too. Approving one recomputes
the days it covers (``apply``); the audit keeps who, when, and each day's record
before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.attendance import Policies
from ikn_core.attendance.requests import RequestNotFound
from ikn_store.attendance import days as days_store
from ikn_store.people import Person


@dataclass(frozen=True, slots=True)
class NewRequest:
    person_id: str
    kind: str
    first: date
    last: date
    reason: str
    clock_in: datetime | None = None
    clock_out: datetime | None = None
    place_type: str = "office"
    evidence: tuple[int, ...] = ()  # ids of late signals a correction cites


@dataclass(frozen=True, slots=True)
class Request:
    id: UUID
    person_id: str
    kind: str
    first: date
    last: date
    reason: str
    clock_in: datetime | None
    clock_out: datetime | None
    status: str
    requested_by: str
    requested_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    evidence: list[int]

    def as_json(self, zone: ZoneInfo) -> dict[str, Any]:
        """JSON-ready, times in ``zone`` (the person's)."""

        def iso(value: date | datetime | None) -> str | None:
            if isinstance(value, datetime):
                return value.astimezone(zone).isoformat()
            return value.isoformat() if value else None

        return {
            "id": str(self.id),
            "person": self.person_id,
            "kind": self.kind,
            "from": iso(self.first),
            "to": iso(self.last),
            "reason": self.reason,
            "clock_in": iso(self.clock_in),
            "clock_out": iso(self.clock_out),
            "status": self.status,
            "requested_by": self.requested_by,
            "requested_at": iso(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": iso(self.decided_at),
            "evidence": [f"s{n}" for n in self.evidence],
        }

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(n) for n in range((self.last - self.first).days + 1)]


_COLUMNS = """id, person_id, kind, lower(days) AS first, upper(days) - 1 AS last, reason,
    clock_in, clock_out, status, requested_by, requested_at, decided_by, decided_at, evidence"""


def _request(row: asyncpg.Record) -> Request:
    return Request(**{k: row[k] for k in Request.__dataclass_fields__})


async def insert(conn: asyncpg.Connection, new: NewRequest, by: str) -> Request:
    """Store a new request and audit it (call it in a transaction)."""
    row = await conn.fetchrow(
        f"""INSERT INTO attendance_requests
                (person_id, kind, days, reason, clock_in, clock_out, requested_by, evidence)
            VALUES ($1, $2, daterange($3, $4, '[]'), $5, $6, $7, $8, $9)
            RETURNING {_COLUMNS}""",
        new.person_id,
        new.kind,
        new.first,
        new.last,
        new.reason,
        new.clock_in,
        new.clock_out,
        by,
        list(new.evidence),
    )
    assert row is not None
    request = _request(row)
    after = request.as_json(await zone_of(conn, request.person_id))
    await _audit(conn, actor=by, action="requested", request=request, after=after)
    return request


async def evidence_found(conn: asyncpg.Connection, new: NewRequest) -> int:
    """How many of the signals ``new`` cites are device signals (badge taps, desk
    sensors) of its person on its first day (in the person's zone)."""
    zone = await zone_of(conn, new.person_id)
    found: int = await conn.fetchval(
        """SELECT count(*) FROM attendance_signals
           WHERE id = ANY($1::bigint[]) AND person_id = $2 AND kind = ANY($3::text[])
             AND (at AT TIME ZONE $4)::date = $5""",
        list(new.evidence),
        new.person_id,
        sorted(days_store.DEVICE_SIGNAL_KINDS),
        zone.key,
        new.first,
    )
    return found


async def get(conn: asyncpg.Connection, request_id: UUID) -> Request:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM attendance_requests WHERE id = $1", request_id
    )
    if row is None:
        raise RequestNotFound(f"no request {request_id}")
    return _request(row)


async def visible_to(conn: asyncpg.Connection, me: Person, unit: bool) -> list[Request]:
    """My requests; with ``unit``, also those of my agency and unit."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM attendance_requests r
            WHERE r.person_id = $1 OR ($2 AND r.person_id IN
                (SELECT id FROM people WHERE agency = $3 AND unit = $4))
            ORDER BY r.requested_at DESC LIMIT 500""",
        me.id,
        unit,
        me.agency,
        me.unit,
    )
    return [_request(r) for r in rows]


async def locked(conn: asyncpg.Connection, request_id: UUID) -> tuple[Request, str, str]:
    """The request, locked for a decision (in a transaction), and its person's agency
    and unit."""
    row = await conn.fetchrow(
        f"""SELECT q.*, p.agency, p.unit
            FROM (SELECT {_COLUMNS} FROM attendance_requests WHERE id = $1 FOR UPDATE) q
            JOIN people p ON p.id = q.person_id""",
        request_id,
    )
    if row is None:
        raise RequestNotFound(f"no request {request_id}")
    return _request(row), row["agency"], row["unit"]


async def record_decision(
    conn: asyncpg.Connection, request: Request, approver_id: str, approve: bool, zone: ZoneInfo
) -> Request:
    """Mark ``request`` approved or rejected by ``approver_id``, audited."""
    action = "approved" if approve else "rejected"
    row = await conn.fetchrow(
        f"""UPDATE attendance_requests SET status = $2, decided_by = $3, decided_at = now()
            WHERE id = $1 RETURNING {_COLUMNS}""",
        request.id,
        action,
        approver_id,
    )
    assert row is not None
    decided = _request(row)
    await _audit(
        conn,
        actor=approver_id,
        action=action,
        request=decided,
        before=request.as_json(zone),
        after=decided.as_json(zone),
    )
    return decided


async def zone_of(conn: asyncpg.Connection, person_id: str) -> ZoneInfo:
    """The zone of the person's days (their home building's)."""
    return (await days_store.counted_spans(conn, [person_id]))[person_id][1]


async def apply(
    conn: asyncpg.Connection, request: Request, actor: str, policies: Policies, now: datetime
) -> None:
    """Make an approved request count (in its decision's transaction): add a
    correction's signals, then recompute every day covered, auditing each day
    as it said before (stored or, with no signal yet, computed on the spot) and after."""
    person, days = [request.person_id], request.days
    before = await days_store.records(conn, policies, person, days, now)
    # The days' dirty marks first, as a new signal's trigger takes them and as the
    # recompute job does (dirty mark, then record): in the other order the two deadlock.
    await days_store.mark_dirty(conn, person, days)
    if request.kind == "correction":
        await conn.execute(
            """UPDATE attendance_signals SET accepted_by = $2
               WHERE id = ANY($3::bigint[]) AND person_id = $1""",
            request.person_id,
            request.id,
            request.evidence,
        )
        building = await conn.fetchval(
            "SELECT home_building_id FROM people WHERE id = $1", request.person_id
        )
        for kind, at in (
            ("correction_in", request.clock_in),
            ("correction_out", request.clock_out),
        ):
            if at is not None:
                await conn.execute(
                    """INSERT INTO attendance_signals
                           (person_id, kind, at, place_type, building_id, source)
                       VALUES ($1, $2, $3, 'office', $4, $5)
                       ON CONFLICT ON CONSTRAINT attendance_signals_once DO NOTHING""",
                    request.person_id,
                    kind,
                    at,
                    building,
                    f"request:{request.id}",
                )
    due = await days_store.person_days(conn, person, days)
    await days_store.store(conn, await days_store.compute(conn, policies, due))
    await conn.execute(
        "DELETE FROM attendance_dirty WHERE person_id = $1 AND day = ANY($2::date[])",
        request.person_id,
        days,
    )
    after = await days_store.records(conn, policies, person, days, now)
    for key in sorted(after):
        await _audit(
            conn,
            actor=actor,
            action="recomputed",
            request=request,
            day=key[1],
            before=before[key].as_json(),
            after=after[key].as_json(),
        )


async def _audit(
    conn: asyncpg.Connection,
    *,
    actor: str,
    action: str,
    request: Request,
    day: date | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    await conn.execute(
        """INSERT INTO attendance_audit (actor, action, request_id, person_id, day, before, after)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        actor,
        action,
        request.id,
        request.person_id,
        day,
        before,
        after,
    )


async def audit_trail(
    conn: asyncpg.Connection, person_id: str, day: date, zone: ZoneInfo
) -> list[dict[str, Any]]:
    """Who did what to ``person_id``'s ``day`` (and the requests covering it), oldest
    first; times in ``zone``."""
    rows = await conn.fetch(
        """SELECT a.at, a.actor, a.action, a.request_id, a.day, a.before, a.after, a.signals
           FROM attendance_audit a LEFT JOIN attendance_requests r ON r.id = a.request_id
           WHERE a.person_id = $1 AND (a.day = $2 OR (a.day IS NULL AND r.days @> $2))
           ORDER BY a.id""",
        person_id,
        day,
    )
    return [
        {
            "at": r["at"].astimezone(zone).isoformat(),
            "actor": r["actor"],
            "action": r["action"],
            "request": str(r["request_id"]) if r["request_id"] else None,
            "day": r["day"].isoformat() if r["day"] else None,
            "before": r["before"],
            "after": r["after"],
            "signals": list(r["signals"]),  # of a job:recompute row: the signals new to it
        }
        for r in rows
    ]


async def excuse_kinds(conn: asyncpg.Connection, ids: Sequence[str]) -> dict[str, str]:
    """The kind (``cuti``, ``dinas_luar``) of each request id a record names as its excuse."""
    uuids = []
    for text in set(ids):
        try:
            uuids.append(UUID(text))
        except ValueError:
            continue  # not a request's id: no kind
    rows = await conn.fetch(
        "SELECT id, kind FROM attendance_requests WHERE id = ANY($1::uuid[])", uuids
    )
    return {str(r["id"]): r["kind"] for r in rows}

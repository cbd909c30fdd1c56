"""Daily attendance records: computing dirty days, storing and reading records.

A (person, day) is dirty when a signal of that local day arrived (trigger on
``attendance_signals``) or a request was approved. ``recompute_dirty`` takes a batch
of dirty days (``FOR UPDATE SKIP LOCKED``, so several API processes share the work),
computes each with ``ikn_core.attendance.compute_day`` under the policy in force that
day and stores the records, all in one transaction: a failure leaves the days dirty.
A signal arriving while a day is being computed marks it dirty again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.attendance import (
    CountedSpan,
    DailyRecord,
    Excuse,
    PlaceType,
    Policies,
    Signal,
    SignalKind,
    WorkMode,
    as_of,
    compute_day,
    mark_over_cap,
)
from ikn_core.attendance.sent import offline_note, sent_offline
from ikn_core.domain import IKN_TIME_ZONE
from ikn_store.attendance import disruptions as disruptions_store

_TAKE_DIRTY = """
WITH taken AS (
    DELETE FROM attendance_dirty d
    USING (SELECT person_id, day FROM attendance_dirty
           ORDER BY marked_at LIMIT $1 FOR UPDATE SKIP LOCKED) t
    WHERE d.person_id = t.person_id AND d.day = t.day
    RETURNING d.person_id, d.day)
SELECT t.person_id, t.day, p.agency, coalesce(p.duty_station_tz, b.tz, $2) AS tz
FROM taken t JOIN people p ON p.id = t.person_id
LEFT JOIN buildings b ON b.id = p.home_building_id
"""

_PEOPLE_DAYS = """
SELECT p.id AS person_id, q.day, p.agency, coalesce(p.duty_station_tz, b.tz, $3) AS tz
FROM unnest($1::text[]) p_id(id) JOIN people p ON p.id = p_id.id
LEFT JOIN buildings b ON b.id = p.home_building_id
CROSS JOIN unnest($2::date[]) q(day)
"""

# A window of three UTC days around each local day: compute_day keeps only the day's.
_SIGNALS = """
SELECT q.person_id, q.day, s.id, s.kind, s.at, s.place_type, s.building_id, b.agency,
       s.also_within, s.received_at, s.accepted_by IS NOT NULL AS accepted
FROM unnest($1::text[], $2::date[]) q(person_id, day)
JOIN attendance_signals s ON s.person_id = q.person_id
     AND s.at >= (q.day - 1)::timestamp AT TIME ZONE 'UTC'
     AND s.at < (q.day + 2)::timestamp AT TIME ZONE 'UTC'
LEFT JOIN buildings b ON b.id = s.building_id
"""

_EXCUSES = """
SELECT q.person_id, q.day, r.id, r.kind, r.reason
FROM unnest($1::text[], $2::date[]) q(person_id, day)
JOIN attendance_requests r ON r.person_id = q.person_id AND r.status = 'approved'
     AND r.kind IN ('cuti', 'dinas_luar') AND r.days @> q.day
"""

# What decides which of a person's days count (ikn_core.attendance.counting).
_SPANS = """
SELECT p.id, coalesce(p.duty_station_tz, b.tz, $2) AS tz, p.employment_start,
       p.employment_end,
       (p.known_since AT TIME ZONE coalesce(p.duty_station_tz, b.tz, $2))::date AS known_from,
       coalesce(b.live_from, (b.created_at AT TIME ZONE b.tz)::date) AS building_live_from
FROM people p LEFT JOIN buildings b ON b.id = p.home_building_id
WHERE p.id = ANY($1::text[])
"""

_UPSERT = """
INSERT INTO attendance_days AS a (person_id, day, mode, clock_in, clock_out, minutes_worked,
    late_minutes, early_departure_minutes, missing_clock_in, missing_clock_out, excuse_id,
    record, policy_version, computed_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())
ON CONFLICT (person_id, day) DO UPDATE SET mode = EXCLUDED.mode,
    clock_in = EXCLUDED.clock_in, clock_out = EXCLUDED.clock_out,
    minutes_worked = EXCLUDED.minutes_worked, late_minutes = EXCLUDED.late_minutes,
    early_departure_minutes = EXCLUDED.early_departure_minutes,
    missing_clock_in = EXCLUDED.missing_clock_in, missing_clock_out = EXCLUDED.missing_clock_out,
    excuse_id = EXCLUDED.excuse_id, record = EXCLUDED.record,
    policy_version = EXCLUDED.policy_version, computed_at = now()
"""


@dataclass(frozen=True, slots=True)
class PersonDay:
    person_id: str
    day: date
    agency: str
    tz: str


def _key(row: asyncpg.Record) -> tuple[str, date]:
    return row["person_id"], row["day"]


def _signal(row: asyncpg.Record) -> Signal:
    return Signal(
        f"s{row['id']}",
        SignalKind(row["kind"]),
        row["at"],
        PlaceType(row["place_type"]),
        row["building_id"],
        row["agency"],
        tuple(row["also_within"]),
    )


# Signals a device makes from its readings, whose time is the device's clock: those
# received late are evidence pending a correction (``late``).
DEVICE_SIGNAL_KINDS = frozenset({"badge_in", "badge_out", "desk_occupied"})


def late(row: asyncpg.Record, policies: Policies) -> bool:
    """A device's signal received more than the policy's ``late_signal_after`` after its
    time (in force on its day), not accepted by an approved correction citing it: it is
    kept as evidence and counts for nothing until then."""
    return (
        row["kind"] in DEVICE_SIGNAL_KINDS
        and not row["accepted"]
        and row["received_at"] - row["at"] > policies.in_force(row["day"]).late_signal_after
    )


# Signals a phone sends, which it may have queued while offline (ikn_core.attendance.sent).
PHONE_SIGNAL_KINDS = frozenset({"app_check_in", "app_check_out", "booking_check_in"})


def _offline(row: asyncpg.Record, zone: ZoneInfo) -> str | None:
    """The explanation's line of a phone's signal that waited on the phone, else None."""
    if row["kind"] not in PHONE_SIGNAL_KINDS or not sent_offline(row["at"], row["received_at"]):
        return None
    return offline_note(row["kind"], f"s{row['id']}", row["at"], row["received_at"], zone)


def _pending(row: asyncpg.Record, zone: ZoneInfo) -> str:
    at, received = row["at"].astimezone(zone), row["received_at"].astimezone(zone)
    return (
        f"pending evidence: {row['kind']} s{row['id']} at {at:%H:%M %Z} received late "
        f"({received:%Y-%m-%d %H:%M %Z}): counts only through an approved correction citing it"
    )


async def compute(
    conn: asyncpg.Connection, policies: Policies, due: Sequence[PersonDay]
) -> list[tuple[str, DailyRecord]]:
    """The records of ``due`` from the ledger and approved leave / official travel; late
    evidence (``late``) is left out, and named in the reasons; a lateness or early
    departure inside the platform's disruption windows is marked (``disruptions``)."""
    people = [d.person_id for d in due]
    days = [d.day for d in due]
    zones = {d.person_id: ZoneInfo(d.tz) for d in due}
    signals: dict[tuple[str, date], list[Signal]] = defaultdict(list)
    pending: dict[tuple[str, date], list[str]] = defaultdict(list)
    offline: dict[tuple[str, date], list[str]] = defaultdict(list)
    for row in await conn.fetch(_SIGNALS, people, days):
        zone = zones[row["person_id"]]
        on_day = row["at"].astimezone(zone).date() == row["day"]
        if late(row, policies):
            if on_day:
                pending[_key(row)].append(_pending(row, zone))
        else:
            signals[_key(row)].append(_signal(row))
            note = _offline(row, zone) if on_day else None
            if note is not None:
                offline[_key(row)].append(note)
    excuses: dict[tuple[str, date], Excuse] = {}
    for row in await conn.fetch(_EXCUSES, people, days):
        excuses[_key(row)] = Excuse(row["day"], row["kind"], row["reason"], str(row["id"]))
    windows = await disruptions_store.of_people(conn, people, days)
    out = []
    for d in due:
        key = (d.person_id, d.day)
        policy = policies.in_force(d.day)
        record = compute_day(
            d.day,
            ZoneInfo(d.tz),
            d.agency,
            signals.get(key, ()),
            policy=policy,
            excuse=excuses.get(key),
            disruptions=windows.get(d.person_id, ()),
        )
        if key in pending or key in offline:  # the signals' notes first, as they came
            notes = sorted(offline.get(key, []))
            record = replace(record, reasons=(*notes, *record.reasons, *pending.get(key, [])))
        out.append((d.person_id, record))
    return out


async def pending_evidence(
    conn: asyncpg.Connection, policies: Policies, person_id: str, day: date, zone: ZoneInfo
) -> list[str]:
    """The ids of ``person_id``'s late signals of ``day`` (``late``): evidence waiting
    for a correction that cites it."""
    rows = await conn.fetch(_SIGNALS, [person_id], [day])
    return [
        f"s{r['id']}" for r in rows if late(r, policies) and r["at"].astimezone(zone).date() == day
    ]


async def store(conn: asyncpg.Connection, records: Sequence[tuple[str, DailyRecord]]) -> None:
    await conn.executemany(
        _UPSERT,
        [
            (
                person,
                r.day,
                r.mode.value,
                r.clock_in,
                r.clock_out,
                r.minutes_worked,
                r.late_minutes,
                r.early_departure_minutes,
                r.missing_clock_in,
                r.missing_clock_out,
                r.excuse_id,
                r.as_json(),
                r.policy_version,
            )
            for person, r in records
        ],
    )


_STORED = """
SELECT a.person_id, a.day, a.record
FROM unnest($1::text[], $2::date[]) q(person_id, day)
JOIN attendance_days a ON a.person_id = q.person_id AND a.day = q.day
"""

# One statement per job run: a row per record whose content changed.
_AUDIT_CHANGES = """
INSERT INTO attendance_audit (actor, action, person_id, day, before, after, signals)
SELECT 'job:recompute', 'recomputed', q.person_id, q.day, q.before, q.after,
       ARRAY(SELECT jsonb_array_elements_text(q.signals))
FROM jsonb_to_recordset($1::jsonb)
    AS q(person_id text, day date, before jsonb, after jsonb, signals jsonb)
"""


async def recompute_dirty(conn: asyncpg.Connection, policies: Policies, limit: int = 2000) -> int:
    """Compute and store up to ``limit`` dirty days; how many were done. Every stored
    record whose content this changes is audited (``audit_changes``)."""
    async with conn.transaction():
        rows = await conn.fetch(_TAKE_DIRTY, limit, IKN_TIME_ZONE)
        due = [PersonDay(r["person_id"], r["day"], r["agency"], r["tz"]) for r in rows]
        if due:
            computed = await compute(conn, policies, due)
            people, days = [d.person_id for d in due], [d.day for d in due]
            before = {_key(r): r["record"] for r in await conn.fetch(_STORED, people, days)}
            await store(conn, computed)
            await audit_changes(conn, before, computed)
    return len(due)


async def audit_changes(
    conn: asyncpg.Connection,
    before: dict[tuple[str, date], dict[str, Any]],
    computed: Sequence[tuple[str, DailyRecord]],
) -> None:
    """Audit, as ``job:recompute`` with the ids of the signals new to each record, every
    record of ``computed`` that replaced a stored one of other content. A day's first
    record is no change: it replaces nothing (what the day said until then was computed
    on the spot from no signal)."""
    changes = []
    for person, record in computed:
        old = before.get((person, record.day))
        after = record.as_json()
        # as records: one stored before a key was added reads with its default
        if old is None or DailyRecord.from_json(old) == record:
            continue
        new = [s for s in record.signals if s not in old.get("signals", ())]
        changes.append(
            {"person_id": person, "day": record.day, "before": old, "after": after, "signals": new}
        )
    if changes:
        await conn.execute(_AUDIT_CHANGES, changes)


async def person_days(
    conn: asyncpg.Connection, person_ids: Sequence[str], days: Sequence[date]
) -> list[PersonDay]:
    rows = await conn.fetch(_PEOPLE_DAYS, list(person_ids), list(days), IKN_TIME_ZONE)
    return [PersonDay(r["person_id"], r["day"], r["agency"], r["tz"]) for r in rows]


async def mark_dirty(
    conn: asyncpg.Connection, person_ids: Sequence[str] | None, days: Sequence[date]
) -> int:
    """Mark days dirty for these people (everyone when None); how many."""
    status = await conn.execute(
        """INSERT INTO attendance_dirty (person_id, day)
           SELECT p.id, q.day FROM people p CROSS JOIN unnest($2::date[]) q(day)
           WHERE $1::text[] IS NULL OR p.id = ANY($1::text[])
           ON CONFLICT (person_id, day) DO UPDATE SET marked_at = now()""",
        None if person_ids is None else list(person_ids),
        list(days),
    )
    return int(status.rsplit(" ", 1)[-1])


async def counted_spans(
    conn: asyncpg.Connection, person_ids: Sequence[str]
) -> dict[str, tuple[CountedSpan, ZoneInfo]]:
    """Each person's counted span and the zone of their days: their duty station's
    (``people.duty_station_tz``), else their home building's, else IKN's."""
    rows = await conn.fetch(_SPANS, list(person_ids), IKN_TIME_ZONE)
    return {
        r["id"]: (
            CountedSpan.of(
                employment_start=r["employment_start"],
                employment_end=r["employment_end"],
                known_from=r["known_from"],
                building_live_from=r["building_live_from"],
            ),
            ZoneInfo(r["tz"]),
        )
        for r in rows
    }


async def records(
    conn: asyncpg.Connection,
    policies: Policies,
    person_ids: Sequence[str],
    days: Sequence[date],
    now: datetime,
) -> dict[tuple[str, date], DailyRecord]:
    """The records of these people on these days as they count at ``now``
    (``ikn_core.attendance.as_of``: not counted outside a person's span, not yet
    absent before the day is over): stored ones as stored; a day with no stored record
    (no signal ever arrived) computed on the spot, not stored."""
    rows = await conn.fetch(
        """SELECT person_id, day, record FROM attendance_days
           WHERE person_id = ANY($1::text[]) AND day = ANY($2::date[])""",
        list(person_ids),
        list(days),
    )
    found = {_key(r): DailyRecord.from_json(r["record"]) for r in rows}
    missing = [
        d for d in await person_days(conn, person_ids, days) if (d.person_id, d.day) not in found
    ]
    for person, record in await compute(conn, policies, missing) if missing else []:
        found[(person, record.day)] = record
    spans = await counted_spans(conn, person_ids)
    shown = {(p, d): as_of(r, *spans[p], now) for (p, d), r in found.items()}
    return await _marked(conn, policies, shown, {p: s for p, (s, _) in spans.items()})


# The stored WFA days of these people between two days (the weeks a report starts in).
_WFA_DAYS = """
SELECT person_id, day FROM attendance_days
WHERE person_id = ANY($1::text[]) AND mode = 'wfa' AND day >= $2 AND day <= $3
"""


async def _marked(
    conn: asyncpg.Connection,
    policies: Policies,
    shown: dict[tuple[str, date], DailyRecord],
    spans: dict[str, CountedSpan],
) -> dict[tuple[str, date], DailyRecord]:
    """``shown`` with each WFA day beyond its week's remote-work cap marked
    (``mark_over_cap``), counting the weeks' counted WFA days not shown too."""
    wfa = [d for (_, d), r in shown.items() if r.mode is WorkMode.WFA]
    if not wfa:
        return shown
    monday = min(wfa) - timedelta(days=min(wfa).weekday())
    people = sorted({p for p, _ in shown})
    others: dict[str, list[date]] = defaultdict(list)
    for row in await conn.fetch(_WFA_DAYS, people, monday, max(wfa)):
        key = (row["person_id"], row["day"])
        if key not in shown and spans[row["person_id"]].covers(row["day"]):
            others[row["person_id"]].append(row["day"])
    by_person: dict[str, list[DailyRecord]] = defaultdict(list)
    for (p, _), r in shown.items():
        by_person[p].append(r)
    out = {}
    for p, rs in by_person.items():
        for r in mark_over_cap(rs, others.get(p, ()), policies):
            out[(p, r.day)] = r
    return out

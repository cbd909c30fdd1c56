"""Writes what the ingest received, in one transaction per batch of messages.

Readings go into ``readings`` by COPY (encoded by ``copy_rows``); the key
``(device_id, stream, seq, ts)`` makes a redelivered reading fail it, and then the
batch is written again through the connection's ``staging_readings`` temp table with
``INSERT ... ON CONFLICT DO NOTHING``. The SQL function ``ingest_derive()``
(ikn_store/sql/ingest/) then derives desk state, zone counts, sensor check-ins,
analytics dirty spans, attendance signals and last-seen from the batch's summary
(``summarise``), one step function per feature, in one round trip; device status
is upserted alongside. All in one transaction, so live state never runs ahead of or
behind what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
import orjson

from ikn_core.booking import CHECK_IN_OPENS_BEFORE
from ikn_core.domain import READING_KINDS, DeviceKind
from ikn_store.fleet.dead_letters import DeadLetter
from ikn_store.fleet.dead_letters import store as store_dead_letters
from ikn_store.readings import copy_rows

# Of a device's dead letters, how many payloads an hour are kept before only one in so
# many is (IKN_DEAD_LETTER_KEEP_PER_HOUR; the counts stay exact).
DEAD_LETTER_KEEP_PER_HOUR = 100

_READING_COLUMNS = ("device_id", "stream", "seq", "ts", "received_at", "kind", "body")

# Desks whose grace ran out with no newer reading: free since they were left.
_RELEASE_VACANT_DESKS = """
UPDATE desk_state
SET occupied = false, since = vacant_since, vacant_since = NULL, updated_at = now()
WHERE vacant_since IS NOT NULL AND vacant_since <= now() - $1::interval
"""

# Derives desk state, zone counts, sensor check-ins, analytics dirty spans, attendance
# signals and last-seen from a batch's summary (ikn_store/sql/ingest/ingest_derive.sql).
_INGEST_DERIVE = "SELECT ingest_derive($1::json, $2::interval, $3::interval, $4, $5)"
_INSERT_STAGED = "INSERT INTO readings SELECT * FROM staging_readings ON CONFLICT DO NOTHING"
# Kinds whose bodies the derivation reads: their readings are also staged.
_STAGED_KINDS = frozenset({"people_count", "badge_tap"})

_UPSERT_STATUS = """
INSERT INTO device_status AS s (device_id, online, status, status_at, last_seen)
VALUES ($1, $2, $3, $4, $4)
ON CONFLICT (device_id) DO UPDATE SET
    online = EXCLUDED.online, status = EXCLUDED.status, status_at = EXCLUDED.status_at,
    last_seen = GREATEST(s.last_seen, EXCLUDED.last_seen)
WHERE s.status_at IS NULL OR EXCLUDED.status_at >= s.status_at
"""


class ReadingRow(NamedTuple):
    """One reading as stored; a tuple in the column order of ``readings``, which
    ``copy_rows.encode`` turns into COPY data (the ingest makes a hundred thousand of
    these a second)."""

    device_id: str
    stream: str
    seq: int
    ts: datetime
    received_at: datetime
    kind: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class UpMessage:
    """The readings of one valid ``up`` message, kept with the raw payload in case
    the device turns out to be unknown (then the whole message is a dead letter)."""

    topic: str
    device_id: str
    payload: bytes
    received_at: datetime
    rows: tuple[ReadingRow, ...]


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    topic: str
    device_id: str
    payload: bytes
    received_at: datetime
    online: bool
    status: dict[str, Any]


class DevicePlace(NamedTuple):
    """Where an enabled device is (tags for the InfluxDB sink)."""

    building_id: str
    floor_id: str | None
    zone_id: str | None


@dataclass(slots=True)
class WriteResult:
    stored: int = 0
    duplicates: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # The enabled devices of the batch: their readings were stored (or already were).
    places: dict[str, DevicePlace] = field(default_factory=dict)


async def write(
    conn: asyncpg.Connection,
    messages: Sequence[UpMessage],
    statuses: Sequence[StatusUpdate] = (),
    dead_letters: Sequence[DeadLetter] = (),
    *,
    vacant_grace: timedelta = timedelta(0),
    dead_letter_keep: int = DEAD_LETTER_KEEP_PER_HOUR,
) -> WriteResult:
    """Store one batch in one transaction; return what happened to it. A desk whose
    sensor says vacant counts as in use for ``vacant_grace`` more; of a device's dead
    letters, ``dead_letter_keep`` payloads an hour are kept in full (``store_dead_letters``)."""
    options = _Options(vacant_grace, dead_letter_keep)
    try:
        return await _write(conn, messages, statuses, dead_letters, options, redelivered=False)
    except _StoredBefore:
        return await _write(conn, messages, statuses, dead_letters, options, redelivered=True)


class _Options(NamedTuple):
    vacant_grace: timedelta
    dead_letter_keep: int


class _StoredBefore(Exception):
    """The batch holds a reading stored before (a redelivery): its COPY into
    ``readings`` failed, and its transaction is rolled back."""


async def _write(
    conn: asyncpg.Connection,
    messages: Sequence[UpMessage],
    statuses: Sequence[StatusUpdate],
    letters: Sequence[DeadLetter],
    options: _Options,
    *,
    redelivered: bool,
) -> WriteResult:
    async with conn.transaction():
        known, kinds = await _enabled_devices(
            conn, {m.device_id for m in messages} | {s.device_id for s in statuses}
        )
        result = WriteResult(dead_letters=list(letters), places=known)
        items: list[UpMessage | StatusUpdate] = [*messages, *statuses]
        for item in items:
            if item.device_id not in known:
                result.dead_letters.append(_unknown(item))
        ups = []
        for m in messages:
            if m.device_id in known and m.rows:
                wrong = _wrong_kind(m, kinds[m.device_id])
                if wrong is None:
                    ups.append(m)
                else:
                    result.dead_letters.append(wrong)
        if ups:
            result.stored = await _store_readings(conn, ups, options.vacant_grace, redelivered)
            result.duplicates = sum(len(m.rows) for m in ups) - result.stored
        await _upsert_statuses(conn, [s for s in statuses if s.device_id in known])
        await store_dead_letters(conn, result.dead_letters, options.dead_letter_keep)
        return result


async def write_dead_letters(
    conn: asyncpg.Connection,
    letters: Sequence[DeadLetter],
    keep_per_hour: int = DEAD_LETTER_KEEP_PER_HOUR,
) -> None:
    await write(conn, (), (), letters, dead_letter_keep=keep_per_hour)


_ENABLED_DEVICES = """
SELECT d.id, d.building_id, z.floor_id, d.zone_id, d.kind, d.desk_id IS NULL AS at_door
FROM devices d LEFT JOIN zones z ON z.id = d.zone_id
WHERE d.id = ANY($1::text[]) AND d.enabled
"""


async def _enabled_devices(
    conn: asyncpg.Connection, ids: set[str]
) -> tuple[dict[str, DevicePlace], dict[str, frozenset[str]]]:
    """Where each enabled device of ``ids`` is, and which reading kinds it may send."""
    if not ids:
        return {}, {}
    rows = await conn.fetch(_ENABLED_DEVICES, ids)
    places = {r[0]: DevicePlace(r[1], r[2], r[3]) for r in rows}
    return places, {r[0]: _sends(DeviceKind(r[4]), r[5]) for r in rows}


# What a badge reader placed at a desk may send: its taps are no attendance signal, as
# only a reader at a door of its building (at no desk) counts them (docs/attendance.md).
_READER_AT_DESK = READING_KINDS[DeviceKind.BADGE_READER] - {"badge_tap"}


def _sends(kind: DeviceKind, at_door: bool) -> frozenset[str]:
    """The reading kinds a device of ``kind`` may send where it is."""
    if kind is DeviceKind.BADGE_READER and not at_door:
        return _READER_AT_DESK
    return READING_KINDS[kind]


def _wrong_kind(message: UpMessage, allowed: frozenset[str]) -> DeadLetter | None:
    """A dead letter when a reading of ``message`` is of a kind its device does not send."""
    for i, row in enumerate(message.rows):
        if row.kind == "badge_tap" and allowed is _READER_AT_DESK:
            reason = "not_at_door"
            detail = f"readings[{i}].kind: a badge_tap from a badge reader placed at a desk"
        elif row.kind not in allowed:
            reason = "wrong_kind"
            detail = (
                f"readings[{i}].kind: a {row.kind} reading from a device that sends "
                f"{', '.join(sorted(allowed))}"
            )
        else:
            continue
        return DeadLetter(
            message.received_at, message.topic, message.device_id, reason, detail, message.payload
        )
    return None


def _unknown(item: UpMessage | StatusUpdate) -> DeadLetter:
    return DeadLetter(
        item.received_at,
        item.topic,
        item.device_id,
        "unknown_device",
        f"device {item.device_id!r} is not registered or is disabled",
        item.payload,
    )


async def _store_readings(
    conn: asyncpg.Connection,
    messages: list[UpMessage],
    vacant_grace: timedelta,
    redelivered: bool,
) -> int:
    """Store the readings of ``messages`` (all of them new, unless ``redelivered``) and
    derive what depends on them; how many were new."""
    rows = [r for m in messages for r in m.rows]
    summary = summarise(messages)
    if redelivered:
        await _copy(conn, "staging_readings", rows)
        stored = _count(await conn.execute(_INSERT_STAGED))
    else:
        try:
            stored = _count(await _copy(conn, "readings", rows))
        except asyncpg.UniqueViolationError as exc:
            raise _StoredBefore from exc
        if summary.has_counts or summary.has_taps:
            await _copy(conn, "staging_readings", [r for r in rows if r.kind in _STAGED_KINDS])
    await conn.execute(
        _INGEST_DERIVE,
        summary.json(),
        vacant_grace,
        CHECK_IN_OPENS_BEFORE,
        summary.has_counts,
        summary.has_taps,
    )
    return stored


async def _copy(conn: asyncpg.Connection, table: str, rows: Sequence[ReadingRow]) -> str:
    return str(
        await conn.copy_to_table(
            table,
            source=copy_rows.chunks(copy_rows.encode(rows)),
            columns=_READING_COLUMNS,
            format="binary",
        )
    )


def _count(status: str) -> int:
    """The row count of a command status (``COPY 5000``, ``INSERT 0 12``)."""
    return int(status.rsplit(" ", 1)[-1])


class Summary(NamedTuple):
    """A batch of readings per device, kind and time (a message's readings usually
    share all three, so a few entries per device), and which kinds it holds that are
    read from ``staging_readings``."""

    # (device_id, kind, ts) -> (the newest receipt, a desk reading there says occupied,
    # the one with the highest seq says occupied)
    groups: dict[tuple[str, str, datetime], tuple[datetime, bool, bool]]
    has_counts: bool
    has_taps: bool

    def json(self) -> str:
        """As ``ingest_derive()`` takes it: an array of objects."""
        return orjson.dumps(
            [
                {
                    "device_id": device_id,
                    "kind": kind,
                    "ts": ts,
                    "seen": seen,
                    "occupied": occupied,
                    "last_occupied": last_occupied,
                }
                for (device_id, kind, ts), (seen, occupied, last_occupied) in self.groups.items()
            ]
        ).decode()


def summarise(messages: Iterable[UpMessage]) -> Summary:
    """What ``ingest_derive()`` needs of a batch: the staged rows grouped as
    ``GROUP BY device_id, kind, ts`` would. A message's readings carry its
    device and receipt time, so only their kind, time, seq and body are looked at."""
    # [seen, occupied, highest seq, its reading occupied] per (device, kind, ts)
    groups: dict[tuple[str, str, datetime], list[Any]] = {}
    group: list[Any] = []
    last_kind = ""
    for message in messages:
        device_id, received_at = message.device_id, message.received_at
        last_ts: datetime | None = None  # a new message starts a new run
        for _device, _stream, seq, ts, _received, kind, body in message.rows:
            occupied = kind == "desk_occupancy" and body.get("occupied") is True
            if ts != last_ts or kind != last_kind:  # runs of one time and kind are the rule
                last_ts, last_kind = ts, kind
                key = (device_id, kind, ts)
                found = groups.get(key)
                if found is None:
                    groups[key] = group = [received_at, occupied, seq, occupied]
                    continue
                group = found
                group[0] = max(group[0], received_at)
            if occupied:
                group[1] = True
            if seq > group[2]:
                group[2], group[3] = seq, occupied
            elif occupied and seq == group[2]:
                group[3] = True
    kinds = {k[1] for k in groups}
    return Summary(
        {k: (g[0], g[1], g[3]) for k, g in groups.items()},
        "people_count" in kinds,
        "badge_tap" in kinds,
    )


async def _upsert_statuses(conn: asyncpg.Connection, statuses: list[StatusUpdate]) -> None:
    if statuses:
        await conn.executemany(
            _UPSERT_STATUS,
            [(s.device_id, s.online, s.status, s.received_at) for s in statuses],
        )


async def stream_counts(conn: asyncpg.Connection, stream: str) -> tuple[int, int]:
    """Readings stored for one outbox stream, and how many distinct seqs among them:
    equal and complete means every reading exactly once."""
    row = await conn.fetchrow(
        "SELECT count(*), count(DISTINCT seq) FROM readings WHERE stream = $1", stream
    )
    assert row is not None
    return int(row[0]), int(row[1])


async def release_vacant_desks(conn: asyncpg.Connection, vacant_grace: timedelta) -> int:
    """Turn free the desks left more than ``vacant_grace`` ago with no newer reading
    (the ingest runs this every second); how many."""
    status = await conn.execute(_RELEASE_VACANT_DESKS, vacant_grace)
    return int(status.rsplit(" ", 1)[-1])


@dataclass(frozen=True, slots=True)
class ZoneCount:
    zone_id: str
    floor_id: str
    building_id: str
    tz: str
    people: int
    reported_at: datetime
    device_id: str


async def zone_counts(
    conn: asyncpg.Connection,
    building: str | None = None,
    floor: str | None = None,
    zone: str | None = None,
) -> list[ZoneCount]:
    """The newest people count of each zone under the given places (zones with one)."""
    rows = await conn.fetch(
        """SELECT z.id AS zone_id, f.id AS floor_id, b.id AS building_id, b.tz,
                  c.people, c.reported_at, c.device_id
           FROM zone_counts c
           JOIN zones z ON z.id = c.zone_id
           JOIN floors f ON f.id = z.floor_id
           JOIN buildings b ON b.id = f.building_id
           WHERE ($1::text IS NULL OR b.id = $1)
             AND ($2::text IS NULL OR f.id = $2)
             AND ($3::text IS NULL OR z.id = $3)
           ORDER BY f.level, z.id""",
        building,
        floor,
        zone,
    )
    return [ZoneCount(**dict(r)) for r in rows]

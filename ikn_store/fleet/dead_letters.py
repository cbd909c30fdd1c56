"""Dead letters: what did not fit the contract, kept with the reason, and read back.

Writing one can never fail on its content: the payload goes into ``bytea`` (cut to
the contract's maximum, its full length and SHA-256 kept beside it, badge fields
redacted: ``redact``), and every text column holds a safe rendering (``safe_text``:
U+0000 and lone surrogates written as escapes, bounded in length). A flood from one
device is bounded too: the counts per device, reason and hour (``dead_letter_counts``)
stay exact, while of the payloads only the first ``keep_per_hour`` and then one in
every ``keep_per_hour`` are kept. Both expire after the retention (``delete_expired``,
run by the ingest's maintenance).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ikn_core.contract import MAX_PAYLOAD_BYTES

DETAIL_MAX_CHARS = 500
TOPIC_MAX_CHARS = 300
_COLUMNS = ("received_at", "topic", "device_id", "reason", "detail", "payload", "size", "sha256")
_DELETE_CHUNK = 10_000  # rows per statement when expiring, so no transaction grows huge


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    reason: str
    detail: str
    payload: bytes  # at most MAX_PAYLOAD_BYTES of it
    size: int  # of the payload as received
    sha256: bytes  # of the payload as received


def safe_text(text: str, limit: int) -> str:
    """``text`` as a PostgreSQL text column holds it: U+0000 written ``\\u0000``, a lone
    surrogate ``\\ud800``, and cut to ``limit`` characters (ending in "…")."""
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# A badge field's value in JSON text, even broken or cut short: a string, or anything up
# to the next delimiter. "card" too: a faulty reader may send its card number so named.
_BADGE_VALUE = re.compile(rb'("(?:badge|card)"\s*:\s*)(?:"(?:[^"\\]|\\.)*"?|[^\s,}\]]+)')
REDACTED = b'"[redacted]"'


def redact(payload: bytes) -> bytes:
    """``payload`` with the value of every ``badge`` (and ``card``) field replaced by
    ``"[redacted]"``: a badge token, or a card number a faulty reader sent, is personal
    data that neither the table nor a facility manager needs. The rest stays byte for
    byte; the size and SHA-256 kept beside it are of the payload as received."""
    if b'"badge"' not in payload and b'"card"' not in payload:
        return payload
    return _BADGE_VALUE.sub(lambda m: m[1] + REDACTED, payload)


def hour_of(t: datetime) -> datetime:
    """The hour ``t`` falls in, as the counts are kept (UTC: the same instants everywhere)."""
    return datetime.fromtimestamp(t.timestamp() // 3600 * 3600, UTC)


_Key = tuple[str | None, str, datetime]


def _key(letter: DeadLetter) -> _Key:
    """What the counts are kept by: device, reason and hour."""
    device = letter.device_id
    return (
        None if device is None else safe_text(device, 64),
        safe_text(letter.reason, 64),
        hour_of(letter.received_at),
    )


def _record(letter: DeadLetter) -> tuple[object, ...]:
    payload = letter.payload
    device, reason, _hour = _key(letter)
    return (
        letter.received_at,
        safe_text(letter.topic, TOPIC_MAX_CHARS),
        device,
        reason,
        safe_text(letter.detail, DETAIL_MAX_CHARS),
        redact(payload[:MAX_PAYLOAD_BYTES]),
        len(payload),
        hashlib.sha256(payload).digest(),
    )


_COUNT = """
INSERT INTO dead_letter_counts AS c (device_id, reason, hour, letters)
SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::bigint[])
ON CONFLICT (device_id, reason, hour) DO UPDATE SET letters = c.letters + EXCLUDED.letters
RETURNING device_id, reason, hour, letters
"""


async def store(
    conn: asyncpg.Connection, letters: Sequence[DeadLetter], keep_per_hour: int
) -> None:
    """Count ``letters`` and keep those the flood guard samples (in the caller's
    transaction). The n-th letter (from 0) of a device, reason and hour is kept when
    n < ``keep_per_hour`` or n is a multiple of it."""
    if not letters:
        return
    groups: dict[_Key, list[int]] = {}  # the letters' places in ``letters``
    for i, letter in enumerate(letters):
        groups.setdefault(_key(letter), []).append(i)
    keys = sorted(groups, key=lambda k: (k[0] or "", k[1], k[2]))  # one lock order
    rows = await conn.fetch(
        _COUNT,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [len(groups[k]) for k in keys],
    )
    kept: set[int] = set()
    for device_id, reason, hour, total in rows:
        places = groups[(device_id, reason, hour)]
        first = total - len(places)
        kept.update(
            i for n, i in enumerate(places, first) if n < keep_per_hour or n % keep_per_hour == 0
        )
    await conn.copy_records_to_table(
        "dead_letters",
        records=[_record(d) for i, d in enumerate(letters) if i in kept],
        columns=_COLUMNS,
    )


async def delete_expired(conn: asyncpg.Connection, retention: timedelta, now: datetime) -> int:
    """Drop the dead letters and counts older than ``retention``; how many letters."""
    cutoff = now - retention
    deleted = 0
    while True:
        status = await conn.execute(
            """DELETE FROM dead_letters WHERE id IN (
                   SELECT id FROM dead_letters WHERE received_at < $1 LIMIT $2)""",
            cutoff,
            _DELETE_CHUNK,
        )
        n = int(status.rsplit(" ", 1)[-1])
        deleted += n
        if n < _DELETE_CHUNK:
            break
    await conn.execute("DELETE FROM dead_letter_counts WHERE hour < $1", hour_of(cutoff))
    return deleted


async def list_dead_letters(
    conn: asyncpg.Connection,
    *,
    reason: str | None,
    device: str | None,
    before: int | None,
    limit: int,
) -> list[StoredDeadLetter]:
    rows = await conn.fetch(
        """SELECT id, received_at, topic, device_id, reason, detail, payload, size, sha256
           FROM dead_letters
           WHERE ($1::text IS NULL OR reason = $1) AND ($2::text IS NULL OR device_id = $2)
             AND ($3::bigint IS NULL OR id < $3)
           ORDER BY id DESC LIMIT $4""",
        reason,
        device,
        before,
        limit,
    )
    return [
        StoredDeadLetter(
            **{**dict(r), "payload": bytes(r["payload"]), "sha256": bytes(r["sha256"])}
        )
        for r in rows
    ]


async def count_by_reason(conn: asyncpg.Connection, device: str | None = None) -> dict[str, int]:
    """Dead letters per reason within the retention (of ``device`` only, when given),
    counted exactly, sampled payloads or not; read from the hourly counts."""
    rows = await conn.fetch(
        """SELECT reason, sum(letters) FROM dead_letter_counts
           WHERE $1::text IS NULL OR device_id = $1 GROUP BY reason""",
        device,
    )
    return {r[0]: int(r[1]) for r in rows}

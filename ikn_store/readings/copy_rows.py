"""PostgreSQL's binary COPY format for readings, encoded a batch at a time.

asyncpg encodes COPY records value by value through its codecs (two datetime
conversions, a Python jsonb encoder and a UUID per reading), which made it the
ingest's largest cost. Within a batch most values repeat: a message's readings share
device, stream, receive time, kind and often their timestamp, so each of those is
encoded once and reused; per reading only ``seq`` and the body are new.

Format (PostgreSQL docs, "COPY ... BINARY"): a header, then per row a 16-bit field
count and per field a 32-bit length and the value's binary form; a trailer of -1.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)

_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz counts microseconds from here
_MICROSECOND = timedelta(microseconds=1)
_JSONB_VERSION = 1
_FIELDS = struct.pack(">h", 7)  # device_id, stream, seq, ts, received_at, kind, body
_SEQ = struct.Struct(">iq")  # length 8, then the value
_TIMESTAMP = struct.Struct(">iq")
_BODY_HEAD = struct.Struct(">ib")  # length, then jsonb's version byte


def _text(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">i", len(data)) + data


def _uuid(value: UUID | str) -> bytes:
    data = (value if isinstance(value, UUID) else UUID(value)).bytes
    return struct.pack(">i", 16) + data


def _timestamp(value: datetime) -> bytes:
    # astimezone as asyncpg does: a naive datetime is local time
    micros = (value.astimezone(UTC) - _PG_EPOCH) // _MICROSECOND
    return _TIMESTAMP.pack(8, micros)


def encode(rows: Sequence[tuple[str, UUID | str, int, datetime, datetime, str, Any]]) -> bytes:
    """The COPY BINARY data of ``rows`` (``ReadingRow``: the columns of ``readings``)."""
    parts = [HEADER]
    add = parts.append
    texts: dict[str, bytes] = {}
    uuids: dict[int, bytes] = {}  # by id(): a UUID object hashes in Python code
    times: dict[datetime, bytes] = {}
    seq_pack, body_head, dumps = _SEQ.pack, _BODY_HEAD.pack, orjson.dumps
    for device_id, stream, seq, ts, received_at, kind, body in rows:
        # Looked up, not compared with the last row: a batch interleaves devices.
        dev = texts.get(device_id)
        if dev is None:
            dev = texts[device_id] = _text(device_id)
        sid = uuids.get(id(stream))  # the rows keep each stream object alive meanwhile
        if sid is None:
            sid = uuids[id(stream)] = _uuid(stream)
        t = times.get(ts)
        if t is None:
            t = times[ts] = _timestamp(ts)
        rx = times.get(received_at)
        if rx is None:
            rx = times[received_at] = _timestamp(received_at)
        k = texts.get(kind)
        if k is None:
            k = texts[kind] = _text(kind)
        data = dumps(body)
        # One object per row, and orjson's buffer freed at once: keeping thousands of
        # them alive made every dumps() call go to the system allocator (30x slower).
        add(
            b"".join(
                (
                    _FIELDS,
                    dev,
                    sid,
                    seq_pack(8, seq),
                    t,
                    rx,
                    k,
                    body_head(len(data) + 1, _JSONB_VERSION),
                    data,
                )
            )
        )
    add(TRAILER)
    return b"".join(parts)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as the async iterable asyncpg's ``copy_to_table`` sends as it is (a
    file-like source would be read through a thread)."""
    yield data

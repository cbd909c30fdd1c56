"""The ingest's fast path for ``up`` payloads: one tight pass, no objects per reading.

``fast_readings`` accepts only what ``decode_batch`` accepts and yields the same
values; whenever it is unsure (anything unusual, any error) it returns ``None``
and the caller runs ``decode_batch``, which is the authority and says exactly
what is wrong. tests/test_contract_fast.py holds the two together with hypothesis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from ikn_core.contract.identifiers import BADGE
from ikn_core.contract.payload import (
    _UUID,
    MAX_PAYLOAD_BYTES,
    MAX_READINGS,
    SEQ_MAX,
    TS_MAX,
    TS_MIN,
    VERSION,
)

# (seq, ts, kind, body) per reading; body holds the kind-specific fields.
FastReading = tuple[int, int, str, dict[str, Any]]

# Where JSON text escapes a character, U+0000 among them (which no string of contract v1
# may hold, payload.NO_NUL_PATTERN), or a lone surrogate. The strings of the kinds below
# need no escape (UUIDs, kind names, badge tokens, "in"/"out"), so a payload with one is
# left to decode_batch. A one-byte search (memchr): 0.2 us for 100 readings, where
# searching for "\u0000" took 3.3 us.
_ESCAPE = b"\\"
_BATCH_KEYS = frozenset({"v", "stream", "readings"})
_ENV_FIELDS = (("co2_ppm", 0, 100_000), ("temp_c", -50, 100), ("humidity_pct", 0, 100))
_ENV_KEYS = frozenset({"seq", "ts", "kind", "co2_ppm", "temp_c", "humidity_pct"})


def _stamp_ok(r: dict[str, Any]) -> bool:
    seq, ts = r["seq"], r["ts"]
    return type(seq) is int and 0 <= seq <= SEQ_MAX and type(ts) is int and TS_MIN <= ts <= TS_MAX


def _desk(r: dict[str, Any]) -> dict[str, Any] | None:
    if len(r) == 4 and "occupied" in r and type(r["occupied"]) is bool:
        return {"occupied": r["occupied"]}
    return None


def _badge(r: dict[str, Any]) -> dict[str, Any] | None:
    badge, direction = r.get("badge"), r.get("direction")
    if (
        len(r) == 5
        and type(badge) is str
        and BADGE.fullmatch(badge)
        and direction in ("in", "out")  # a tuple: == per item, never hashes a list
    ):
        return {"badge": badge, "direction": direction}
    return None


def _count(r: dict[str, Any]) -> dict[str, Any] | None:
    count = r.get("count")
    if len(r) == 4 and type(count) is int and 0 <= count <= 100_000:
        return {"count": count}
    return None


def _environment(r: dict[str, Any]) -> dict[str, Any] | None:
    if not r.keys() <= _ENV_KEYS:
        return None
    body = {}
    for name, low, high in _ENV_FIELDS:
        if name in r:
            value = r[name]
            if type(value) not in (int, float) or not low <= value <= high:
                return None
            body[name] = value
    return body or None


_BODIES: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "desk_occupancy": _desk,
    "badge_tap": _badge,
    "people_count": _count,
    "environment": _environment,
}


def fast_readings(raw: bytes) -> tuple[str, list[FastReading]] | None:
    """``(stream, readings)`` of a plainly valid payload, else ``None``."""
    if len(raw) > MAX_PAYLOAD_BYTES or _ESCAPE in raw:  # a NUL? decode_batch says where
        return None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or doc.keys() != _BATCH_KEYS:
        return None
    v, stream, readings = doc["v"], doc["stream"], doc["readings"]
    if type(v) is not int or v != VERSION or type(stream) is not str or not _UUID.fullmatch(stream):
        return None
    if type(readings) is not list or not 1 <= len(readings) <= MAX_READINGS:
        return None
    out: list[FastReading] = []
    for r in readings:
        if type(r) is not dict or "seq" not in r or "ts" not in r:
            return None
        kind = r.get("kind")
        make = _BODIES.get(kind) if type(kind) is str else None
        if make is None or not _stamp_ok(r):
            return None
        body = make(r)
        if body is None:
            return None
        out.append((r["seq"], r["ts"], str(kind), body))
    return stream, out

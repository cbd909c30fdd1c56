"""Payloads of contract v1: a batch of readings (``up``) and device health (``status``).

Every value object checks itself in ``__post_init__``; the decoders add where in
the document a bad field sits, so a dead letter says ``readings[3].seq: expected
an integer, got "12"`` rather than "invalid payload". The rules are the same as
those of ``batch-v1.schema.json`` and ``status-v1.schema.json`` (a property test
holds the two together).
"""

from __future__ import annotations

import re
import reprlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal, TypeVar

import orjson

from ikn_core.contract.identifiers import BADGE, BADGE_PATTERN, ID, ID_PATTERN
from ikn_core.errors import ContractError

VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024
MAX_READINGS = 10_000
# Epoch milliseconds between 2000-01-01 and 2100-01-01: anything else is a broken clock.
TS_MIN = 946_684_800_000
TS_MAX = 4_102_444_800_000
SEQ_MAX = 2**63 - 1
COMMAND_ID_PATTERN = ID_PATTERN  # a down command's id (contract/down.py)
DETAIL_MAX = 200
# PostgreSQL text and jsonb cannot hold U+0000, so no string of contract v1 may (the
# schemas say so with this pattern). Lone surrogates need no rule: JSON text holding one
# (an escaped "\ud800") is not UTF-8, and the parser refuses it (not_json).
NO_NUL_PATTERN = r"^[^\u0000]*$"
T = TypeVar("T")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 2, 40, 40


def shown(value: object) -> str:
    """A value as an error message shows it, bounded in depth and length: a hostile one
    may nest a thousand levels deep (``repr`` then raises RecursionError) or be 256 KiB."""
    return _SHOWN.repr(value)


def _type_name(value: object) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _expect(ok: bool, field: str, wanted: str, value: object) -> None:
    if not ok:
        got = _type_name(value)
        try:
            text = orjson.dumps(value).decode()[:40] if got != "an object" else "{...}"
        except TypeError:  # a Python value JSON cannot hold (make_reading), or deep nesting
            text = shown(value)
        raise ContractError("bad_field", f"expected {wanted}, got {got} {text}", field)


def _text(field: str, value: object, limit: int, wanted: str) -> None:
    """A free-text field: a string of at most ``limit`` characters, without U+0000."""
    _expect(type(value) is str and len(value) <= limit, field, wanted, value)
    assert isinstance(value, str)
    if "\x00" in value:
        raise ContractError("bad_field", "must not contain U+0000 (NUL)", field)


def _int_in(field: str, value: object, low: int, high: int) -> None:
    _expect(type(value) is int, field, "an integer", value)
    assert isinstance(value, int)
    if not low <= value <= high:
        raise ContractError("bad_field", f"{value} is outside {low}..{high}", field)


def _check_stream(value: object) -> None:
    """A stream is a lower-case UUID (a batch's, and a stored notice's)."""
    _expect(type(value) is str, "stream", "a string", value)
    assert isinstance(value, str)
    if not _UUID.fullmatch(value):
        raise ContractError("bad_field", "expected a lower-case UUID", "stream")


def _number_in(field: str, value: object, low: float, high: float) -> None:
    _expect(type(value) in (int, float), field, "a number", value)
    assert isinstance(value, int | float)
    if not low <= value <= high:
        raise ContractError("bad_field", f"{value} is outside {low}..{high}", field)


@dataclass(frozen=True, slots=True)
class Reading:
    """One reading: its place in the stream, the device's clock, and a kind."""

    kind: ClassVar[str]
    seq: int
    ts: int

    def __post_init__(self) -> None:
        _int_in("seq", self.seq, 0, SEQ_MAX)
        _int_in("ts", self.ts, TS_MIN, TS_MAX)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "ts": self.ts, "kind": self.kind}
        for f in fields(self)[2:]:
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = value
        return out

    def body(self) -> dict[str, Any]:
        """The kind-specific fields, as stored beside ``(seq, ts, kind)``."""
        out = self.to_dict()
        for key in ("seq", "ts", "kind"):
            del out[key]
        return out


@dataclass(frozen=True, slots=True)
class DeskOccupancy(Reading):
    kind: ClassVar[str] = "desk_occupancy"
    occupied: bool

    def __post_init__(self) -> None:
        Reading.__post_init__(self)
        _expect(type(self.occupied) is bool, "occupied", "a boolean", self.occupied)


@dataclass(frozen=True, slots=True)
class BadgeTap(Reading):
    """A badge tap; ``badge`` is the site-keyed hash token, never the card number."""

    kind: ClassVar[str] = "badge_tap"
    badge: str
    direction: Literal["in", "out"]

    def __post_init__(self) -> None:
        Reading.__post_init__(self)
        if type(self.badge) is not str:  # its value is never shown: it may be a card number
            got = _type_name(self.badge)
            raise ContractError("bad_field", f"expected a string, got {got}", "badge")
        if not BADGE.fullmatch(self.badge):
            raise ContractError("bad_field", f"a badge token must match {BADGE_PATTERN}", "badge")
        if self.direction not in ("in", "out"):
            raise ContractError(
                "bad_field", f"expected 'in' or 'out', got {shown(self.direction)}", "direction"
            )


@dataclass(frozen=True, slots=True)
class PeopleCount(Reading):
    kind: ClassVar[str] = "people_count"
    count: int

    def __post_init__(self) -> None:
        Reading.__post_init__(self)
        _int_in("count", self.count, 0, 100_000)


@dataclass(frozen=True, slots=True)
class Environment(Reading):
    kind: ClassVar[str] = "environment"
    co2_ppm: int | float | None = None
    temp_c: int | float | None = None
    humidity_pct: int | float | None = None

    def __post_init__(self) -> None:
        Reading.__post_init__(self)
        if self.co2_ppm is None and self.temp_c is None and self.humidity_pct is None:
            raise ContractError(
                "missing_field", "needs at least one of co2_ppm, temp_c, humidity_pct"
            )
        for name, low, high in (
            ("co2_ppm", 0, 100_000),
            ("temp_c", -50, 100),
            ("humidity_pct", 0, 100),
        ):
            value = getattr(self, name)
            if value is not None:
                _number_in(name, value, low, high)


@dataclass(frozen=True, slots=True)
class CommandResult(Reading):
    """How a device answers a ``down`` command: its ``command`` id, whether it
    succeeded, and why not (``detail``). Sent through the outbox like any reading."""

    kind: ClassVar[str] = "command_result"
    command: str
    ok: bool
    detail: str | None = None

    def __post_init__(self) -> None:
        Reading.__post_init__(self)
        _expect(type(self.command) is str, "command", "a string", self.command)
        if not ID.fullmatch(self.command):
            raise ContractError(
                "bad_field", f"a command id must match {COMMAND_ID_PATTERN}", "command"
            )
        _expect(type(self.ok) is bool, "ok", "a boolean", self.ok)
        if self.detail is not None:
            _text("detail", self.detail, DETAIL_MAX, f"a string of at most {DETAIL_MAX} characters")


KINDS: dict[str, type[Reading]] = {
    cls.kind: cls for cls in (DeskOccupancy, BadgeTap, PeopleCount, Environment, CommandResult)
}


@dataclass(frozen=True, slots=True)
class Batch:
    """What a device publishes on ``up``: readings of one outbox stream."""

    stream: str
    readings: tuple[Reading, ...]
    v: int = VERSION

    def __post_init__(self) -> None:
        _int_in("v", self.v, VERSION, VERSION)
        _check_stream(self.stream)
        if not 1 <= len(self.readings) <= MAX_READINGS:
            raise ContractError(
                "bad_field",
                f"expected 1..{MAX_READINGS} readings, got {len(self.readings)}",
                "readings",
            )

    @staticmethod
    def new_stream() -> str:
        return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Status:
    """Device health on the retained ``status`` topic; the Will says ``offline``."""

    state: Literal["online", "offline"]
    fw: str | None = None
    uptime_s: int | None = None
    outbox: int | None = None
    dropped: int | None = None
    clock_synced: bool | None = None
    battery_pct: int | None = None  # battery-powered devices: charge left, 0-100
    unconfirmed: int | None = None  # readings sent, not yet confirmed stored (``stored``)
    v: int = VERSION

    def __post_init__(self) -> None:
        _int_in("v", self.v, VERSION, VERSION)
        if self.state not in ("online", "offline"):
            raise ContractError(
                "bad_field", f"expected 'online' or 'offline', got {shown(self.state)}", "state"
            )
        if self.fw is not None:
            _text("fw", self.fw, 64, "a short string")
        for name in ("uptime_s", "outbox", "dropped", "unconfirmed"):
            value = getattr(self, name)
            if value is not None:
                _int_in(name, value, 0, SEQ_MAX)
        if self.clock_synced is not None:
            _expect(type(self.clock_synced) is bool, "clock_synced", "a boolean", self.clock_synced)
        if self.battery_pct is not None:
            _int_in("battery_pct", self.battery_pct, 0, 100)

    def to_dict(self) -> dict[str, Any]:
        """The payload, ``v`` first as in the docs (``{"v":1,"state":"offline"}``)."""
        out: dict[str, Any] = {"v": self.v}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name != "v":
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Observation:
    """What a driver reports before the edge agent numbers it: a kind, the
    device's clock (epoch ms) and the kind's fields (``{"occupied": True}``)."""

    kind: str
    ts: int
    fields: Mapping[str, Any]


def make_reading(obs: Observation, seq: int) -> Reading:
    """Number an observation; raise ContractError if it does not fit contract v1."""
    cls = KINDS.get(obs.kind)
    if cls is None:
        raise ContractError(
            "unknown_kind", f"{shown(obs.kind)} is not one of {', '.join(sorted(KINDS))}"
        )
    allowed, required = _READING_SHAPES[obs.kind]
    return _build(
        cls, {**obs.fields, "seq": seq, "ts": obs.ts}, allowed - {"kind"}, required - {"kind"}
    )


# -- decoding ---------------------------------------------------------------------------


def _load(raw: bytes) -> Mapping[str, Any]:
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ContractError("too_large", f"{len(raw)} bytes, the limit is {MAX_PAYLOAD_BYTES}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError("not_json", f"not UTF-8 JSON: {exc}") from exc
    if type(doc) is not dict:
        raise ContractError("bad_field", f"expected an object, got {_type_name(doc)}")
    return doc


def _build(
    cls: Callable[..., T],
    doc: Mapping[str, Any],
    allowed: frozenset[str],
    required: frozenset[str],
    *,
    nulls: bool = True,
) -> T:
    missing = required - doc.keys()
    if missing:
        name = min(missing)
        raise ContractError("missing_field", "is required", name)
    unknown = doc.keys() - allowed
    if unknown:
        name = min(unknown)
        raise ContractError("unknown_field", "is not part of contract v1", name)
    if not nulls:
        _no_nulls(doc)
    return cls(**{key: _integral(value) for key, value in doc.items()})


def _integral(value: object) -> object:
    """JSON has one number type: ``5.0`` is the integer 5, as JSON Schema says."""
    return int(value) if type(value) is float and value.is_integer() else value


def _no_nulls(doc: Mapping[str, Any]) -> None:
    """An optional field is left out, never ``null`` (the schema says so too)."""
    nulls = sorted(key for key, value in doc.items() if value is None)
    if nulls:
        raise ContractError(
            "bad_field", "expected a value, got null; leave the field out", nulls[0]
        )


def _shape(
    cls: type[Any], extra: frozenset[str] = frozenset()
) -> tuple[frozenset[str], frozenset[str]]:
    allowed = frozenset(f.name for f in fields(cls)) | extra
    required = (
        frozenset(
            f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING
        )
        | extra
    )
    return allowed, required


_READING_SHAPES = {kind: _shape(cls, frozenset({"kind"})) for kind, cls in KINDS.items()}
_STATUS_SHAPE = _shape(Status)
_STATUS_SHAPE = (_STATUS_SHAPE[0], _STATUS_SHAPE[1] | {"v"})


def _reading(doc: object) -> Reading:
    if type(doc) is not dict:
        raise ContractError("bad_field", f"expected an object, got {_type_name(doc)}")
    kind = doc.get("kind")
    cls = KINDS.get(kind) if type(kind) is str else None
    if cls is None:
        if "kind" not in doc:
            raise ContractError("missing_field", "is required", "kind")
        raise ContractError(
            "unknown_kind", f"{shown(kind)} is not one of {', '.join(sorted(KINDS))}", "kind"
        )
    allowed, required = _READING_SHAPES[cls.kind]
    body = dict(doc)
    del body["kind"]
    return _build(cls, body, allowed - {"kind"}, required - {"kind"}, nulls=False)


def decode_batch(raw: bytes) -> Batch:
    """Parse and validate an ``up`` payload; raise ContractError saying where and why."""
    doc = _load(raw)
    if "v" in doc and doc["v"] != VERSION:
        raise ContractError("bad_version", f"version {shown(doc['v'])} is not supported", "v")
    readings = doc.get("readings")
    if type(readings) is not list:
        if "readings" not in doc:
            raise ContractError("missing_field", "is required", "readings")
        _expect(False, "readings", "an array", readings)
    assert isinstance(readings, list)
    parsed = []
    for i, item in enumerate(readings):
        try:
            parsed.append(_reading(item))
        except ContractError as exc:
            raise exc.at(f"readings[{i}]") from None
    body = {**doc, "readings": tuple(parsed)}
    return _build(
        Batch, body, frozenset({"v", "stream", "readings"}), frozenset({"v", "stream", "readings"})
    )


def decode_status(raw: bytes) -> Status:
    doc = _load(raw)
    if "v" in doc and doc["v"] != VERSION:
        raise ContractError("bad_version", f"version {shown(doc['v'])} is not supported", "v")
    return _build(Status, doc, *_STATUS_SHAPE, nulls=False)


def encode_batch(batch: Batch) -> bytes:
    return orjson.dumps(
        {"v": batch.v, "stream": batch.stream, "readings": [r.to_dict() for r in batch.readings]}
    )


def encode_status(status: Status) -> bytes:
    return orjson.dumps(status.to_dict())

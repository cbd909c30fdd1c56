"""Payloads of contract v1 on ``ikn/v1/dev/{id}/down``: what the platform tells a device.

Four commands, each with an ``id`` (how its result is named) and ``ts`` (when the
platform issued it, epoch ms): ``config`` (sampling and batching limits, applied
without a restart), ``identify`` (blink for ``seconds``), ``reboot``, and
``display`` (what a desk's display shows: free / booked until HH:MM / occupied, the
time already written in the building's zone). The rules are those of
``down-v1.schema.json``; a property test holds the two together.

A device reports the result of ``config``, ``identify`` and ``reboot`` as a
``command_result`` reading in its ``up`` batches (see ``payload.CommandResult``);
``display`` is state, not a command: the newest ``ts`` wins and no result is sent.

One more message is a notice, not a command (no ``id``, no result): ``stored``
(:class:`StoredNotice`) tells the device which ``seq`` ranges of its ``stream``
PostgreSQL now holds for good (stored, already stored, or kept as a dead letter),
so its outbox may forget them: the end-to-end acknowledgement. It has no ``id``
so that an agent that predates it counts it as malformed and answers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import orjson

from ikn_core.contract.identifiers import ID
from ikn_core.contract.payload import (
    COMMAND_ID_PATTERN,
    SEQ_MAX,
    TS_MAX,
    TS_MIN,
    VERSION,
    _build,
    _check_stream,
    _expect,
    _int_in,
    _integral,
    _load,
    _shape,
    shown,
)
from ikn_core.errors import ContractError

HHMM_PATTERN = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_HHMM = re.compile(HHMM_PATTERN)
DisplayState = Literal["free", "booked", "occupied"]
# Limits a config push may set: (low, high) for each field.
CONFIG_RANGES: dict[str, tuple[int, int]] = {
    "sample_interval_s": (1, 86_400),
    "batch_max_readings": (1, 1000),
    "batch_max_bytes": (1024, 262_144),
    "batch_latency_ms": (10, 60_000),
}
IDENTIFY_MAX_S = 600


@dataclass(frozen=True, slots=True)
class DownCommand:
    """What every down message carries: the command's id and when it was issued."""

    cmd: ClassVar[str]
    id: str
    ts: int

    def __post_init__(self) -> None:
        _expect(type(self.id) is str, "id", "a string", self.id)
        if not ID.fullmatch(self.id):
            raise ContractError("bad_field", f"a command id must match {COMMAND_ID_PATTERN}", "id")
        _int_in("ts", self.ts, TS_MIN, TS_MAX)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "id": self.id, "cmd": self.cmd}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name != "id":
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class ConfigCommand(DownCommand):
    """New limits; a field left out keeps its current value (at least one is given)."""

    cmd: ClassVar[str] = "config"
    sample_interval_s: int | None = None
    batch_max_readings: int | None = None
    batch_max_bytes: int | None = None
    batch_latency_ms: int | None = None

    def __post_init__(self) -> None:
        DownCommand.__post_init__(self)
        given = {n: getattr(self, n) for n in CONFIG_RANGES if getattr(self, n) is not None}
        if not given:
            raise ContractError(
                "missing_field", f"needs at least one of {', '.join(CONFIG_RANGES)}"
            )
        for name, value in given.items():
            _int_in(name, value, *CONFIG_RANGES[name])


@dataclass(frozen=True, slots=True)
class IdentifyCommand(DownCommand):
    """Blink (or beep) for ``seconds`` so a technician finds the device."""

    cmd: ClassVar[str] = "identify"
    seconds: int

    def __post_init__(self) -> None:
        DownCommand.__post_init__(self)
        _int_in("seconds", self.seconds, 1, IDENTIFY_MAX_S)


@dataclass(frozen=True, slots=True)
class RebootCommand(DownCommand):
    cmd: ClassVar[str] = "reboot"


@dataclass(frozen=True, slots=True)
class DisplayCommand(DownCommand):
    """A desk display: ``free``, ``booked`` (``until`` required) or ``occupied``;
    ``until`` is local wall-clock time ``HH:MM`` in the building's zone."""

    cmd: ClassVar[str] = "display"
    state: DisplayState
    until: str | None = None

    def __post_init__(self) -> None:
        DownCommand.__post_init__(self)
        if self.state not in ("free", "booked", "occupied"):
            raise ContractError(
                "bad_field", f"expected free, booked or occupied, got {shown(self.state)}", "state"
            )
        if self.until is not None:
            _expect(type(self.until) is str, "until", "a string", self.until)
            if not _HHMM.fullmatch(self.until):
                raise ContractError("bad_field", "expected local time HH:MM", "until")
        elif self.state == "booked":
            raise ContractError("missing_field", "is required when state is booked", "until")


@dataclass(frozen=True, slots=True)
class StoredNotice:
    """``seqs`` (inclusive ``(first, last)`` ranges) of ``stream`` are in PostgreSQL
    for good: the device may forget them. Coalesced: one notice per device and stream
    per interval, so a range covers every message of it that a commit held."""

    cmd: ClassVar[str] = "stored"
    stream: str
    seqs: tuple[tuple[int, int], ...]
    v: int = VERSION

    def __post_init__(self) -> None:
        _int_in("v", self.v, VERSION, VERSION)
        _check_stream(self.stream)
        _expect(
            type(self.seqs) is tuple and 1 <= len(self.seqs) <= STORED_RANGES_MAX,
            "seqs",
            f"1 to {STORED_RANGES_MAX} ranges",
            self.seqs,
        )
        for i, pair in enumerate(self.seqs):
            where = f"seqs[{i}]"
            _expect(type(pair) is tuple and len(pair) == 2, where, "[first, last]", pair)
            _int_in(f"{where}[0]", pair[0], 0, SEQ_MAX)
            _int_in(f"{where}[1]", pair[1], 0, SEQ_MAX)  # (first above last: covers none)

    def to_dict(self) -> dict[str, Any]:
        return {"v": self.v, "cmd": self.cmd, "stream": self.stream, "seqs": self.seqs}


STORED_RANGES_MAX = 1000  # ranges in one notice: about 40 KB at most, far below 256 KiB
DownMessage = DownCommand | StoredNotice
COMMANDS: dict[str, type[DownCommand]] = {
    cls.cmd: cls for cls in (ConfigCommand, IdentifyCommand, RebootCommand, DisplayCommand)
}
_SHAPES = {cmd: _shape(cls, frozenset({"v", "cmd"})) for cmd, cls in COMMANDS.items()}


def decode_down(raw: bytes) -> DownMessage:
    """Parse and validate a ``down`` payload; raise ContractError saying where and why."""
    doc = _load(raw)
    if "v" in doc and doc["v"] != VERSION:
        raise ContractError("bad_version", f"version {shown(doc['v'])} is not supported", "v")
    name = doc.get("cmd")
    if name == StoredNotice.cmd:
        return _stored(doc)
    cls = COMMANDS.get(name) if type(name) is str else None
    if cls is None:
        if "cmd" not in doc:
            raise ContractError("missing_field", "is required", "cmd")
        raise ContractError(
            "unknown_command", f"{shown(name)} is not one of {', '.join(sorted(COMMANDS))}", "cmd"
        )
    if "v" not in doc:
        raise ContractError("missing_field", "is required", "v")
    _int_in("v", _integral(doc["v"]), VERSION, VERSION)
    allowed, required = _SHAPES[cls.cmd]
    body = {k: v for k, v in doc.items() if k not in ("v", "cmd")}
    return _build(cls, body, allowed - {"v", "cmd"}, required - {"v", "cmd"}, nulls=False)


def _stored(doc: Mapping[str, Any]) -> StoredNotice:
    seqs = doc.get("seqs")
    if type(seqs) is list:  # [[first, last], ...] as tuples, each checked by the class
        seqs = tuple(
            tuple(_integral(n) for n in pair) if type(pair) is list else pair for pair in seqs
        )
    body = {**doc, "seqs": seqs} if "seqs" in doc else dict(doc)
    del body["cmd"]
    keys = frozenset({"v", "stream", "seqs"})
    return _build(StoredNotice, body, keys, keys, nulls=False)


def command_id_of(raw: bytes) -> str | None:
    """The ``id`` of a down payload that failed to decode, when it has a usable one
    (so the device can still report the failure under that id)."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = doc.get("id") if type(doc) is dict else None
    return value if type(value) is str and ID.fullmatch(value) else None


def encode_stored(stream: str, seqs: Sequence[tuple[int, int]]) -> bytes:
    """``encode_down(StoredNotice(stream, seqs))`` without checking them again: for the
    ingest, whose streams and seqs come from readings it decoded (a notice a commit)."""
    return orjson.dumps({"v": VERSION, "cmd": StoredNotice.cmd, "stream": stream, "seqs": seqs})


def encode_down(command: DownMessage) -> bytes:
    return orjson.dumps(command.to_dict())

"""MQTT contract v1 (ikn_core.contract): payloads, the JSON Schema files, topics.

- Every valid batch and status survives encode -> decode unchanged.
- The published JSON Schema files and the decoder agree: every generated valid
  document passes both; every mutated document (one mutation per kind of mistake a
  device maker makes) fails both, with the reason code and path the dead-letter
  counts rely on; and for arbitrary one-field edits both give the same verdict.
- The decoder raises nothing but ContractError, whatever the bytes.
- Topic builders and parse_topic round-trip for every valid device id, and reject
  wildcards, extra levels and foreign roots.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ikn_core.contract import (
    DEVICE_ID_PATTERN,
    MAX_PAYLOAD_BYTES,
    STATUS_FILTER,
    UP_FILTER,
    BadgeTap,
    Batch,
    Channel,
    DeskOccupancy,
    DeviceTopic,
    Environment,
    Observation,
    PeopleCount,
    Reading,
    Status,
    decode_batch,
    decode_down,
    decode_status,
    down_topic,
    encode_batch,
    encode_status,
    make_reading,
    parse_topic,
    shared,
    status_topic,
    up_topic,
)
from ikn_core.contract.fast import fast_readings
from ikn_core.contract.identifiers import BADGE_PATTERN
from ikn_core.contract.payload import NO_NUL_PATTERN, SEQ_MAX, TS_MAX, TS_MIN
from ikn_core.errors import ContractError

Doc = dict[str, Any]
# (document, expected ContractError.reason, expected ContractError.path)
Expected = tuple[object, str, str]
# Mutations draw with either a @composite's draw or st.data().draw.
Draw = Callable[..., Any]


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads(resources.files("ikn_core.contract").joinpath(name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


BATCH_SCHEMA = _validator("batch-v1.schema.json")
STATUS_SCHEMA = _validator("status-v1.schema.json")

KINDS = ("desk_occupancy", "badge_tap", "people_count", "environment")
ENV_RANGES = {"co2_ppm": (0, 100_000), "temp_c": (-50, 100), "humidity_pct": (0, 100)}
COUNT_MAX = 100_000
STREAM = "5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40"
BADGE = "b1:Qm9kb2toLWV4YW1wbGU"
TS = 1_795_424_990_763
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

REASONS = {"not_json", "bad_version", "unknown_kind", "bad_field", "missing_field", "unknown_field"}
FUZZ = settings(max_examples=300, deadline=None)
PER_MUTATION = settings(max_examples=40, deadline=None)
ROUND_TRIP = settings(max_examples=150, deadline=None)


# -- strategies of valid values ---------------------------------------------------------

seqs = st.integers(0, SEQ_MAX)
timestamps = st.integers(TS_MIN, TS_MAX)
badges = st.from_regex(BADGE_PATTERN, fullmatch=True)
directions = st.sampled_from(["in", "out"])
streams = st.uuids().map(str)


def _numbers(low: int, high: int) -> st.SearchStrategy[int | float]:
    return st.one_of(st.integers(low, high), st.floats(low, high, allow_nan=False))


@st.composite
def environments(draw: st.DrawFn) -> Environment:
    names = draw(st.sets(st.sampled_from(sorted(ENV_RANGES)), min_size=1))
    values = {name: draw(_numbers(*ENV_RANGES[name])) for name in names}
    return Environment(seq=draw(seqs), ts=draw(timestamps), **values)


desk_occupancies = st.builds(DeskOccupancy, seq=seqs, ts=timestamps, occupied=st.booleans())
badge_taps = st.builds(BadgeTap, seq=seqs, ts=timestamps, badge=badges, direction=directions)
people_counts = st.builds(PeopleCount, seq=seqs, ts=timestamps, count=st.integers(0, COUNT_MAX))
readings: st.SearchStrategy[Reading] = st.one_of(
    desk_occupancies, badge_taps, people_counts, environments()
)
batches = st.builds(
    Batch, stream=streams, readings=st.lists(readings, min_size=1, max_size=8).map(tuple)
)
_counters = st.none() | st.integers(0, SEQ_MAX)
statuses = st.builds(
    Status,
    state=st.sampled_from(["online", "offline"]),
    fw=st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=64),
    uptime_s=_counters,
    outbox=_counters,
    dropped=_counters,
    clock_synced=st.none() | st.booleans(),
)


def batch_docs() -> st.SearchStrategy[Doc]:
    return batches.map(lambda b: orjson.loads(encode_batch(b)))


def status_docs() -> st.SearchStrategy[Doc]:
    return statuses.map(lambda s: orjson.loads(encode_status(s)))


# -- strategies of JSON values, valid or not --------------------------------------------

_interesting = st.sampled_from(
    [
        *(0, 1, -1, 1.0, 0.5, -0.0, 100, 100.5, -50, -50.5, SEQ_MAX, COUNT_MAX + 1),
        *(TS_MIN, TS_MAX, TS_MIN - 1, TS_MAX + 1),
        *("", "in", "out", "online", "offline", STREAM, BADGE, *KINDS),
    ]
)
# orjson writes integers of at most 64 bits, and bigger ones parse as floats anyway.
ints = st.integers(-(2**63), 2**64 - 1)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    st.integers(-(2**53), 2**53).map(float),  # integral floats: 5.0 is the integer 5 in JSON
    finite_floats,
    st.text(max_size=20),
    _interesting,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
json_containers = st.lists(json_values, max_size=3) | st.dictionaries(
    st.text(max_size=8), json_values
)
non_objects = json_values.filter(lambda v: not isinstance(v, dict))

# Values of the wrong JSON type for a field of each type (bool is never an integer).
_non_integral = finite_floats.filter(lambda f: not f.is_integer())
_WRONG: dict[str, st.SearchStrategy[Any]] = {
    "integer": st.one_of(st.text(), st.booleans(), _non_integral, json_containers, st.none()),
    "number": st.one_of(st.text(), st.booleans(), json_containers, st.none()),
    "boolean": st.one_of(ints, finite_floats, st.text(), json_containers, st.none()),
    "string": st.one_of(ints, finite_floats, st.booleans(), json_containers, st.none()),
}
_FIELD_TYPES = {
    "seq": "integer",
    "ts": "integer",
    "count": "integer",
    "occupied": "boolean",
    "badge": "string",
    "direction": "string",
    "co2_ppm": "number",
    "temp_c": "number",
    "humidity_pct": "number",
}
_REQUIRED = {
    "desk_occupancy": ("seq", "ts", "kind", "occupied"),
    "badge_tap": ("seq", "ts", "kind", "badge", "direction"),
    "people_count": ("seq", "ts", "kind", "count"),
    "environment": ("seq", "ts", "kind"),
}
_ALLOWED = {kind: {*fields, *ENV_RANGES} for kind, fields in _REQUIRED.items()}
_TOP_LEVEL = ("v", "stream", "readings")


def _not_in(names: Collection[str]) -> st.SearchStrategy[str]:
    return st.text(min_size=1, max_size=12).filter(lambda k: k not in names)


def _bad_strings(pattern: re.Pattern[str]) -> st.SearchStrategy[str]:
    # A trailing "\n" is left out: Python's jsonschema runs `pattern` with re.search,
    # whose `$` also matches before a final newline (ECMA-262's does not).
    return st.text(max_size=80).filter(
        lambda s: not pattern.fullmatch(s) and not pattern.fullmatch(s.removesuffix("\n"))
    )


# -- mutations of a valid batch: each returns (document, reason, path) ------------------


def _pick_reading(draw: Draw, doc: Doc) -> tuple[int, Doc]:
    i: int = draw(st.integers(0, len(doc["readings"]) - 1))
    reading: Doc = doc["readings"][i]
    return i, reading


def _insert(draw: Draw, doc: Doc, reading: object) -> int:
    i: int = draw(st.integers(0, len(doc["readings"])))
    doc["readings"].insert(i, reading)
    return i


def m_wrong_type(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    name = draw(st.sampled_from(sorted(k for k in reading if k != "kind")))
    reading[name] = draw(_WRONG[_FIELD_TYPES[name]])
    return doc, "bad_field", f"readings[{i}].{name}"


def m_wrong_top_level_type(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(["stream", "readings"]))
    doc[name] = draw(
        _WRONG["string"]
        if name == "stream"
        else st.one_of(json_scalars, st.dictionaries(st.text(), json_values))
    )
    return doc, "bad_field", name


def m_bool_for_int(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    name = draw(st.sampled_from([k for k in ("seq", "ts", "count") if k in reading]))
    reading[name] = draw(st.booleans())
    return doc, "bad_field", f"readings[{i}].{name}"


def m_ts_out_of_range(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    reading["ts"] = draw(st.integers(-(2**63), TS_MIN - 1) | st.integers(TS_MAX + 1, 2**64 - 1))
    return doc, "bad_field", f"readings[{i}].ts"


def m_seq_out_of_range(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    reading["seq"] = draw(st.integers(-(2**63), -1) | st.integers(SEQ_MAX + 1, 2**64 - 1))
    return doc, "bad_field", f"readings[{i}].seq"


def m_value_out_of_range(draw: Draw, doc: Doc) -> Expected:
    kind = draw(st.sampled_from(["people_count", "environment"]))
    if kind == "people_count":
        name = "count"
        value: int | float = draw(st.integers(-(2**63), -1) | st.integers(COUNT_MAX + 1, 2**64 - 1))
    else:
        name = draw(st.sampled_from(sorted(ENV_RANGES)))
        low, high = ENV_RANGES[name]
        value = draw(finite_floats.filter(lambda f: not low <= f <= high))
    i = _insert(draw, doc, {"seq": 1, "ts": TS, "kind": kind, name: value})
    return doc, "bad_field", f"readings[{i}].{name}"


def m_unknown_kind(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    reading["kind"] = draw(json_values.filter(lambda v: v not in KINDS))
    return doc, "unknown_kind", f"readings[{i}].kind"


def m_unknown_reading_field(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    name = draw(_not_in(_ALLOWED[reading["kind"]]))
    reading[name] = draw(json_values)
    return doc, "unknown_field", f"readings[{i}].{name}"


def m_unknown_top_level_field(draw: Draw, doc: Doc) -> Expected:
    name = draw(_not_in(_TOP_LEVEL))
    doc[name] = draw(json_values)
    return doc, "unknown_field", name


def m_missing_reading_field(draw: Draw, doc: Doc) -> Expected:
    i, reading = _pick_reading(draw, doc)
    name = draw(st.sampled_from(_REQUIRED[reading["kind"]]))
    del reading[name]
    return doc, "missing_field", f"readings[{i}].{name}"


def m_missing_top_level_field(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(_TOP_LEVEL))
    del doc[name]
    return doc, "missing_field", name


def m_wrong_version(draw: Draw, doc: Doc) -> Expected:
    doc["v"] = draw(json_values.filter(lambda v: v != 1 and not isinstance(v, bool)))
    return doc, "bad_version", "v"


def m_bad_stream(draw: Draw, doc: Doc) -> Expected:
    doc["stream"] = draw(
        _bad_strings(_UUID)
        | streams.map(str.upper).filter(lambda s: s != s.lower())
        | st.uuids().map(lambda u: u.hex)
        | st.uuids().map(lambda u: f"{{{u}}}")
    )
    return doc, "bad_field", "stream"


def m_bad_badge(draw: Draw, doc: Doc) -> Expected:
    badge = draw(
        _bad_strings(re.compile(BADGE_PATTERN))
        | st.from_regex(r"[0-9]{6,20}", fullmatch=True)  # a raw card number
        | st.from_regex(r"b1:[A-Za-z0-9_-]{0,15}", fullmatch=True)  # too short
        | st.from_regex(r"b1:[A-Za-z0-9_-]{65,80}", fullmatch=True)  # too long
        | badges.map(lambda b: "b2" + b[2:])  # an unknown token version
        | badges.map(lambda b: b + "=")  # base64 padding, or any other character
    )
    i = _insert(
        draw, doc, {"seq": 1, "ts": TS, "kind": "badge_tap", "badge": badge, "direction": "in"}
    )
    return doc, "bad_field", f"readings[{i}].badge"


def m_bad_direction(draw: Draw, doc: Doc) -> Expected:
    direction = draw(st.text().filter(lambda s: s not in ("in", "out")))
    reading = {"seq": 1, "ts": TS, "kind": "badge_tap", "badge": BADGE, "direction": direction}
    i = _insert(draw, doc, reading)
    return doc, "bad_field", f"readings[{i}].direction"


def m_empty_readings(draw: Draw, doc: Doc) -> Expected:
    doc["readings"] = []
    return doc, "bad_field", "readings"


def m_environment_without_fields(draw: Draw, doc: Doc) -> Expected:
    i = _insert(draw, doc, {"seq": draw(seqs), "ts": draw(timestamps), "kind": "environment"})
    return doc, "missing_field", f"readings[{i}]"


def m_null_optional_field(draw: Draw, doc: Doc) -> Expected:
    names = draw(st.lists(st.sampled_from(sorted(ENV_RANGES)), min_size=2, max_size=3, unique=True))
    reading: Doc = {"seq": 1, "ts": TS, "kind": "environment", names[0]: None}
    reading.update({name: 20 for name in names[1:]})
    i = _insert(draw, doc, reading)
    return doc, "bad_field", f"readings[{i}].{names[0]}"


def m_reading_not_object(draw: Draw, doc: Doc) -> Expected:
    i = _insert(draw, doc, draw(non_objects))
    return doc, "bad_field", f"readings[{i}]"


def m_not_object(draw: Draw, doc: Doc) -> Expected:
    return draw(non_objects), "bad_field", ""


Mutation = Callable[[Draw, Doc], Expected]
BATCH_MUTATIONS: list[Mutation] = [
    m_wrong_type,
    m_wrong_top_level_type,
    m_bool_for_int,
    m_ts_out_of_range,
    m_seq_out_of_range,
    m_value_out_of_range,
    m_unknown_kind,
    m_unknown_reading_field,
    m_unknown_top_level_field,
    m_missing_reading_field,
    m_missing_top_level_field,
    m_wrong_version,
    m_bad_stream,
    m_bad_badge,
    m_bad_direction,
    m_empty_readings,
    m_environment_without_fields,
    m_null_optional_field,
    m_reading_not_object,
    m_not_object,
]


# -- mutations of a valid status ---------------------------------------------------------

_STATUS_TYPES = {
    "state": "string",
    "fw": "string",
    "uptime_s": "integer",
    "outbox": "integer",
    "dropped": "integer",
    "clock_synced": "boolean",
}
_STATUS_FIELDS = ("v", *_STATUS_TYPES)


def s_wrong_type(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(sorted(_STATUS_TYPES)))
    doc[name] = draw(_WRONG[_STATUS_TYPES[name]])
    return doc, "bad_field", name


def s_bool_for_int(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(["uptime_s", "outbox", "dropped"]))
    doc[name] = draw(st.booleans())
    return doc, "bad_field", name


def s_out_of_range(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(["uptime_s", "outbox", "dropped"]))
    doc[name] = draw(st.integers(-(2**63), -1) | st.integers(SEQ_MAX + 1, 2**64 - 1))
    return doc, "bad_field", name


def s_unknown_state(draw: Draw, doc: Doc) -> Expected:
    doc["state"] = draw(st.text().filter(lambda s: s not in ("online", "offline")))
    return doc, "bad_field", "state"


def s_fw_too_long(draw: Draw, doc: Doc) -> Expected:
    doc["fw"] = draw(st.text(min_size=65, max_size=100))
    return doc, "bad_field", "fw"


def s_null_field(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(["fw", "uptime_s", "outbox", "dropped", "clock_synced"]))
    doc[name] = None
    return doc, "bad_field", name


def s_unknown_field(draw: Draw, doc: Doc) -> Expected:
    name = draw(_not_in(_STATUS_FIELDS))
    doc[name] = draw(json_values)
    return doc, "unknown_field", name


def s_missing_field(draw: Draw, doc: Doc) -> Expected:
    name = draw(st.sampled_from(["v", "state"]))
    del doc[name]
    return doc, "missing_field", name


STATUS_MUTATIONS: list[Mutation] = [
    s_wrong_type,
    s_bool_for_int,
    s_out_of_range,
    s_unknown_state,
    s_fw_too_long,
    s_null_field,
    s_unknown_field,
    s_missing_field,
    m_wrong_version,
    m_not_object,
]


def _error(decode: Callable[[bytes], object], raw: bytes) -> ContractError:
    with pytest.raises(ContractError) as info:
        decode(raw)
    return info.value


def _accepts(decode: Callable[[bytes], object], raw: bytes) -> bool:
    try:
        decode(raw)
    except ContractError:
        return False
    return True


# -- round trips and valid documents ----------------------------------------------------


@ROUND_TRIP
@given(batches)
def test_batch_round_trips(batch: Batch) -> None:
    assert decode_batch(encode_batch(batch)) == batch


@ROUND_TRIP
@given(statuses)
def test_status_round_trips(status: Status) -> None:
    assert decode_status(encode_status(status)) == status


@ROUND_TRIP
@given(batch_docs())
def test_every_valid_batch_passes_the_schema_and_the_decoder(doc: Doc) -> None:
    BATCH_SCHEMA.validate(doc)
    assert orjson.loads(encode_batch(decode_batch(orjson.dumps(doc)))) == doc


@ROUND_TRIP
@given(status_docs())
def test_every_valid_status_passes_the_schema_and_the_decoder(doc: Doc) -> None:
    STATUS_SCHEMA.validate(doc)
    assert orjson.loads(encode_status(decode_status(orjson.dumps(doc)))) == doc


def test_the_generators_cover_every_kind_and_both_states() -> None:
    """The round trips above prove something only if every kind is generated."""
    kinds: set[str] = set()
    states: set[str] = set()

    @settings(max_examples=100, deadline=None, database=None)
    @given(batches, statuses)
    def collect(batch: Batch, status: Status) -> None:
        kinds.update(r.kind for r in batch.readings)
        states.add(status.state)

    collect()
    assert kinds == set(KINDS)
    assert states == {"online", "offline"}


# -- invalid documents: both the schema and the decoder reject them ---------------------


@pytest.mark.parametrize("mutation", BATCH_MUTATIONS, ids=lambda m: m.__name__[2:])
@PER_MUTATION
@given(data=st.data())
def test_the_schema_and_the_decoder_reject_each_bad_batch(
    mutation: Mutation, data: st.DataObject
) -> None:
    doc, reason, path = mutation(data.draw, data.draw(batch_docs()))
    raw = orjson.dumps(doc)
    assert not BATCH_SCHEMA.is_valid(orjson.loads(raw)), doc
    error = _error(decode_batch, raw)
    assert (error.reason, error.path) == (reason, path), str(error)


@pytest.mark.parametrize("mutation", STATUS_MUTATIONS, ids=lambda m: m.__name__[2:])
@PER_MUTATION
@given(data=st.data())
def test_the_schema_and_the_decoder_reject_each_bad_status(
    mutation: Mutation, data: st.DataObject
) -> None:
    doc, reason, path = mutation(data.draw, data.draw(status_docs()))
    raw = orjson.dumps(doc)
    assert not STATUS_SCHEMA.is_valid(orjson.loads(raw)), doc
    error = _error(decode_status, raw)
    assert (error.reason, error.path) == (reason, path), str(error)


@st.composite
def edited(draw: st.DrawFn, docs: st.SearchStrategy[Doc]) -> object:
    """A valid document with one arbitrary edit: a value replaced, a key removed or added."""
    doc = draw(docs)
    containers: list[Any] = [doc]
    for reading in doc.get("readings", []):
        containers.append(reading)
    target = draw(st.sampled_from(containers))
    edit = draw(st.sampled_from(["replace", "delete", "add", "whole"]))
    if edit == "whole":
        return draw(json_values)
    if edit == "add" or not target:
        target[draw(st.text(max_size=12) | st.sampled_from([*_FIELD_TYPES, *_STATUS_FIELDS]))] = (
            draw(json_values)
        )
        return doc
    key = draw(st.sampled_from(sorted(target)))
    if edit == "delete":
        del target[key]
    else:
        target[key] = draw(json_values)
    return doc


@FUZZ
@given(edited(batch_docs()))
def test_the_schema_and_the_decoder_agree_on_any_edited_batch(doc: object) -> None:
    raw = orjson.dumps(doc)
    assert BATCH_SCHEMA.is_valid(orjson.loads(raw)) == _accepts(decode_batch, raw), doc


@FUZZ
@given(edited(status_docs()))
def test_the_schema_and_the_decoder_agree_on_any_edited_status(doc: object) -> None:
    raw = orjson.dumps(doc)
    assert STATUS_SCHEMA.is_valid(orjson.loads(raw)) == _accepts(decode_status, raw), doc


def _batch(**reading: Any) -> Doc:
    return {"v": 1, "stream": STREAM, "readings": [{"seq": 1, "ts": TS, **reading}]}


@pytest.mark.parametrize(
    ("reading", "valid"),
    [
        ({"kind": "people_count", "count": 0, "seq": 0}, True),
        ({"kind": "people_count", "count": COUNT_MAX, "seq": SEQ_MAX}, True),
        ({"kind": "people_count", "count": COUNT_MAX + 1}, False),
        ({"kind": "people_count", "count": -1}, False),
        ({"kind": "people_count", "count": 3, "seq": SEQ_MAX + 1}, False),
        ({"kind": "people_count", "count": 3, "ts": TS_MIN}, True),
        ({"kind": "people_count", "count": 3, "ts": TS_MAX}, True),
        ({"kind": "people_count", "count": 3, "ts": TS_MIN - 1}, False),
        ({"kind": "people_count", "count": 3, "ts": TS_MAX + 1}, False),
        ({"kind": "people_count", "count": 3.0, "seq": 7.0}, True),  # JSON: 3.0 is the integer 3
        ({"kind": "people_count", "count": 3.5}, False),
        ({"kind": "environment", "temp_c": -50, "humidity_pct": 100, "co2_ppm": 100_000}, True),
        ({"kind": "environment", "temp_c": -50.01}, False),
        ({"kind": "environment", "temp_c": 100.01}, False),
        ({"kind": "environment", "humidity_pct": -0.5}, False),
        ({"kind": "environment", "co2_ppm": 100_000.5}, False),
        ({"kind": "badge_tap", "badge": "b1:" + "A" * 16, "direction": "out"}, True),
        ({"kind": "badge_tap", "badge": "b1:" + "A" * 64, "direction": "out"}, True),
        ({"kind": "badge_tap", "badge": "b1:" + "A" * 15, "direction": "out"}, False),
        ({"kind": "badge_tap", "badge": "b1:" + "A" * 65, "direction": "out"}, False),
    ],
)
def test_the_schema_and_the_decoder_agree_at_the_bounds(reading: Doc, valid: bool) -> None:
    doc = _batch(**reading)
    assert BATCH_SCHEMA.is_valid(doc) is valid
    assert _accepts(decode_batch, orjson.dumps(doc)) is valid


def test_integral_floats_are_read_as_integers() -> None:
    batch = decode_batch(orjson.dumps({**_batch(kind="people_count", count=3.0), "v": 1.0}))
    reading = batch.readings[0]
    assert isinstance(reading, PeopleCount)
    assert (type(reading.count), type(reading.seq), type(batch.v)) == (int, int, int)


def test_a_trailing_newline_is_not_part_of_a_token() -> None:
    """The decoder matches whole strings (Python's jsonschema would let these pass)."""
    for doc, path in [
        ({**_batch(kind="desk_occupancy", occupied=True), "stream": STREAM + "\n"}, "stream"),
        (_batch(kind="badge_tap", badge=BADGE + "\n", direction="in"), "readings[0].badge"),
    ]:
        assert _error(decode_batch, orjson.dumps(doc)).path == path


# -- precise error messages --------------------------------------------------------------

_GOOD = {"seq": 1, "ts": TS, "kind": "desk_occupancy", "occupied": True}


def _raw(doc: object) -> bytes:
    return orjson.dumps(doc)


@pytest.mark.parametrize(
    ("raw", "reason", "path"),
    [
        (b"", "not_json", ""),
        (b"{", "not_json", ""),
        (b"\xff\xfe{}", "not_json", ""),
        (b'{"v": 1, "stream": "\xc3\x28"}', "not_json", ""),
        ('{"v": 1}'.encode("utf-16"), "not_json", ""),
        (b'{"v": 1,}', "not_json", ""),
        (b"NaN", "not_json", ""),
        (b"1e400", "not_json", ""),
        (b"[" * 2000, "not_json", ""),
        (b"[]", "bad_field", ""),
        (b'"batch"', "bad_field", ""),
        (b"null", "bad_field", ""),
        (b"{}", "missing_field", "readings"),
        (_raw({"stream": STREAM, "readings": [_GOOD]}), "missing_field", "v"),
        (_raw({"v": 1, "readings": [_GOOD]}), "missing_field", "stream"),
        (_raw({"v": 2, "stream": STREAM, "readings": [_GOOD]}), "bad_version", "v"),
        (_raw({"v": "1", "stream": STREAM, "readings": [_GOOD]}), "bad_version", "v"),
        (_raw({"v": False, "stream": STREAM, "readings": [_GOOD]}), "bad_version", "v"),
        (_raw({"v": True, "stream": STREAM, "readings": [_GOOD]}), "bad_field", "v"),
        (_raw({"v": 1, "stream": STREAM.upper(), "readings": [_GOOD]}), "bad_field", "stream"),
        (_raw({"v": 1, "stream": 5, "readings": [_GOOD]}), "bad_field", "stream"),
        (_raw({"v": 1, "stream": STREAM, "readings": []}), "bad_field", "readings"),
        (_raw({"v": 1, "stream": STREAM, "readings": {}}), "bad_field", "readings"),
        (_raw({"v": 1, "stream": STREAM, "readings": [_GOOD, 5]}), "bad_field", "readings[1]"),
        (_raw({**_batch(**_GOOD), "site": "x"}), "unknown_field", "site"),
        (
            _raw(_batch(kind="desk_occupancy", occupied=True, seq="12")),
            "bad_field",
            "readings[0].seq",
        ),
        (
            _raw(_batch(kind="desk_occupancy", occupied=True, seq=-1)),
            "bad_field",
            "readings[0].seq",
        ),
        (
            _raw(_batch(kind="desk_occupancy", occupied=True, ts=True)),
            "bad_field",
            "readings[0].ts",
        ),
        (
            _raw(_batch(kind="desk_occupancy", occupied=True, ts=1795424990)),
            "bad_field",
            "readings[0].ts",
        ),
        (
            _raw({"v": 1, "stream": STREAM, "readings": [{"seq": 1, "ts": TS}]}),
            "missing_field",
            "readings[0].kind",
        ),
        (_raw(_batch(kind="door_open")), "unknown_kind", "readings[0].kind"),
        (_raw(_batch(kind=5)), "unknown_kind", "readings[0].kind"),
        (_raw(_batch(kind="desk_occupancy", occupied="yes")), "bad_field", "readings[0].occupied"),
        (_raw(_batch(kind="desk_occupancy", occupied=None)), "bad_field", "readings[0].occupied"),
        (_raw(_batch(kind="desk_occupancy")), "missing_field", "readings[0].occupied"),
        (
            _raw(_batch(kind="desk_occupancy", occupied=True, colour="red")),
            "unknown_field",
            "readings[0].colour",
        ),
        (
            _raw(_batch(kind="badge_tap", badge="4829001122", direction="in")),
            "bad_field",
            "readings[0].badge",
        ),
        (
            _raw(_batch(kind="badge_tap", badge=BADGE, direction="sideways")),
            "bad_field",
            "readings[0].direction",
        ),
        (_raw(_batch(kind="badge_tap", badge=BADGE)), "missing_field", "readings[0].direction"),
        (_raw(_batch(kind="people_count", count=100_001)), "bad_field", "readings[0].count"),
        (_raw(_batch(kind="people_count", count=3.5)), "bad_field", "readings[0].count"),
        (_raw(_batch(kind="environment")), "missing_field", "readings[0]"),
        (_raw(_batch(kind="environment", temp_c=101)), "bad_field", "readings[0].temp_c"),
        (_raw(_batch(kind="environment", temp_c="24.5")), "bad_field", "readings[0].temp_c"),
        (
            _raw(_batch(kind="environment", temp_c=24, co2_ppm=None)),
            "bad_field",
            "readings[0].co2_ppm",
        ),
    ],
)
def test_batch_errors_say_why_and_where(raw: bytes, reason: str, path: str) -> None:
    error = _error(decode_batch, raw)
    assert (error.reason, error.path) == (reason, path), str(error)


@pytest.mark.parametrize(
    ("doc", "reason", "path"),
    [
        ({"v": 1}, "missing_field", "state"),
        ({"state": "online"}, "missing_field", "v"),
        ({"v": 2, "state": "online"}, "bad_version", "v"),
        ({"v": 1, "state": "sleeping"}, "bad_field", "state"),
        ({"v": 1, "state": "online", "fw": "x" * 65}, "bad_field", "fw"),
        ({"v": 1, "state": "online", "fw": None}, "bad_field", "fw"),
        ({"v": 1, "state": "online", "uptime_s": -1}, "bad_field", "uptime_s"),
        ({"v": 1, "state": "online", "outbox": "3"}, "bad_field", "outbox"),
        ({"v": 1, "state": "online", "dropped": True}, "bad_field", "dropped"),
        ({"v": 1, "state": "online", "clock_synced": 1}, "bad_field", "clock_synced"),
        ({"v": 1, "state": "online", "battery": 80}, "unknown_field", "battery"),
        (["online"], "bad_field", ""),
    ],
)
def test_status_errors_say_why_and_where(doc: object, reason: str, path: str) -> None:
    error = _error(decode_status, orjson.dumps(doc))
    assert (error.reason, error.path) == (reason, path), str(error)


def test_error_messages_show_the_path_and_the_offending_value() -> None:
    error = _error(decode_batch, _raw(_batch(kind="desk_occupancy", occupied=True, seq="12")))
    assert str(error) == 'readings[0].seq: expected an integer, got a string "12"'
    error = _error(decode_batch, _raw(_batch(kind="door_open")))
    assert str(error).startswith("readings[0].kind: 'door_open' is not one of badge_tap, ")
    error = _error(decode_batch, _raw({"v": 1, "stream": STREAM, "readings": [_GOOD] * 3 + [[]]}))
    assert str(error) == "readings[3]: expected an object, got an array"


# -- size and bytes ----------------------------------------------------------------------


def test_the_size_limit_is_256_kib_inclusive() -> None:
    raw = _raw(_batch(**_GOOD))
    at_limit = raw + b" " * (MAX_PAYLOAD_BYTES - len(raw))
    assert MAX_PAYLOAD_BYTES == 256 * 1024
    assert decode_batch(at_limit).readings[0] == DeskOccupancy(seq=1, ts=TS, occupied=True)
    assert _error(decode_batch, at_limit + b" ").reason == "too_large"
    assert _error(decode_status, b"{" * (MAX_PAYLOAD_BYTES + 1)).reason == "too_large"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512) | json_values.map(orjson.dumps))
def test_decoding_raises_only_contract_errors(raw: bytes) -> None:
    for decode in (decode_batch, decode_status):
        try:
            decode(raw)
        except ContractError as exc:
            assert exc.reason in REASONS


# -- value objects and make_reading ----------------------------------------------------------


@ROUND_TRIP
@given(readings)
def test_make_reading_numbers_what_a_driver_observed(reading: Reading) -> None:
    obs = Observation(kind=reading.kind, ts=reading.ts, fields=reading.body())
    assert make_reading(obs, reading.seq) == reading


def test_make_reading_builds_each_kind() -> None:
    assert make_reading(Observation("desk_occupancy", TS, {"occupied": True}), 7) == DeskOccupancy(
        seq=7, ts=TS, occupied=True
    )
    tap = make_reading(Observation("badge_tap", TS, {"badge": BADGE, "direction": "in"}), 8)
    assert tap == BadgeTap(seq=8, ts=TS, badge=BADGE, direction="in")
    assert make_reading(Observation("people_count", TS, {"count": 14}), 9).to_dict() == {
        "seq": 9,
        "ts": TS,
        "kind": "people_count",
        "count": 14,
    }
    env = make_reading(Observation("environment", TS, {"co2_ppm": 612, "temp_c": None}), 10)
    assert env.body() == {"co2_ppm": 612}


@pytest.mark.parametrize(
    ("obs", "seq", "reason", "path"),
    [
        (Observation("door_open", TS, {}), 1, "unknown_kind", ""),
        (Observation("desk_occupancy", TS, {}), 1, "missing_field", "occupied"),
        (
            Observation("desk_occupancy", TS, {"occupied": True, "lux": 3}),
            1,
            "unknown_field",
            "lux",
        ),
        (
            Observation("desk_occupancy", TS, {"occupied": True, "kind": "x"}),
            1,
            "unknown_field",
            "kind",
        ),
        (Observation("desk_occupancy", TS, {"occupied": 1}), 1, "bad_field", "occupied"),
        (Observation("desk_occupancy", TS, {"occupied": object()}), 1, "bad_field", "occupied"),
        (Observation("desk_occupancy", TS, {"occupied": 2**70}), 1, "bad_field", "occupied"),
        (Observation("desk_occupancy", TS, {"occupied": True}), -1, "bad_field", "seq"),
        (Observation("desk_occupancy", TS, {"occupied": True}), True, "bad_field", "seq"),
        (Observation("desk_occupancy", TS // 1000, {"occupied": True}), 1, "bad_field", "ts"),
        (
            Observation("badge_tap", TS, {"badge": "4829001122", "direction": "in"}),
            1,
            "bad_field",
            "badge",
        ),
        (Observation("people_count", TS, {"count": -3}), 1, "bad_field", "count"),
        (Observation("environment", TS, {}), 1, "missing_field", ""),
        (Observation("environment", TS, {"temp_c": None}), 1, "missing_field", ""),
    ],
)
def test_make_reading_rejects_what_does_not_fit(
    obs: Observation, seq: int, reason: str, path: str
) -> None:
    with pytest.raises(ContractError) as info:
        make_reading(obs, seq)
    assert (info.value.reason, info.value.path) == (reason, path), str(info.value)


def test_value_objects_check_themselves() -> None:
    with pytest.raises(ContractError, match="lower-case UUID"):
        Batch(stream=STREAM.upper(), readings=(DeskOccupancy(seq=1, ts=TS, occupied=True),))
    with pytest.raises(ContractError, match="readings"):
        Batch(stream=STREAM, readings=())
    with pytest.raises(ContractError, match="state"):
        Status(state="asleep")  # type: ignore[arg-type]
    assert _UUID.fullmatch(Batch.new_stream())


# -- topics ------------------------------------------------------------------------------

device_ids = st.from_regex(DEVICE_ID_PATTERN, fullmatch=True)


@settings(max_examples=200, deadline=None)
@given(device_ids)
def test_topics_round_trip_for_every_valid_device_id(device_id: str) -> None:
    for build, channel in (
        (up_topic, Channel.UP),
        (status_topic, Channel.STATUS),
        (down_topic, Channel.DOWN),
    ):
        topic = build(device_id)
        assert topic == f"ikn/v1/dev/{device_id}/{channel.value}"
        assert parse_topic(topic) == DeviceTopic(device_id, channel)
        assert str(parse_topic(topic)) == topic


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=70).filter(lambda s: not re.fullmatch(DEVICE_ID_PATTERN, s)))
def test_bad_device_ids_are_rejected(device_id: str) -> None:
    for build in (up_topic, status_topic, down_topic):
        with pytest.raises(ContractError) as info:
            build(device_id)
        assert (info.value.reason, info.value.path) == ("bad_topic", "device_id")
    with pytest.raises(ContractError) as info:
        parse_topic(f"ikn/v1/dev/{device_id}/up")
    assert info.value.reason == "bad_topic"


@pytest.mark.parametrize(
    "device_id", ["", "x" * 65, "desk/1", "desk+", "desk#", "+", "#", "desk 1", "méja", "desk-1\n"]
)
def test_named_bad_device_ids_are_rejected(device_id: str) -> None:
    with pytest.raises(ContractError, match="must match") as info:
        up_topic(device_id)
    assert (info.value.reason, info.value.path) == ("bad_topic", "device_id")


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "ikn/v1/dev/+/up",
        "ikn/v1/dev/#",
        "ikn/v1/dev/desk-1/#",
        "ikn/v1/dev/desk-1/+",
        "ikn/v1/dev/desk-1/up/extra",
        "ikn/v1/dev/site/desk-1/up",
        "ikn/v1/dev/desk-1/up/",
        "/ikn/v1/dev/desk-1/up",
        "ikn/v1/dev//up",
        "ikn/v1/dev/desk-1",
        "ikn/v1/dev/desk-1/UP",
        "ikn/v1/dev/desk-1/sideways",
        "ikn/v2/dev/desk-1/up",
        "IKN/v1/dev/desk-1/up",
        "other/v1/dev/desk-1/up",
        "$share/ikn-ingest/ikn/v1/dev/desk-1/up",
    ],
)
def test_bad_topics_are_rejected(topic: str) -> None:
    with pytest.raises(ContractError) as info:
        parse_topic(topic)
    assert info.value.reason == "bad_topic"


def test_subscription_filters_and_shared_subscriptions() -> None:
    assert UP_FILTER == "ikn/v1/dev/+/up"
    assert STATUS_FILTER == "ikn/v1/dev/+/status"
    assert shared("ikn-ingest", UP_FILTER) == "$share/ikn-ingest/ikn/v1/dev/+/up"
    assert shared("", STATUS_FILTER) == STATUS_FILTER
    assert parse_topic("ikn/v1/dev/Desk_07-b/status") == DeviceTopic("Desk_07-b", Channel.STATUS)


# -- what PostgreSQL cannot hold: U+0000, lone surrogates (issue 15) -----------------------

_NUL_DESK = {"seq": 1, "ts": TS, "kind": "desk_occupancy", "occupied": True}
_NUL_ANSWER = {"seq": 1, "ts": TS, "kind": "command_result", "command": "c-1", "ok": False}


@pytest.mark.parametrize(
    ("raw", "reason", "path"),
    [
        (
            orjson.dumps(_batch(**{**_NUL_ANSWER, "detail": "sensor\x00fault"})),
            "bad_field",
            "readings[0].detail",
        ),
        (orjson.dumps({**_batch(**_NUL_DESK), "x\x00y": 1}), "unknown_field", "x\x00y"),
        (orjson.dumps(_batch(**_NUL_DESK, **{"\x00": 1})), "unknown_field", "readings[0].\x00"),
        (
            orjson.dumps(_batch(**{**_NUL_DESK, "kind": "desk_occupancy\x00"})),
            "unknown_kind",
            "readings[0].kind",
        ),
        (
            orjson.dumps(_batch(**_NUL_ANSWER)).replace(b'"ok"', b'"detail":"\\ud800","ok"'),
            "not_json",
            "",
        ),
    ],
)
def test_a_string_postgresql_cannot_hold_is_refused_by_both_batch_decoders(
    raw: bytes, reason: str, path: str
) -> None:
    error = _error(decode_batch, raw)
    assert (error.reason, error.path) == (reason, path)
    assert fast_readings(raw) is None
    if reason != "not_json":
        assert not BATCH_SCHEMA.is_valid(orjson.loads(raw))


def test_a_nul_in_a_status_is_refused_and_the_schemas_say_so() -> None:
    raw = orjson.dumps({"v": 1, "state": "online", "fw": "1.0\x00"})
    error = _error(decode_status, raw)
    assert (error.reason, error.path) == ("bad_field", "fw")
    assert not STATUS_SCHEMA.is_valid(orjson.loads(raw))
    status, batch = STATUS_SCHEMA.schema, BATCH_SCHEMA.schema
    assert isinstance(status, dict) and isinstance(batch, dict)  # (a schema may be a bool)
    fw = status["properties"]["fw"]
    detail = batch["$defs"]["command_result"]["properties"]["detail"]
    assert fw["pattern"] == detail["pattern"] == NO_NUL_PATTERN


_DEEP = "[" * 1000 + "]" * 1000  # orjson reads up to 1,024 levels; repr() recursed too deep


@pytest.mark.parametrize(
    ("decode", "raw", "reason", "path"),
    [
        (decode_batch, f'{{"v":{_DEEP}}}', "bad_version", "v"),
        (decode_batch, f'{{"v":1,"stream":{_DEEP},"readings":[]}}', "bad_field", "stream"),
        (
            decode_batch,
            f'{{"v":1,"stream":"{STREAM}","readings":[{{"seq":1,"ts":{TS},"kind":{_DEEP}}}]}}',
            "unknown_kind",
            "readings[0].kind",
        ),
        (decode_status, f'{{"v":1,"state":{_DEEP}}}', "bad_field", "state"),
        (decode_status, f'{{"v":{_DEEP},"state":"online"}}', "bad_version", "v"),
        (decode_down, f'{{"v":{_DEEP}}}', "bad_version", "v"),
        (decode_down, f'{{"v":1,"id":"c-1","ts":{TS},"cmd":{_DEEP}}}', "unknown_command", "cmd"),
    ],
)
def test_a_deeply_nested_value_is_a_contract_error_with_a_short_message(
    decode: Callable[[bytes], object], raw: str, reason: str, path: str
) -> None:
    """Found by tests/test_ingest_hypothesis.py: a ``v`` nested 1,000 deep made the error
    message's repr() raise RecursionError, which stopped the ingest."""
    error = _error(decode, raw.encode())
    assert (error.reason, error.path) == (reason, path)
    assert len(str(error)) < 200


@pytest.mark.parametrize("badge", [4829001234, 4829001234.5, ["0004829001"], {"n": 4829001234}])
def test_a_badge_field_s_value_is_never_echoed_in_the_error(badge: object) -> None:
    """Before: ``readings[0].badge: expected a string, got an integer 4829001234``, kept
    in dead_letters.detail and the ingest's log (issue 16): a card number."""
    reading = {"seq": 1, "ts": TS, "kind": "badge_tap", "badge": badge, "direction": "in"}
    error = _error(decode_batch, orjson.dumps(_batch(**reading)))
    assert (error.reason, error.path) == ("bad_field", "readings[0].badge")
    assert "482900" not in str(error)

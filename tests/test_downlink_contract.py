"""The ``down`` contract: the decoder and ``down-v1.schema.json`` agree on every
document (hypothesis), valid commands round-trip, and ``command_result`` readings
fit the batch schema."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from ikn_core.contract import (
    Batch,
    CommandResult,
    ConfigCommand,
    DisplayCommand,
    DownCommand,
    DownMessage,
    IdentifyCommand,
    RebootCommand,
    StoredNotice,
    command_id_of,
    decode_batch,
    decode_down,
    encode_batch,
    encode_down,
)
from ikn_core.contract.down import (
    COMMANDS,
    CONFIG_RANGES,
    HHMM_PATTERN,
    STORED_RANGES_MAX,
    DisplayState,
    encode_stored,
)
from ikn_core.contract.payload import COMMAND_ID_PATTERN, SEQ_MAX, TS_MAX, TS_MIN
from ikn_core.errors import ContractError


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads(resources.files("ikn_core.contract").joinpath(name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


DOWN_SCHEMA = _validator("down-v1.schema.json")
BATCH_SCHEMA = _validator("batch-v1.schema.json")
ids = st.from_regex(COMMAND_ID_PATTERN, fullmatch=True).filter(lambda s: not s.endswith("\n"))
stamps = st.integers(TS_MIN, TS_MAX)
times = st.from_regex(HHMM_PATTERN, fullmatch=True).filter(lambda s: not s.endswith("\n"))


@st.composite
def configs(draw: st.DrawFn) -> ConfigCommand:
    names = draw(st.sets(st.sampled_from(sorted(CONFIG_RANGES)), min_size=1))
    values = {n: draw(st.integers(*CONFIG_RANGES[n])) for n in names}
    return ConfigCommand(id=draw(ids), ts=draw(stamps), **values)


@st.composite
def displays(draw: st.DrawFn) -> DisplayCommand:
    state: DisplayState = draw(st.sampled_from(["free", "booked", "occupied"]))
    until = draw(times) if state == "booked" else draw(st.none() | times)
    return DisplayCommand(id=draw(ids), ts=draw(stamps), state=state, until=until)


commands: st.SearchStrategy[DownCommand] = st.one_of(
    configs(),
    displays(),
    st.builds(IdentifyCommand, id=ids, ts=stamps, seconds=st.integers(1, 600)),
    st.builds(RebootCommand, id=ids, ts=stamps),
)
seqs = st.integers(0, SEQ_MAX)
notices = st.builds(
    StoredNotice,
    stream=st.uuids().map(str),
    seqs=st.lists(st.tuples(seqs, seqs), min_size=1, max_size=20).map(tuple),
)
messages: st.SearchStrategy[DownMessage] = st.one_of(commands, notices)
# Values that are right for some field and wrong for others.
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 300_000),
    st.sampled_from([1, 1.5, TS_MIN, TS_MAX + 1, "12:30", "24:00", "free", "booked", "x y"]),
    st.sampled_from(["config", "identify", "reboot", "display", "stored", "zap"]),
    st.sampled_from(
        ["5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40", "5F0C2A9E-1F7B-4D1E-9D7E-3B8F2A6C1D40"]
    ),
    st.sampled_from([[], [[1, 2]], [[1]], [[1, 2, 3]], [[-1, 2]], [[1, SEQ_MAX + 1]], [["1", 2]]]),
    st.sampled_from([[[1.0, 2]], [[True, 2]], [None], [[1, None]], [[3, 1]]]),
    st.just([[1, 1]] * (STORED_RANGES_MAX + 1)),
)
_keys = st.sampled_from(
    [
        *("v", "id", "ts", "cmd", "seconds", "state", "until", "extra", "stream", "seqs"),
        *sorted(CONFIG_RANGES),
    ]
)


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode_down(draw(messages)))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(_keys)
        if draw(st.booleans()) and key in doc:
            del doc[key]
        else:
            doc[key] = draw(_values)
    return doc


@settings(max_examples=200, deadline=None)
@given(messages)
def test_valid_commands_fit_the_schema_and_round_trip(command: DownMessage) -> None:
    raw = encode_down(command)
    assert list(DOWN_SCHEMA.iter_errors(orjson.loads(raw))) == []
    assert decode_down(raw) == command


@settings(max_examples=100, deadline=None)
@given(notices)
def test_the_ingest_encodes_a_notice_as_the_contract_does(notice: StoredNotice) -> None:
    assert encode_stored(notice.stream, notice.seqs) == encode_down(notice)


@settings(max_examples=600, deadline=None)
@given(mutated())
def test_decoder_and_schema_agree(doc: dict[str, Any]) -> None:
    schema_ok = DOWN_SCHEMA.is_valid(doc)
    try:
        decode_down(orjson.dumps(doc))
    except ContractError as exc:
        assert not schema_ok, f"decoder refused a schema-valid document: {exc}"
    else:
        assert schema_ok, f"decoder accepted a document the schema refuses: {doc}"


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"not json", "not_json", None),
        (b'{"v":1,"id":"c1","ts":1795424990763}', "missing_field", "cmd"),
        (b'{"v":1,"id":"c1","ts":1795424990763,"cmd":"selfdestruct"}', "unknown_command", "cmd"),
        (b'{"v":2,"id":"c1","ts":1795424990763,"cmd":"reboot"}', "bad_version", "v"),
        (b'{"v":1,"id":"c 1","ts":1795424990763,"cmd":"reboot"}', "bad_field", "id"),
        (
            b'{"v":1,"id":"c1","ts":1795424990763,"cmd":"display","state":"booked"}',
            "missing_field",
            "until",
        ),
        (b'{"v":1,"id":"c1","ts":1795424990763,"cmd":"config"}', "missing_field", None),
        (
            b'{"v":1,"id":"c1","ts":1795424990763,"cmd":"identify","seconds":601}',
            "bad_field",
            "seconds",
        ),
    ],
)
def test_bad_commands_say_why(raw: bytes, reason: str, field: str | None) -> None:
    with pytest.raises(ContractError) as caught:
        decode_down(raw)
    assert caught.value.reason == reason
    assert (caught.value.path or None) == field


def test_a_stored_notice_has_no_id_so_an_older_agent_answers_nothing() -> None:
    """An agent that predates the notice counts it as malformed; with no ``id`` to
    name, it publishes no ``command_result`` (which would be stored and noticed...)."""
    raw = encode_down(StoredNotice("5f0c2a9e-1f7b-4d1e-9d7e-3b8f2a6c1d40", ((1, 5),)))
    assert command_id_of(raw) is None
    assert "id" not in orjson.loads(raw)


def test_the_id_of_a_bad_command_is_recovered_when_usable() -> None:
    assert command_id_of(b'{"v":1,"id":"c-7","cmd":"zap"}') == "c-7"
    assert command_id_of(b'{"v":1,"id":"c 7","cmd":"zap"}') is None
    assert command_id_of(b"[1]") is None
    assert command_id_of(b"\xff") is None


@settings(max_examples=100, deadline=None)
# a detail holds any text but U+0000, which the contract refuses (docs/contract.md);
# text a device can send at all: UTF-8, so no lone surrogate (hypothesis draws them)
@given(
    ids,
    st.booleans(),
    st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200),
)
def test_command_results_fit_the_batch_schema(command: str, ok: bool, detail: str | None) -> None:
    reading = CommandResult(seq=1, ts=TS_MIN, command=command, ok=ok, detail=detail)
    raw = encode_batch(Batch(Batch.new_stream(), (reading,)))
    assert list(BATCH_SCHEMA.iter_errors(orjson.loads(raw))) == []
    assert decode_batch(raw).readings == (reading,)


def test_the_docs_show_every_command() -> None:
    """(tests/test_docs.py checks each ``json down`` example against schema and decoder.)"""
    text = (Path(__file__).resolve().parent.parent / "docs" / "contract.md").read_text()
    blocks = re.findall(r"^```json down\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert {orjson.loads(b)["cmd"] for b in blocks} == set(COMMANDS) | {StoredNotice.cmd}

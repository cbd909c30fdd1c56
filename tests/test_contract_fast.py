"""The ingest's fast path agrees with the precise decoder on every document."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikn_core.contract import decode_batch
from ikn_core.contract.fast import fast_readings
from ikn_core.errors import ContractError
from tests.test_contract import BATCH_MUTATIONS, Doc, Mutation, batch_docs, edited

_FUZZ = settings(max_examples=400, deadline=None)


def _precise(raw: bytes) -> tuple[str, list[tuple[int, int, str, dict[str, object]]]] | None:
    try:
        batch = decode_batch(raw)
    except ContractError:
        return None
    return batch.stream, [(r.seq, r.ts, r.kind, r.body()) for r in batch.readings]


@_FUZZ
@given(batch_docs())
def test_every_valid_batch_takes_the_fast_path_with_the_same_values(doc: Doc) -> None:
    raw = orjson.dumps(doc)
    assert fast_readings(raw) == _precise(raw) is not None


@_FUZZ
@given(edited(batch_docs()))
def test_the_fast_path_never_accepts_what_the_decoder_refuses(doc: object) -> None:
    raw = orjson.dumps(doc)
    fast = fast_readings(raw)
    assert fast is None or fast == _precise(raw)


@pytest.mark.parametrize("mutation", BATCH_MUTATIONS, ids=lambda m: m.__name__)
def test_each_kind_of_mistake_leaves_the_fast_path(mutation: Mutation) -> None:
    @settings(max_examples=60, deadline=None)
    @given(st.data(), batch_docs())
    def check(data: st.DataObject, doc: Doc) -> None:
        bad, _reason, _path = mutation(data.draw, doc)
        assert fast_readings(orjson.dumps(bad)) is None

    check()

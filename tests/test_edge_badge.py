"""Badge pseudonymisation: the raw card number never leaves the agent, neither in
what it publishes nor in what it stores on disk, nor in its log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent import EdgeAgent, SqliteOutbox, badge_token
from edge_agent.badge import pseudonymise
from ikn.brokers import BrokerProcess
from ikn_core.contract import BadgeTap, Observation
from ikn_core.errors import ContractError
from tests.test_edge_agent import flushed, mqtt_settings, now_ms, subscribed

SITE_KEY = b"kunci-situs-uji-0123456789"
# From `echo -n 0004829001 | openssl dgst -sha256 -hmac kunci-situs-uji-0123456789 -binary
# | base64 | tr '+/' '-_'`, without the trailing '=': docs/contract.md's formula, computed
# by another implementation.
KNOWN_TOKEN = "b1:ngISHR9GlJMiMS2IwQQLuRemU-EbOaqq_9d9p_5wgF8"
CARDS = ["0004829001", "0004829002", "7777123456", "0000000042"]


def tap(card: str, direction: str = "in") -> Observation:
    return Observation("badge_tap", now_ms(), {"card": card, "direction": direction})


def test_token_follows_the_contract_formula() -> None:
    assert badge_token(SITE_KEY, "0004829001") == KNOWN_TOKEN


def test_two_sites_give_the_same_card_different_tokens() -> None:
    assert badge_token(SITE_KEY, "0004829001") != badge_token(b"another-site-key", "0004829001")


@given(st.text(min_size=1, max_size=64).filter(str.isprintable))
def test_every_token_fits_the_contract(card: str) -> None:
    obs = pseudonymise(
        Observation("badge_tap", now_ms(), {"card": card, "direction": "in"}), SITE_KEY
    )
    assert "card" not in obs.fields
    assert len(obs.fields["badge"]) == 3 + 43
    BadgeTap(seq=1, ts=obs.ts, **obs.fields)  # validates against the contract


def test_a_card_without_a_site_key_is_refused_without_naming_it() -> None:
    with pytest.raises(ContractError) as err:
        pseudonymise(tap("0004829001"), None)
    assert "0004829001" not in str(err.value)
    with pytest.raises(ContractError) as err:
        pseudonymise(tap("0004829001\n"), SITE_KEY)
    assert "0004829001" not in str(err.value)


async def test_no_card_number_is_published_or_stored(
    mosquitto: BrokerProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edge = tmp_path / "edge"
    edge.mkdir()
    box = SqliteOutbox(edge / "outbox.db", 100)
    agent = EdgeAgent("reader-1", mqtt_settings(mosquitto), outbox=box, site_key=SITE_KEY)
    caplog.set_level(logging.DEBUG)
    async with subscribed(mosquitto) as sub:
        try:
            for i, card in enumerate(CARDS):  # offline first: the taps wait on disk
                agent.submit(tap(card, "in" if i % 2 == 0 else "out"))
            agent.submit(tap("0004829001\x00"))  # a bad card number: rejected, not echoed
            on_disk = b"".join(p.read_bytes() for p in edge.iterdir())
            await agent.start()
            await flushed(agent)
            await sub.wait_until(lambda: len(sub.readings()) == len(CARDS), "every tap")
        finally:
            await agent.close()
            box.close()
    on_disk += b"".join(p.read_bytes() for p in edge.iterdir())
    published = b"".join(m.payload for m in sub.messages)
    badges = [r.badge for r in sub.readings() if isinstance(r, BadgeTap)]
    assert badges == [badge_token(SITE_KEY, card) for card in CARDS]
    assert badges[0] == KNOWN_TOKEN
    assert agent.stats.rejected == 1
    for card in CARDS:
        for where, data in (("published", published), ("on disk", on_disk)):
            assert card.encode() not in data, f"card {card} {where}"
        assert card not in caplog.text
    assert b"ngISHR9GlJMiMS2IwQQLuRemU" in on_disk  # the files were read, and hold tokens

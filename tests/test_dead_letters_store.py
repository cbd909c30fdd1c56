"""Dead letters are bounded and can be written whatever they hold (issue 15), on the
real PostgreSQL: safe text, truncated payloads with their length and hash, the flood
guard's exact counts, counts per device, and retention."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import asyncpg

from ikn_core.contract import MAX_PAYLOAD_BYTES
from ikn_store.fleet.dead_letters import DeadLetter, count_by_reason, delete_expired, hour_of
from ikn_store.readings.rows import write_dead_letters
from tests.helpers import fetch

NOW = datetime(2026, 12, 6, 10, 20, tzinfo=UTC)


def _letter(device: str | None, reason: str = "not_json", at: datetime = NOW) -> DeadLetter:
    return DeadLetter(at, f"ikn/v1/dev/{device}/up", device, reason, "bad", b"\xff")


async def _write(url: str, letters: list[DeadLetter], keep: int = 100) -> None:
    conn = await asyncpg.connect(url)
    try:
        await write_dead_letters(conn, letters, keep)
    finally:
        await conn.close()


async def _counts(url: str, device: str | None = None) -> dict[str, int]:
    conn = await asyncpg.connect(url)
    try:
        return await count_by_reason(conn, device)
    finally:
        await conn.close()


async def test_a_dead_letter_holding_what_text_cannot_is_stored_safely(database_url: str) -> None:
    """U+0000 and lone surrogates in the topic and detail (PostgreSQL refused the first,
    and asyncpg could not encode the second); the detail is bounded too."""
    payload = b'{"x\\u0000y": 1, "\\ud800": 2}\x00\xff'
    letter = DeadLetter(
        NOW,
        "ikn/v1/dev/a\x00b/up",
        None,
        "unknown_field",
        "x\x00y\ud800: is not part of contract v1" + "z" * 10_000,
        payload,
    )
    await _write(database_url, [letter])
    (row,) = await fetch(database_url, "SELECT topic, detail, payload FROM dead_letters")
    assert row["topic"] == "ikn/v1/dev/a\\u0000b/up"
    assert row["detail"].startswith("x\\u0000y\\ud800: is not part of contract v1zzz")
    assert len(row["detail"]) == 500 and row["detail"].endswith("…")
    assert bytes(row["payload"]) == payload


async def test_a_payload_over_the_maximum_is_cut_with_its_length_and_hash(
    database_url: str,
) -> None:
    big = bytes(range(256)) * 4096  # 1 MiB: what the production broker lets through
    await _write(database_url, [DeadLetter(NOW, "ikn/v1/dev/a/up", "a", "too_large", "", big)])
    (row,) = await fetch(database_url, "SELECT payload, size, sha256 FROM dead_letters")
    assert bytes(row["payload"]) == big[:MAX_PAYLOAD_BYTES]
    assert (row["size"], bytes(row["sha256"])) == (len(big), hashlib.sha256(big).digest())


async def test_the_flood_guard_samples_payloads_and_keeps_exact_counts(database_url: str) -> None:
    """keep 10 an hour: of 250 letters from one device, the first 10 and every 10th after
    are kept (34), in two batches as in two transactions; the counts say 250."""
    await _write(database_url, [_letter("a") for _ in range(120)], keep=10)
    await _write(database_url, [_letter("a") for _ in range(130)], keep=10)
    await _write(database_url, [_letter("b"), _letter("b", "bad_field"), _letter(None)], keep=10)
    next_hour = NOW + timedelta(hours=1)
    await _write(database_url, [_letter("a", at=next_hour) for _ in range(12)], keep=10)
    rows = await fetch(
        database_url,
        "SELECT device_id, reason, count(*) FROM dead_letters GROUP BY 1, 2 ORDER BY 1, 2",
    )
    assert [tuple(r) for r in rows] == [
        ("a", "not_json", 34 + 11),  # and 10 + the 10th of the next hour
        ("b", "bad_field", 1),
        ("b", "not_json", 1),
        (None, "not_json", 1),
    ]
    assert await _counts(database_url, "a") == {"not_json": 262}
    assert await _counts(database_url, "b") == {"not_json": 1, "bad_field": 1}
    assert await _counts(database_url) == {"not_json": 264, "bad_field": 1}
    hours = await fetch(database_url, "SELECT DISTINCT hour FROM dead_letter_counts ORDER BY 1")
    assert [r[0] for r in hours] == [hour_of(NOW), hour_of(next_hour)]


async def test_retention_deletes_older_letters_and_their_counts(database_url: str) -> None:
    old = NOW - timedelta(days=31)
    await _write(database_url, [_letter("a", at=old), _letter("a"), _letter("b", at=old)])
    conn = await asyncpg.connect(database_url)
    try:
        assert await delete_expired(conn, timedelta(days=30), NOW) == 2
    finally:
        await conn.close()
    rows = await fetch(database_url, "SELECT device_id, received_at FROM dead_letters")
    assert [tuple(r) for r in rows] == [("a", NOW)]
    assert await _counts(database_url) == {"not_json": 1}


async def test_badge_fields_are_redacted_with_the_length_and_hash_kept(database_url: str) -> None:
    """Before: a card number a faulty reader sent was kept and shown to facility
    managers (issue 16). Only the values go; the rest of the payload stays as it was."""
    payload = (
        b'{"v":1,"stream":"s","readings":[{"seq":1,"ts":1,"kind":"badge_tap",'
        b'"badge":"0004829001","direction":"in"},{"badge": 4829001234},{"card":"0004829002"}]}'
    )
    await _write(database_url, [DeadLetter(NOW, "ikn/v1/dev/door/up", "door", "x", "", payload)])
    (row,) = await fetch(database_url, "SELECT payload, size, sha256 FROM dead_letters")
    assert bytes(row["payload"]) == (
        b'{"v":1,"stream":"s","readings":[{"seq":1,"ts":1,"kind":"badge_tap",'
        b'"badge":"[redacted]","direction":"in"},{"badge": "[redacted]"},{"card":"[redacted]"}]}'
    )
    assert (row["size"], bytes(row["sha256"])) == (len(payload), hashlib.sha256(payload).digest())

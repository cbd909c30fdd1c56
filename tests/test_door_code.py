"""The door's rotating check-in code (ikn_core.door_code): windows, their bounds, the
skew allowed, and forgeries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from ikn_core.door_code import (
    WINDOW_S,
    DoorCodeRefused,
    check,
    code_at,
    next_change,
    window_of,
)

KEY = b"k" * 32
START = datetime(2026, 12, 7, 1, 0, 0, tzinfo=UTC)  # a window's first second (09:00 WITA)


def _refused(kind: str, scanned: tuple[bytes, str, str, str], now: datetime) -> None:
    """``check`` of ``scanned`` (key, building, window, signature) at ``now`` refuses it."""
    with pytest.raises(DoorCodeRefused) as caught:
        check(*scanned, now)
    assert caught.value.kind == kind


def test_a_window_is_30_seconds_from_the_epoch_whatever_the_zone() -> None:
    w = window_of(START)
    assert w * WINDOW_S == START.timestamp()
    assert window_of(START + timedelta(seconds=29.999)) == w
    assert window_of(START + timedelta(seconds=30)) == w + 1
    assert window_of(START - timedelta(microseconds=1)) == w - 1
    assert window_of(START.astimezone(ZoneInfo("Asia/Makassar"))) == w
    assert next_change(START + timedelta(seconds=12)) == START + timedelta(seconds=30)
    with pytest.raises(ValueError, match="aware"):
        window_of(START.replace(tzinfo=None))


def test_a_code_counts_in_its_window_and_the_next_and_no_longer() -> None:
    code = code_at(KEY, "b1", START)
    args = (KEY, "b1", str(code.window), code.signature)
    assert check(*args, START) == code
    assert check(*args, START + timedelta(seconds=59.999)).window == code.window
    _refused("door-code-expired", args, START + timedelta(seconds=60))
    _refused("door-code-expired", args, START + timedelta(days=1))
    # one window early (another server's clock a moment behind) counts, two do not
    assert check(*args, START - timedelta(seconds=1)) == code
    _refused("door-code-expired", args, START - timedelta(seconds=31))


def test_a_code_of_another_building_key_or_window_is_forged() -> None:
    code = code_at(KEY, "b1", START)
    _refused("door-code-forged", (KEY, "b2", str(code.window), code.signature), START)
    _refused("door-code-forged", (b"x" * 32, "b1", str(code.window), code.signature), START)
    _refused("door-code-forged", (KEY, "b1", str(code.window - 1), code.signature), START)
    other_end = "B" if code.signature.endswith("A") else "A"
    changed = code.signature[:-1] + other_end
    _refused("door-code-forged", (KEY, "b1", str(code.window), changed), START)
    _refused("door-code-forged", (KEY, "b1", str(code.window), ""), START)
    _refused("door-code-forged", (KEY, "b1", str(code.window), "ü" * 22), START)
    # an old code's forged signature says forged, not expired: it never was ours
    _refused("door-code-forged", (KEY, "b1", str(code.window - 100), code.signature), START)


@pytest.mark.parametrize("window", ["", "-1", "1.5", "١٢", "9" * 13, "0x10"])
def test_an_unreadable_window_is_refused(window: str) -> None:
    _refused("door-code-unreadable", (KEY, "b1", window, "sig"), START)


def test_the_code_is_short_and_differs_by_building_and_window() -> None:
    a, b = code_at(KEY, "b1", START), code_at(KEY, "b2", START)
    later = code_at(KEY, "b1", START + timedelta(seconds=30))
    assert len(a.signature) == 22 and a.signature.isascii()
    assert len({a.signature, b.signature, later.signature}) == 3
    assert a.query() == f"b=b1&w={a.window}&s={a.signature}"
    assert a.starts == START

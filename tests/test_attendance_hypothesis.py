"""Properties of the attendance rules (hypothesis).

- The daily record never depends on the order of the signals nor on the zone their
  datetimes are expressed in.
- A policy file with one value of the wrong type, one unknown key or one required key
  removed fails with a PolicyError naming exactly that key.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ikn_core.attendance import (
    DailyRecord,
    Excuse,
    ExcuseKind,
    PlaceType,
    Policies,
    PolicyError,
    Signal,
    SignalKind,
    compute_day,
)

WITA = ZoneInfo("Asia/Makassar")
ZONES = [ZoneInfo(z) for z in ("UTC", "Asia/Jakarta", "America/New_York", "Pacific/Kiritimati")]
POLICIES = Policies.default()
NATIONAL = Path(__file__).resolve().parent.parent / "ikn_core/attendance/policies/national.toml"
# Thu 26 Nov .. Sat 28 Nov 2026 (a Friday in the middle), and a Ramadan Friday.
DAYS = [date(2026, 11, 26), date(2026, 11, 27), date(2026, 11, 28), date(2026, 3, 6)]
AGENCIES = ["OIKN", "KEMENKEU", None]


@st.composite
def signal(draw: st.DrawFn, day: date) -> Signal:
    local = datetime.combine(day, time(0), tzinfo=WITA)
    offset = draw(st.integers(min_value=-3 * 3600, max_value=27 * 3600))
    place = draw(st.sampled_from(PlaceType))
    agency = draw(st.sampled_from(AGENCIES)) if place is PlaceType.OFFICE else None
    return Signal(
        id=f"s{draw(st.integers(0, 10**6))}",
        kind=draw(st.sampled_from(SignalKind)),
        at=local + timedelta(seconds=offset),
        place=place,
        building_id=f"B-{agency}" if agency else None,
        building_agency=agency,
    )


@st.composite
def day_with_signals(draw: st.DrawFn) -> tuple[date, list[Signal]]:
    day = draw(st.sampled_from(DAYS))
    return day, draw(st.lists(signal(day), max_size=12))


@settings(max_examples=200, deadline=None)
@given(
    case=day_with_signals(),
    data=st.data(),
    excused=st.booleans(),
)
def test_order_and_zone_never_change_the_record(
    case: tuple[date, list[Signal]], data: st.DataObject, excused: bool
) -> None:
    day, signals = case
    policy = POLICIES.in_force(day)
    excuse = Excuse(day, ExcuseKind.DINAS_LUAR, id="e") if excused else None
    expected = compute_day(day, WITA, "OIKN", signals, policy=policy, excuse=excuse)
    shuffled = data.draw(st.permutations(signals))
    zones = data.draw(
        st.lists(st.sampled_from(ZONES), min_size=len(signals), max_size=len(signals))
    )
    moved = [
        Signal(s.id, s.kind, s.at.astimezone(z), s.place, s.building_id, s.building_agency)
        for s, z in zip(shuffled, zones, strict=True)
    ]
    again = compute_day(day, WITA, "OIKN", moved, policy=policy, excuse=excuse)
    assert again == expected
    assert again.as_json() == expected.as_json()
    assert DailyRecord.from_json(again.as_json()) == again
    assert again.minutes_worked >= 0 and again.late_minutes >= 0
    assert len(again.signals) <= len(signals)


# ---- policy files with one thing wrong ---------------------------------------------

# Keys that may be left out (everything else is required).
OPTIONAL = re.compile(
    r"(break_minutes_by_day(\.\w+)?|periods\[\d+\]\.name|bands\[\d+\]\.(sanction|max_days)"
    r"|corrections(\.late_signal_hours)?"
    r"|badge_readers(\.max_tokens_per_minute|\.opening_margin_minutes)?"
    r"|\.tpp|tpp\.\w+_bands\[\d+\]\.max_minutes)\Z"
)
WRONG = [True, "abc", -5, date(2026, 1, 1), time(7, 0), 2.5, [], {}]


def _leaves(node: Any, path: str) -> list[tuple[str, tuple[Any, ...]]]:
    """(dotted key, access path) of every value in the parsed file."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for name, value in items:
        key = f"{path}.{name}" if isinstance(name, str) else f"{path}[{name}]"
        key = key.lstrip(".")
        out.append((key, (name,)))
        if isinstance(value, dict | list):
            out.extend((k, (name, *p)) for k, p in _leaves(value, key))
    return out


def _emit(value: Any) -> str:
    """A TOML value (inline) for what tomllib gave."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float | date | time):
        return value.isoformat() if isinstance(value, date | time) else repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_emit(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_emit(v)}" for k, v in value.items()) + "}"


def _document() -> dict[str, Any]:
    return tomllib.loads(NATIONAL.read_text(encoding="utf-8"))


def _at(doc: Any, access: tuple[Any, ...]) -> tuple[Any, Any]:
    for step in access[:-1]:
        doc = doc[step]
    return doc, access[-1]


def _wrong_for(value: Any) -> list[Any]:
    def same_kind(bad: Any) -> bool:
        numeric = (int, float)
        if isinstance(value, bool) or isinstance(bad, bool):
            return isinstance(value, bool) and isinstance(bad, bool)
        if isinstance(value, numeric) and isinstance(bad, numeric):
            return True
        return type(bad) is type(value)

    return [bad for bad in WRONG if not same_kind(bad)]


def _parse_error(doc: dict[str, Any]) -> PolicyError:
    text = "\n".join(f"{json.dumps(k)} = {_emit(v)}" for k, v in doc.items())
    try:
        Policies.parse(text, "random.toml")
    except PolicyError as exc:
        return exc
    raise AssertionError("the broken file parsed")


LEAVES = _leaves(_document(), "")


@settings(max_examples=200, deadline=None)
@given(leaf=st.sampled_from(LEAVES), data=st.data())
def test_a_value_of_the_wrong_type_is_named(
    leaf: tuple[str, tuple[Any, ...]], data: st.DataObject
) -> None:
    key, access = leaf
    doc = _document()
    parent, name = _at(doc, access)
    parent[name] = data.draw(st.sampled_from(_wrong_for(parent[name])))
    error = _parse_error(doc)
    assert error.key == key, (error, parent[name])


@settings(max_examples=100, deadline=None)
@given(
    leaf=st.sampled_from(
        [(k, a) for k, a in LEAVES if "[" not in k.rsplit(".", 1)[-1] or k == "policy[0]"]
    ),
    extra=st.from_regex(r"\A[a-z]{3,10}\Z"),
)
def test_an_unknown_key_is_named(leaf: tuple[str, tuple[Any, ...]], extra: str) -> None:
    key, access = leaf
    doc = _document()
    parent, name = _at(doc, access)
    if not isinstance(parent[name], dict) or extra in parent[name]:
        return
    if key.endswith("break_minutes_by_day"):
        return  # its keys are day names: reported as "expected a day name"
    parent[name][extra] = 1
    assert _parse_error(doc).key == f"{key}.{extra}"


@settings(max_examples=100, deadline=None)
@given(leaf=st.sampled_from(LEAVES))
def test_a_missing_required_key_is_named(leaf: tuple[str, tuple[Any, ...]]) -> None:
    key, access = leaf
    doc = _document()
    parent, name = _at(doc, access)
    if not isinstance(name, str) or OPTIONAL.search(key):
        return
    del parent[name]
    error = _parse_error(doc)
    assert (error.key, error.detail.split(" ")[0]) == (key, "missing")

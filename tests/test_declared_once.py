"""Declared once (issue 17). Identifier patterns: ikn_core/contract/identifiers.py
declares each, and the contract, the JSON Schemas, the OpenAPI document and the SQL
CHECK constraints of a migrated database are read here and must state the same. The
default time zone: ikn_core.domain.IKN_TIME_ZONE, which the SQL defaults must match."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import yaml

from ikn_core import contract
from ikn_core.contract import payload
from ikn_core.contract.identifiers import (
    BADGE_PATTERN,
    ENROLLED_BADGE_PATTERN,
    ID_PATTERN,
    PERSON_ID_PATTERN,
    anchored,
)
from ikn_core.domain import IKN_TIME_ZONE

ROOT = Path(__file__).resolve().parent.parent
# What an identifier pattern looks like wherever it is written: a class of letters,
# digits, '_' and '-' (maybe '.' and '@') with a length.
IDENTIFIER = re.compile(r"\[A-Za-z0-9_[.@]*-\]\{")


def patterns(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every (JSON path, pattern) in a JSON Schema or OpenAPI document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield path, value
            else:
                yield from patterns(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from patterns(item, f"{path}/{i}")


def identifier_patterns(document: Any) -> dict[str, str]:
    return {path: p for path, p in patterns(document) if IDENTIFIER.search(p)}


def test_the_contract_uses_the_declared_patterns() -> None:
    assert contract.DEVICE_ID_PATTERN == ID_PATTERN
    assert payload.COMMAND_ID_PATTERN == ID_PATTERN
    assert re.fullmatch(BADGE_PATTERN, "b1:" + "x" * 43)  # an enrolled token is a badge


def test_the_json_schemas_state_the_declared_patterns() -> None:
    found = {
        f"{path.name}{where}": p
        for path in sorted((ROOT / "ikn_core" / "contract").glob("*.schema.json"))
        for where, p in identifier_patterns(json.loads(path.read_text(encoding="utf-8"))).items()
    }
    assert found == {
        "batch-v1.schema.json/$defs/badge_tap/properties/badge": anchored(BADGE_PATTERN),
        "batch-v1.schema.json/$defs/command_result/properties/command": anchored(ID_PATTERN),
        "down-v1.schema.json/$defs/id": anchored(ID_PATTERN),
    }


def test_the_openapi_document_states_the_declared_patterns() -> None:
    document = yaml.safe_load((ROOT / "api" / "openapi.yaml").read_text(encoding="utf-8"))
    assert identifier_patterns(document) == {
        "/components/schemas/Id": anchored(ID_PATTERN),
        "/components/schemas/PersonId": anchored(PERSON_ID_PATTERN),
    }


async def test_the_sql_checks_state_the_declared_patterns(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS def"
            " FROM pg_constraint WHERE contype = 'c'"
        )
    finally:
        await conn.close()
    found = {
        f"{row['tab']}.{column}": pattern
        for row in rows
        for column, pattern in re.findall(r"\((\w+) ~ '([^']*)'::text\)", row["def"])
        if IDENTIFIER.search(pattern)
    }
    assert found == {
        "devices.id": anchored(ID_PATTERN),
        "device_commands.id": anchored(ID_PATTERN),
        "sites.id": anchored(ID_PATTERN),
        "people.id": anchored(PERSON_ID_PATTERN),
        "badges.token": anchored(ENROLLED_BADGE_PATTERN),
    }


def spelt_again(what: re.Pattern[str], declared: Path) -> list[str]:
    """Lines of the project's Python modules, but ``declared``, that match ``what``."""
    return [
        f"{path.relative_to(ROOT)}:{n}"
        for top in ("ikn", "ikn_core", "ikn_store", "ingest", "api", "edge_agent", "firmware_sim")
        for path in sorted((ROOT / top).rglob("*.py"))
        if path != declared
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if what.search(line)
    ]


def test_no_python_module_spells_an_identifier_pattern_again() -> None:
    assert spelt_again(IDENTIFIER, ROOT / "ikn_core" / "contract" / "identifiers.py") == []


def test_no_python_module_names_the_default_time_zone_again() -> None:
    literal = re.compile(f"[\"']{re.escape(IKN_TIME_ZONE)}[\"']")
    assert spelt_again(literal, ROOT / "ikn_core" / "domain.py") == []


ZONE_LITERAL = r"'([A-Z][a-z]+/[A-Za-z_]+)'"


async def test_the_sql_defaults_name_the_declared_time_zone(database_url: str) -> None:
    """The column default of a building's zone, and the zone the SQL functions fall
    back on for a person without a building, are IKN_TIME_ZONE."""
    conn = await asyncpg.connect(database_url)
    try:
        default = await conn.fetchval(
            "SELECT column_default FROM information_schema.columns"
            " WHERE table_name = 'buildings' AND column_name = 'tz'"
        )
        sources = await conn.fetch(
            "SELECT proname, prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace"
        )
    finally:
        await conn.close()
    assert default == f"'{IKN_TIME_ZONE}'::text"
    zones = {
        (row["proname"], zone)
        for row in sources
        for zone in re.findall(ZONE_LITERAL, row["prosrc"])
    }
    assert zones, "no SQL function names a zone: nothing checked"
    assert {zone for _, zone in zones} == {IKN_TIME_ZONE}, zones

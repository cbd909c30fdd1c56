"""The ``building`` / ``floor`` / ``zone`` filters that the occupancy routes share."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from api.problems import Problem, invalid_parameter
from ikn_core.contract.identifiers import ID
from ikn_store.spaces import find_place

FILTERS = ("building", "floor", "zone")


def place_filters(request: web.Request) -> dict[str, str]:
    """The filters given, each a well-formed id; any other parameter is refused."""
    chosen = {}
    for name in FILTERS:
        value = request.query.get(name)
        if value is None:
            continue
        if not ID.fullmatch(value):
            raise invalid_parameter(name, "must be 1-64 letters, digits, '-' or '_'")
        chosen[name] = value
    unknown = sorted(set(request.query) - set(FILTERS))
    if unknown:
        raise invalid_parameter(unknown[0], f"unknown parameter; use {', '.join(FILTERS)}")
    return chosen


async def check_places(conn: asyncpg.Connection, filters: dict[str, str]) -> None:
    """404 naming the filter whose place does not exist."""
    for level, place_id in filters.items():
        if await find_place(conn, level, place_id) is None:
            raise Problem(
                404,
                "unknown-place",
                f"No such {level}",
                f"{level} {place_id!r}",
                invalid_params=[{"name": level, "reason": "does not exist"}],
            )

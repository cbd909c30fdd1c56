"""``GET /api/v1/occupancy/live``: every desk's live state under a building, floor or zone."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from api.auth import requires
from api.booking.places import check_places, place_filters
from api.state import POOL
from ikn_core.domain import DeskState, Role
from ikn_store.readings.rows import ZoneCount, zone_counts
from ikn_store.spaces import DeskLive, live_desks

routes = web.RouteTableDef()


def _desk_json(desk: DeskLive, now: datetime) -> dict[str, Any]:
    tz = ZoneInfo(desk.tz)
    state = (
        DeskState.UNKNOWN
        if desk.occupied is None
        else (DeskState.OCCUPIED if desk.occupied else DeskState.FREE)
    )
    out: dict[str, Any] = {
        "desk": desk.desk_id,
        "name": desk.name,
        "zone": desk.zone_id,
        "floor": desk.floor_id,
        "x": desk.x,
        "y": desk.y,
        "equipment": list(desk.equipment),
        "state": state,
        "sensor": desk.device_id,
    }
    if desk.since is not None and desk.reported_at is not None:
        out["since"] = desk.since.astimezone(tz).isoformat()
        out["reported_at"] = desk.reported_at.astimezone(tz).isoformat()
        out["age_s"] = round((now - desk.reported_at).total_seconds(), 1)
    return out


def _zone_json(count: ZoneCount, now: datetime) -> dict[str, Any]:
    return {
        "zone": count.zone_id,
        "floor": count.floor_id,
        "people": count.people,
        "sensor": count.device_id,
        "reported_at": count.reported_at.astimezone(ZoneInfo(count.tz)).isoformat(),
        "age_s": round((now - count.reported_at).total_seconds(), 1),
    }


@routes.get("/api/v1/occupancy/live")
@requires(Role.FACILITY_MANAGER, Role.ADMIN)
async def live(request: web.Request) -> web.Response:
    """Desks occupied / free / unknown under the given places, with the age of each fact."""
    filters = place_filters(request)
    async with request.app[POOL].acquire() as conn:
        await check_places(conn, filters)
        desks = await live_desks(conn, **filters)
        counts_of_zones = await zone_counts(conn, **filters)
    now = datetime.now(UTC)
    rendered = [_desk_json(d, now) for d in desks]
    counts = Counter(d["state"] for d in rendered)
    body = {
        "as_of": now.isoformat(),
        **filters,
        "summary": {state.value: counts[state] for state in DeskState},
        "desks": rendered,
        "zone_counts": [_zone_json(c, now) for c in counts_of_zones],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")

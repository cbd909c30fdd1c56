"""Personal data protection use cases shared by the JSON API and the pages: noting who
viewed whose attendance (the access log; a person viewing their own is not noted)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg

from ikn_store import access_log
from ikn_store.access_log import View, Viewer

__all__ = ["View", "Viewer", "note_views"]


async def note_views(
    conn: asyncpg.Connection, view: View, subjects: Iterable[str], now: datetime
) -> int:
    """Log that ``view.viewer`` was shown the attendance of ``subjects``; how many people
    that was, the viewer left out (their own is not noted)."""
    others = sorted({s for s in subjects if s != view.viewer.id})
    if not others:
        return 0
    return await access_log.record(conn, view, others, now)

"""Who viewed whose attendance (``attendance_access``, migration 0046): one row per
person shown, written by the routes and pages that show someone else's attendance, read
by that person (``GET /api/v1/me/access-log``, the My attendance page)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looked: a person (``id``), or a token of no one, by its name."""

    id: str | None
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class View:
    """What ``viewer`` was shown: ``what`` (unit_month, unit_csv, tpp, absences, day, requests) of
    ``period`` (YYYY-MM, YYYY or YYYY-MM-DD) through ``channel`` (api, web)."""

    viewer: Viewer
    what: str
    period: str
    channel: str


@dataclass(frozen=True, slots=True)
class Access:
    at: datetime
    viewer_id: str | None
    viewer_name: str
    viewer_role: str
    what: str  # unit_month, unit_csv, tpp, absences, day, requests
    period: str
    channel: str  # api, web

    def as_json(self) -> dict[str, str | None]:
        return {
            "at": self.at.isoformat(),
            "viewer": self.viewer_id,
            "viewer_name": self.viewer_name,
            "viewer_role": self.viewer_role,
            "what": self.what,
            "period": self.period,
            "channel": self.channel,
        }


async def record(
    conn: asyncpg.Connection, view: View, subjects: Sequence[str], at: datetime
) -> int:
    """One row per subject; how many."""
    status = await conn.execute(
        """INSERT INTO attendance_access
               (at, subject_id, viewer_id, viewer_name, viewer_role, what, period, channel)
           SELECT $1, s, $3, $4, $5, $6, $7, $8 FROM unnest($2::text[]) s""",
        at,
        list(subjects),
        view.viewer.id,
        view.viewer.name,
        view.viewer.role,
        view.what,
        view.period,
        view.channel,
    )
    return int(status.rsplit(" ", 1)[-1])


async def of_subject(conn: asyncpg.Connection, person_id: str, limit: int = 100) -> list[Access]:
    """Who viewed ``person_id``'s attendance, the newest first; the viewer's name as it is
    now when the viewer is still a person here."""
    rows = await conn.fetch(
        """SELECT a.at, a.viewer_id, coalesce(p.name, a.viewer_name) AS viewer_name,
                  a.viewer_role, a.what, a.period, a.channel
           FROM attendance_access a LEFT JOIN people p ON p.id = a.viewer_id
           WHERE a.subject_id = $1 ORDER BY a.at DESC, a.id DESC LIMIT $2""",
        person_id,
        limit,
    )
    return [Access(*r.values()) for r in rows]

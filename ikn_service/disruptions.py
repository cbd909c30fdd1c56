"""Outage grace (issue 20): the platform records its own degradation, a supervisor
excuses it for their unit in bulk, an administrator declares what it could not see.

- ``Recorder``: what one process (the API, the ingest) notices. Its heartbeat
  (``round``, every ``IKN_DISRUPTION_HEARTBEAT_S``) writes the time into
  ``platform_heartbeats``; a gap since the service's last beat longer than
  ``IKN_DISRUPTION_UNAVAILABLE_S`` is a window of all buildings, ``database_unavailable``
  when this process was running (it could not reach PostgreSQL), else
  ``<service>_unavailable`` (no process of the service ran). Windows the process noted
  meanwhile (``note``: the API's error rate, the ingest's lag) are written in the same
  round, or kept for the next when PostgreSQL does not answer.
- ``excuse``: a unit's supervisor excuses a window for the unit; the days it touches
  are recomputed and audited at once.
- ``declare``: an administrator's window, checked here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from ikn_core.attendance import Cause, Policies
from ikn_core.attendance.disruption import DisruptionNotFound, NotTheUnitsSupervisor
from ikn_core.domain import IKN_ZONE
from ikn_core.fields import InvalidField, parse_time
from ikn_core.settings import DisruptionSettings
from ikn_store.attendance import days as days_store
from ikn_store.attendance import disruptions as store
from ikn_store.errors import DATABASE_UNAVAILABLE
from ikn_store.people import Person, unit_people

log = logging.getLogger(__name__)

MAX_DECLARED = timedelta(days=31)  # the longest window an administrator declares at once


@dataclass(frozen=True, slots=True)
class Noted:
    """A window a process noticed, not written yet."""

    building_id: str | None
    start: datetime
    end: datetime
    cause: Cause
    detail: str


@dataclass(slots=True)
class Recorder:
    """The disruption windows one process of ``service`` (``api``, ``ingest``) notices."""

    service: str
    settings: DisruptionSettings
    pending: list[Noted] = field(default_factory=list)
    running: bool = False  # a beat of this process was written
    _unreachable: bool = False

    def note(self, window: Noted) -> None:
        """Keep ``window`` for the next round; one touching the last of its cause and
        building is merged into it."""
        for n, old in enumerate(self.pending):
            same = (old.building_id, old.cause) == (window.building_id, window.cause)
            if same and old.start <= window.end and window.start <= old.end:
                start, end = min(old.start, window.start), max(old.end, window.end)
                self.pending[n] = Noted(old.building_id, start, end, old.cause, old.detail)
                return
        self.pending.append(window)

    async def round(self, pool: asyncpg.Pool, now: datetime) -> list[store.Window]:
        """Beat, and write what was noted; what PostgreSQL refuses waits for the next."""
        try:
            async with pool.acquire() as conn, conn.transaction():
                written = await self._round(conn, now)
        except DATABASE_UNAVAILABLE as exc:
            if not self._unreachable:
                log.warning("%s heartbeat: PostgreSQL unavailable (%r)", self.service, exc)
            self._unreachable = True
            return []
        if self._unreachable:
            log.info("%s heartbeat: PostgreSQL answers again", self.service)
        self._unreachable = False
        for w in written:
            log.warning("disruption %d recorded: %s %s-%s", w.id, w.cause, w.start, w.end)
        return written

    async def _round(self, conn: asyncpg.Connection, now: datetime) -> list[store.Window]:
        before = await store.beat(conn, self.service, now)
        written = []
        gap = timedelta(seconds=self.settings.unavailable_s)
        if before is not None and now - before > gap:
            if self.running:
                cause, detail = Cause.DATABASE_UNAVAILABLE, f"{self.service} could not reach it"
            else:
                cause = Cause(f"{self.service}_unavailable")
                detail = f"no {self.service} process answered"
            self.note(Noted(None, before, now, cause, detail))
        for noted in self.pending:
            written.append(
                await store.record(
                    conn,
                    noted.building_id,
                    noted.start,
                    noted.end,
                    cause=noted.cause.value,
                    detail=noted.detail,
                    by=self.service,
                )
            )
        self.pending.clear()
        self.running = True
        return written


@dataclass(slots=True)
class ErrorCount:
    """An API process's answers in fixed windows of ``settings.error_window_s``: a window
    with at least ``error_min`` answers of which ``error_rate`` or more were server
    errors is noted on ``recorder`` as ``api_errors`` of all buildings when it ends."""

    recorder: Recorder
    started: datetime | None = None
    answers: int = 0
    errors: int = 0

    def count(self, now: datetime, server_error: bool) -> None:
        s = self.recorder.settings
        window = timedelta(seconds=s.error_window_s)
        if self.started is None or now - self.started >= window:
            self.close(now)
            self.started = now
        self.answers += 1
        self.errors += server_error

    def tick(self, now: datetime) -> None:
        """End the current window if its time is up (the heartbeat calls it)."""
        window = timedelta(seconds=self.recorder.settings.error_window_s)
        if self.started is not None and now - self.started >= window:
            self.close(now)

    def close(self, now: datetime) -> None:
        """End the current window (at ``now`` at the latest); noted when over the rate."""
        s = self.recorder.settings
        over = self.answers >= s.error_min and self.errors / self.answers >= s.error_rate
        if self.started is not None and over:
            end = min(now, self.started + timedelta(seconds=s.error_window_s))
            detail = f"{self.errors} of {self.answers} answers were server errors"
            self.recorder.note(Noted(None, self.started, end, Cause.API_ERRORS, detail))
        self.started, self.answers, self.errors = None, 0, 0


def ingest_lag(recorder: Recorder, committed: datetime, freshest: Mapping[str, datetime]) -> None:
    """Note an ``ingest_lag`` window for each building whose freshest reading of a batch
    (by the ingest's receipt) was stored more than ``ingest_lag_s`` after it."""
    limit = timedelta(seconds=recorder.settings.ingest_lag_s)
    for building, received in freshest.items():
        lag = committed - received
        if lag > limit:
            detail = f"readings stored {lag.total_seconds():.0f} s after receipt"
            recorder.note(Noted(building, received, committed, Cause.INGEST_LAG, detail))


# -- declare and excuse -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declare:
    building_id: str | None
    start: datetime
    end: datetime
    detail: str


def declaration(body: Mapping[str, Any], now: datetime) -> Declare:
    """An administrator's window from ``body`` (``building``: null for all, ``start``,
    ``end``, ``detail``), or ``InvalidField``: it has ended (by ``now``), ends after
    it starts, lasts at most 31 days."""
    building = body.get("building")
    if building is not None and (not isinstance(building, str) or not 1 <= len(building) <= 64):
        raise InvalidField("building", "a building id, or null for all", "building-format")
    start = parse_time("start", body.get("start"))
    end = parse_time("end", body.get("end"))
    if end <= start:
        raise InvalidField("end", "must be after start", "end-before-start")
    if end > now:
        raise InvalidField("end", "in the future: declare an outage that happened", "end-future")
    if end - start > MAX_DECLARED:
        raise InvalidField("end", "at most 31 days after start", "too-long")
    detail = body.get("detail")
    if not isinstance(detail, str) or not 1 <= len(detail.strip()) <= 1000:
        raise InvalidField("detail", "required: 1-1000 characters", "detail-required")
    return Declare(building, start, end, detail.strip())


async def declare(conn: asyncpg.Connection, cmd: Declare, by: str) -> store.Window:
    """Store the declared window (never merged); an unknown building: ``InvalidField``."""
    async with conn.transaction():
        if cmd.building_id is not None and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM buildings WHERE id = $1)", cmd.building_id
        ):
            raise InvalidField("building", "no such building", "building-unknown")
        return await store.record(
            conn,
            cmd.building_id,
            cmd.start,
            cmd.end,
            cause=Cause.DECLARED.value,
            detail=cmd.detail,
            by=by,
            merge=False,
        )


def window_days(window: store.Window) -> list[date]:
    """The local days a window may touch, in any of Indonesia's zones (a day each side)."""
    first = window.start.astimezone(IKN_ZONE).date() - timedelta(days=1)
    last = window.end.astimezone(IKN_ZONE).date() + timedelta(days=1)
    return [first + timedelta(n) for n in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Excused:
    window: store.Window
    agency: str
    unit: str
    excused_by: str
    excused_at: datetime
    new: bool
    days_changed: int


_AUDIT = """
INSERT INTO attendance_audit (actor, action, person_id, day, before, after)
SELECT $1, 'disruption_excused', q.person_id, q.day, q.before, q.after
FROM jsonb_to_recordset($2::jsonb) AS q(person_id text, day date, before jsonb, after jsonb)
"""


@dataclass(frozen=True, slots=True)
class ExcuseDisruption:
    """``supervisor`` excuses window ``disruption_id`` for ``agency``'s ``unit``."""

    disruption_id: int
    supervisor: Person
    agency: str
    unit: str


async def excuse(
    conn: asyncpg.Connection, cmd: ExcuseDisruption, policies: Policies, *, now: datetime
) -> Excused:
    """The supervisor (of the same agency and unit) excuses the window for the unit:
    the days of the unit's people it touches are recomputed, each changed one audited."""
    disruption_id, supervisor, agency, unit = (
        cmd.disruption_id,
        cmd.supervisor,
        cmd.agency,
        cmd.unit,
    )
    if (supervisor.agency, supervisor.unit) != (agency, unit):
        raise NotTheUnitsSupervisor("only a supervisor of the same agency and unit excuses")
    async with conn.transaction():
        window = await store.get(conn, disruption_id)
        touching = (
            []
            if window is None
            else await store.touching_unit(conn, agency, unit, window.start, window.end)
        )
        if window is None or all(t.window.id != disruption_id for t in touching):
            raise DisruptionNotFound(f"no disruption {disruption_id} touching the unit")
        at, new = await store.excuse(conn, disruption_id, agency, unit, supervisor.id)
        people = [p.id for p in await unit_people(conn, agency, unit)]
        days = window_days(window)
        before = await days_store.records(conn, policies, people, days, now)
        await days_store.mark_dirty(conn, people, days)  # dirty marks first, as apply does
        due = await days_store.person_days(conn, people, days)
        await days_store.store(conn, await days_store.compute(conn, policies, due))
        await conn.execute(
            "DELETE FROM attendance_dirty WHERE person_id = ANY($1::text[]) "
            "AND day = ANY($2::date[])",
            people,
            days,
        )
        after = await days_store.records(conn, policies, people, days, now)
        changes = [
            {"person_id": p, "day": d, "before": before[p, d].as_json(), "after": r.as_json()}
            for (p, d), r in sorted(after.items())
            if (p, d) in before and before[p, d] != r
        ]
        if changes:
            await conn.execute(_AUDIT, supervisor.id, changes)
    return Excused(window, agency, unit, supervisor.id, at, new, len(changes))


@dataclass(frozen=True, slots=True)
class Touching:
    """A window touching a unit, with the people whose days it marks."""

    unit_window: store.UnitWindow
    people: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        w = self.unit_window
        return {
            **w.window.as_json(),
            "people_affected": len(self.people),
            "people": list(self.people),
            "excused": w.excused_by is not None,
            "excused_by": w.excused_by,
            "excused_at": w.excused_at.isoformat() if w.excused_at else None,
        }


def local_bounds(days: list[date]) -> tuple[datetime, datetime]:
    """From the first of ``days`` to the end of the last, IKN's local days."""
    start = datetime.combine(min(days), datetime.min.time(), tzinfo=IKN_ZONE)
    return start, datetime.combine(max(days) + timedelta(days=1), datetime.min.time(), IKN_ZONE)


async def of_unit(
    conn: asyncpg.Connection,
    policies: Policies,
    agency: str,
    unit: str,
    days: list[date],
    *,
    now: datetime,
) -> list[Touching]:
    """The windows touching the unit on ``days`` (IKN's local days), each with the
    unit's people whose lateness or early departure it marks."""
    if not days:
        return []
    windows = await store.touching_unit(conn, agency, unit, *local_bounds(days))
    if not windows:
        return []
    people = [p.id for p in await unit_people(conn, agency, unit)]
    span = sorted({d for w in windows for d in window_days(w.window)})
    found = await days_store.records(conn, policies, people, span, now)
    out = []
    for w in windows:
        mark = f"d{w.window.id}"
        hit = sorted({p for (p, _), r in found.items() if mark in r.system_disruption})
        out.append(Touching(w, tuple(hit)))
    return out

"""Desk displays: each change of a desk's live state or bookings goes to its sensor's
``down`` topic.

A ``DisplayFeed`` holds one PostgreSQL connection that LISTENs on ``ikn_desk_events``
(the trigger ``desk_state_events`` on ``desk_state`` notifies each new event at commit)
and on ``ikn_booking_changes`` (the triggers ``bookings_display_notify`` and
``bookings_display_notify_inserted``: a booking of the coming day created, cancelled,
checked in or out, released or deleted notifies its desk at commit).
For each it works out what the desk's display shows now, in the building's
zone, and publishes a contract ``display`` command (QoS 1) to the desk sensor:

- ``occupied`` (with ``until`` the end of the booking in force, if any);
- ``booked`` until the end of the booking in force, when nobody sits there;
- ``free``, with ``until`` the start of the next booking today, if any.

Only one ingest replica feeds the displays: the listener holds a PostgreSQL
advisory lock, and the others wait to take over when its connection goes. Pending
events and desks are bounded (``PENDING_MAX`` each, oldest dropped and counted); a
display takes the newest ``ts``, so a dropped older state is never missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from ikn_core.contract import DisplayCommand, down_topic, encode_down
from ikn_core.contract.down import DisplayState
from ikn_store.fleet.devices import DeskEvent, desk_events_by_id
from ikn_store.listen import Listener

log = logging.getLogger(__name__)

CHANNEL = "ikn_desk_events"
BOOKING_CHANNEL = "ikn_booking_changes"  # payload: the desk id
LOCK_KEY = 0x494B4E_0D15  # pg advisory lock: one display feeder per database
PENDING_MAX = 10_000
RETRY_S = 2.0
APPLICATION_NAME = "ikn-display-feed"  # its connection in pg_stat_activity
_BOOKINGS = """
SELECT (SELECT upper(period) FROM bookings
        WHERE desk_id = $1 AND booking_active(status) AND period @> $2::timestamptz) AS current_end,
       (SELECT min(lower(period)) FROM bookings
        WHERE desk_id = $1 AND booking_active(status) AND lower(period) > $2 AND lower(period) < $3)
       AS next_start
"""

# A desk's live state now, for a booking change (no desk event): its sensor, occupied
# or not (free when the sensor never reported), and its building's zone.
_DESKS_NOW = """
SELECT d.id AS desk_id, coalesce(s.device_id, sensor.id) AS device_id,
       coalesce(s.occupied, false) AS occupied, b.tz
FROM desks d
JOIN zones z ON z.id = d.zone_id
JOIN floors f ON f.id = z.floor_id
JOIN buildings b ON b.id = f.building_id
LEFT JOIN desk_state s ON s.desk_id = d.id
LEFT JOIN LATERAL (SELECT v.id FROM devices v
                   WHERE v.desk_id = d.id AND v.kind = 'desk_sensor' AND v.enabled
                   ORDER BY v.id LIMIT 1) sensor ON true
WHERE d.id = ANY($1::text[])
"""

Publish = Callable[[str, bytes], None]


@dataclass(frozen=True, slots=True)
class DeskNow:
    """What a display needs of a desk: its sensor, whether it is in use, its zone."""

    desk_id: str
    device_id: str
    occupied: bool
    tz: str


def display_for(
    desk: DeskEvent | DeskNow,
    now: datetime,
    current_end: datetime | None,
    next_start: datetime | None,
) -> DisplayCommand:
    """What the desk's display shows at ``now`` (times in the building's zone)."""
    tz = ZoneInfo(desk.tz)

    def hhmm(t: datetime | None) -> str | None:
        return None if t is None else t.astimezone(tz).strftime("%H:%M")

    state: DisplayState = "free"
    until = hhmm(next_start)
    if desk.occupied:
        state, until = "occupied", hhmm(current_end)
    elif current_end is not None:
        state, until = "booked", hhmm(current_end)
    ts = int(now.timestamp() * 1000)
    name = f"desk-event-{desk.id}" if isinstance(desk, DeskEvent) else f"desk-booking-{ts}"
    return DisplayCommand(id=name, ts=ts, state=state, until=until)


def _end_of_local_day(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


class DisplayFeed:
    """LISTENs for desk events and publishes display states; run it in a TaskGroup."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, publish: Publish) -> None:
        self._dsn = dsn
        self._pool = pool
        self._publish = publish
        self._pending: deque[int] = deque(maxlen=PENDING_MAX)
        self._desks: dict[str, None] = {}  # desks whose bookings changed, oldest first
        self.published = 0
        self.dropped = 0
        self.leading = False
        channels = {CHANNEL: self._notified, BOOKING_CHANNEL: self._booking_changed}
        self._listener = Listener(dsn, channels, application_name=APPLICATION_NAME)

    async def run(self, stop: asyncio.Event) -> None:
        await self._listener.run(
            stop,
            self._listen_once,
            retry_s=(RETRY_S,),
            message="desk display feed lost (%s); retrying in %.0f s",
            after=self._follow,
        )

    def _follow(self) -> None:
        self.leading = False

    async def _listen_once(self, stop: asyncio.Event) -> None:
        async with self._listener.connect(stop) as session:
            if not await session.conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                return  # another replica feeds the displays; try again later
            self.leading = True
            await session.listen()
            log.info("feeding desk displays from %s and %s", CHANNEL, BOOKING_CHANNEL)
            while not session.done:
                await session.wait()
                await self._dispatch()

    def terminate(self) -> None:
        """Cut the listening connection at once (a stop that cannot wait for the
        database); ``run`` then ends if its ``stop`` is set."""
        self._listener.terminate()

    def _notified(self, payload: str) -> None:
        if len(self._pending) == PENDING_MAX:
            self.dropped += 1
        self._pending.append(int(payload))

    def _booking_changed(self, payload: str) -> None:
        self._desks.pop(payload, None)
        if len(self._desks) == PENDING_MAX:
            self.dropped += 1
            del self._desks[next(iter(self._desks))]
        self._desks[payload] = None

    async def _dispatch(self) -> None:
        ids, desks = list(self._pending), list(self._desks)
        self._pending.clear()
        self._desks.clear()
        if not (ids or desks):
            return
        async with self._pool.acquire(timeout=10) as conn:
            events = await desk_events_by_id(conn, ids) if ids else []
            newest: dict[str, DeskEvent | DeskNow] = {e.desk_id: e for e in events}  # last wins
            if missing := [d for d in desks if d not in newest]:
                rows = await conn.fetch(_DESKS_NOW, missing)
                newest.update({r["desk_id"]: DeskNow(**dict(r)) for r in rows if r["device_id"]})
            for desk in newest.values():
                await self._show(conn, desk)

    async def _show(self, conn: asyncpg.Connection, desk: DeskEvent | DeskNow) -> None:
        now = datetime.now(UTC)
        row = await conn.fetchrow(_BOOKINGS, desk.desk_id, now, _end_of_local_day(now, desk.tz))
        display = display_for(desk, now, row["current_end"], row["next_start"])
        self._publish(down_topic(desk.device_id), encode_down(display))
        self.published += 1

"""A person's bookings as an iCalendar feed (RFC 5545, times in UTC): what the API's
``/api/v1/bookings.ics``, the page's ``/bookings.ics`` and the person's secret calendar
address ``/feeds/bookings/<secret>.ics`` all serve."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg

from ikn_store.booking.bookings import Booking, list_bookings


def ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """RFC 5545 §3.1: lines of at most 75 octets, continued after CRLF and a space."""
    data = line.encode()
    if len(data) <= 75:
        return line
    parts: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _ics_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(person_id: str, found: Iterable[Booking], now: datetime) -> str:
    """The feed of ``found``, the bookings of ``person_id``, stamped ``now``."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//IKN Workspace//Desk bookings//EN",
        "CALSCALE:GREGORIAN",
        f"X-WR-CALNAME:{ics_text('Desk bookings of ' + person_id)}",
    ]
    for b in found:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{b.id}@ikn-workspace",
            f"DTSTAMP:{_ics_time(now)}",
            f"DTSTART:{_ics_time(b.start)}",
            f"DTEND:{_ics_time(b.end)}",
            f"SUMMARY:{ics_text('Desk ' + b.desk_id)}",
            f"LOCATION:{ics_text(b.desk_id)}",
            "STATUS:CONFIRMED",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(ics_fold(line) + "\r\n" for line in lines)


async def feed_of(conn: asyncpg.Connection, person_id: str, now: datetime) -> str:
    """The feed of ``person_id``'s bookings that have not ended at ``now``."""
    return calendar(person_id, await list_bookings(conn, person_id, since=now), now)

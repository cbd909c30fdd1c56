"""A desk's live state on the facility managers' floor map: the booking in force now
crossed with what its sensor sees (docs/web.md, "The live floor map").

One rule, here, for the page, its live stream and anyone else: the browser only shows
the state it is sent.

=============  =========================================================================
disabled       the desk is out of use (whatever else is true)
offline        its sensor is offline: what it last said is no longer a fact
assigned       the desk is assigned to one person: whether it is booked or occupied
               would tell that person's presence (UU 27/2022), so it is not shown
ghost          booked or checked in, and the sensor has seen nobody for ``GHOST_AFTER``
               since the later of the booking's start and the sensor's last change
occupied       booked or checked in, and the sensor sees someone
checked_in     checked in (no sensor, no reading yet, or empty for less than GHOST_AFTER)
booked         booked, not checked in (likewise)
unbooked_use   no booking now, and the sensor sees someone
free           no booking now, and nobody seen (or no sensor to say)
=============  =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from ikn_core.booking import RELEASE_AFTER

# A booked desk empty this long is a ghost: as long as a booking may wait for its
# check-in before the no-show release frees it.
GHOST_AFTER = RELEASE_AFTER


class LiveState(StrEnum):
    FREE = "free"
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    OCCUPIED = "occupied"
    GHOST = "ghost"
    UNBOOKED_USE = "unbooked_use"
    OFFLINE = "offline"
    DISABLED = "disabled"
    ASSIGNED = "assigned"


@dataclass(frozen=True, slots=True)
class DeskFacts:
    """What is known of a desk now. ``occupied``/``since``: its sensor's state and when
    it last changed (None: no sensor, or none reported); ``sensor_online``: the
    sensor's health (None: no sensor or no status); ``booking``: the status of the
    active booking whose period covers now (``booked``, ``checked_in``) and its start;
    ``assigned``: the desk is assigned to one person."""

    disabled: bool = False
    assigned: bool = False
    sensor_online: bool | None = None
    occupied: bool | None = None
    since: datetime | None = None
    booking: str | None = None
    booking_start: datetime | None = None


def live_state(facts: DeskFacts, now: datetime) -> LiveState:
    """The desk's state now (the table of the module's docstring)."""
    if facts.disabled:
        return LiveState.DISABLED
    if facts.sensor_online is False:
        return LiveState.OFFLINE
    if facts.assigned:
        return LiveState.ASSIGNED
    if facts.booking is None:
        return LiveState.UNBOOKED_USE if facts.occupied else LiveState.FREE
    if facts.occupied:
        return LiveState.OCCUPIED
    if facts.occupied is False and facts.since is not None:
        empty_from = max(facts.since, facts.booking_start or facts.since)
        if now - empty_from >= GHOST_AFTER:
            return LiveState.GHOST
    return LiveState.CHECKED_IN if facts.booking == "checked_in" else LiveState.BOOKED


class DeskSign(StrEnum):
    """What a desk's own display says (issue 19): the live state in three words a
    passer-by needs, plus out of use. Who booked is never part of it."""

    FREE = "free"  # nobody booked it now, nobody seen (until the next booking, if today)
    BOOKED = "booked"  # booked or checked in now, nobody seen: until the booking's end
    OCCUPIED = "occupied"  # someone is there (booked or not)
    OUT_OF_USE = "out_of_use"
    ASSIGNED = "assigned"  # one person's desk: whether they are there is not told


def desk_sign(facts: DeskFacts, now: datetime) -> DeskSign:
    """The sign of ``live_state``: a ghost is still booked (the no-show release frees
    it), an offline sensor leaves the booking to tell (free or booked), and an
    assigned desk says so only (its person's presence is theirs, UU 27/2022)."""
    state = live_state(facts, now)
    if state is LiveState.DISABLED:
        return DeskSign.OUT_OF_USE
    if state is LiveState.ASSIGNED:
        return DeskSign.ASSIGNED
    if state in (LiveState.OCCUPIED, LiveState.UNBOOKED_USE):
        return DeskSign.OCCUPIED
    if state is LiveState.FREE or (state is LiveState.OFFLINE and facts.booking is None):
        return DeskSign.FREE
    return DeskSign.BOOKED

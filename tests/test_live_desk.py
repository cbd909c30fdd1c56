"""The live floor map's rule (ikn_core.live_desk): a desk's state from its booking now
and what its sensor sees, every row of the module's table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ikn_core.live_desk import GHOST_AFTER, DeskFacts, LiveState, live_state

NOW = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
START = NOW - timedelta(hours=1)  # the booking's start
LONG_EMPTY = NOW - GHOST_AFTER  # empty exactly GHOST_AFTER
JUST_EMPTY = NOW - GHOST_AFTER + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("facts", "state"),
    [
        (DeskFacts(disabled=True, occupied=True, booking="booked"), LiveState.DISABLED),
        (DeskFacts(sensor_online=False, occupied=True, booking="booked"), LiveState.OFFLINE),
        # assigned to one person: neither its booking nor its sensor is shown
        (DeskFacts(assigned=True, occupied=True, booking="checked_in"), LiveState.ASSIGNED),
        (DeskFacts(assigned=True), LiveState.ASSIGNED),
        (DeskFacts(assigned=True, sensor_online=False, occupied=True), LiveState.OFFLINE),
        (DeskFacts(assigned=True, disabled=True), LiveState.DISABLED),
        (DeskFacts(), LiveState.FREE),
        (DeskFacts(sensor_online=True, occupied=False, since=START), LiveState.FREE),
        (DeskFacts(sensor_online=True, occupied=True, since=START), LiveState.UNBOOKED_USE),
        (DeskFacts(occupied=True, since=NOW, booking="booked"), LiveState.OCCUPIED),
        (DeskFacts(occupied=True, since=NOW, booking="checked_in"), LiveState.OCCUPIED),
        (DeskFacts(booking="booked", booking_start=START), LiveState.BOOKED),
        (DeskFacts(booking="checked_in", booking_start=START), LiveState.CHECKED_IN),
        (
            DeskFacts(occupied=False, since=JUST_EMPTY, booking="checked_in", booking_start=START),
            LiveState.CHECKED_IN,
        ),
        (
            DeskFacts(occupied=False, since=LONG_EMPTY, booking="checked_in", booking_start=START),
            LiveState.GHOST,
        ),
        (
            DeskFacts(occupied=False, since=START, booking="booked", booking_start=START),
            LiveState.GHOST,
        ),
        # empty since long before a booking that began just now: not a ghost yet
        (
            DeskFacts(
                occupied=False, since=NOW - timedelta(days=1), booking="booked", booking_start=NOW
            ),
            LiveState.BOOKED,
        ),
    ],
)
def test_the_state_of_a_desk(facts: DeskFacts, state: LiveState) -> None:
    assert live_state(facts, NOW) is state

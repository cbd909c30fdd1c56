"""Words for the domain's values, marked for the catalogues and translated where shown."""

from __future__ import annotations

from ikn_core.attendance import WorkMode
from ikn_core.booking import BookingStatus
from ikn_core.domain import Role
from web.i18n import gettext_noop

ROLES = {
    Role.EMPLOYEE: gettext_noop("Employee"),
    Role.DELEGATE: gettext_noop("Delegate"),
    Role.SUPERVISOR: gettext_noop("Supervisor"),
    Role.FACILITY_MANAGER: gettext_noop("Facility manager"),
    Role.ADMIN: gettext_noop("Administrator"),
}
MODES = {
    WorkMode.WFO: gettext_noop("Working in the office"),
    WorkMode.WFO_OTHER: gettext_noop("Working in another agency's office"),
    WorkMode.WFA: gettext_noop("Working remotely"),
    WorkMode.ABSENT: gettext_noop("Absent"),
    WorkMode.EXCUSED: gettext_noop("On leave or official travel"),
    WorkMode.NON_WORKING_DAY: gettext_noop("Not a working day"),
    WorkMode.NOT_YET: gettext_noop("Not clocked in yet"),
    WorkMode.NOT_COUNTED: gettext_noop("Not counted"),
}
BOOKING_STATUSES = {
    BookingStatus.BOOKED: gettext_noop("Booked"),
    BookingStatus.CHECKED_IN: gettext_noop("Checked in"),
    BookingStatus.CHECKED_OUT: gettext_noop("Checked out"),
    BookingStatus.CANCELLED: gettext_noop("Cancelled"),
    BookingStatus.RELEASED: gettext_noop("Released"),
}
# Why a booking action was refused: by the service error's ``kind`` (its stable problem
# type in the API, api.booking.http.TITLES), never naming who holds a desk.
BOOKING_REFUSALS = {
    "desk-taken": gettext_noop("The desk is already booked for this time."),
    "person-already-booked": gettext_noop("You already have a booking at this time."),
    "outside-allowed-hours": gettext_noop("Outside the hours when desks can be booked."),
    "too-far-ahead": gettext_noop("Too far ahead to book."),
    "in-the-past": gettext_noop("The booking would start in the past."),
    "too-short": gettext_noop("The booking would be too short."),
    "too-long": gettext_noop("The booking would be too long."),
    "end-before-start": gettext_noop("The end is not after the start."),
    "unknown-desk": gettext_noop("There is no such desk."),
    "booking-not-found": gettext_noop("There is no such booking among yours."),
    "booking-not-active": gettext_noop("The booking was cancelled or released."),
    "outside-check-in-window": gettext_noop(
        "Check-in is open from 15 minutes before the start until the end of the booking."
    ),
    "not-checked-in": gettext_noop("The booking is not checked in; cancel it instead."),
    "zone-restricted": gettext_noop("This zone is reserved for other agencies or units."),
    "desk-disabled": gettext_noop("This desk is out of use."),
    "desk-assigned": gettext_noop("This desk is assigned permanently to someone else."),
    "cancel-cut-off": gettext_noop("Too late to cancel this booking; ask a facility manager."),
    "booking-contended": gettext_noop("Many people are booking this desk right now; try again."),
}
# Why a form queued offline was refused: its phone's time (ikn_core.attendance.sent).
SENT_REFUSALS = {
    "sent-in-future": gettext_noop(
        "Not recorded: the phone's clock is ahead of the right time. Set the phone's "
        "clock to the network time and try again."
    ),
    "sent-too-long-ago": gettext_noop(
        "Not recorded: it waited on the phone too long to count. Ask for a correction "
        "of your attendance instead."
    ),
    "sent-time-unreadable": gettext_noop("Not recorded: the phone's time could not be read."),
}
BOOKING_REFUSED = gettext_noop("This could not be done now; try again later.")  # any other
# What a booking action did: ``?done=`` of the page it redirects to.
BOOKING_DONE = {
    "cancelled": gettext_noop("The booking is cancelled."),
    "cancelled-following": gettext_noop(
        "The booking and the later ones of its series are cancelled."
    ),
    "checked-in": gettext_noop("You are checked in."),
    "checked-out": gettext_noop("You are checked out; the desk is free again."),
}

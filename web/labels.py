"""Words for the domain's values, marked for the catalogues and translated where shown."""

from __future__ import annotations

from ikn_core.attendance import WorkMode
from ikn_core.attendance.requests import (
    NotHappenedYet,
    NotYourUnit,
    OwnRequest,
    RequestDecided,
    RequestError,
    RequestNotFound,
)
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
# My unit (web/unit.py): requests, their decisions, the PP 94/2021 levels.
REQUEST_KINDS = {
    "cuti": gettext_noop("Leave"),
    "dinas_luar": gettext_noop("Official travel"),
    "correction": gettext_noop("Attendance correction"),
}
DECISIONS_DONE = {
    "approved": gettext_noop("The request is approved."),
    "rejected": gettext_noop("The request is rejected."),
}
DECISION_ERRORS: dict[type[RequestError], str] = {
    OwnRequest: gettext_noop(
        "You cannot decide your own request: another supervisor of your unit decides it."
    ),
    NotYourUnit: gettext_noop(
        "This request is of another unit: only a supervisor of its person's unit decides it."
    ),
    RequestDecided: gettext_noop("This request was decided already."),
    NotHappenedYet: gettext_noop("A correction can be approved only once its day has begun."),
    RequestNotFound: gettext_noop("There is no such request."),
    RequestError: gettext_noop("This request cannot be decided."),
}
# The levels of the national policy (ikn_core/attendance/policies/national.toml); a
# policy's own level is shown by its code.
ABSENCE_LEVELS = {
    "teguran_lisan": gettext_noop("Verbal reprimand"),
    "teguran_tertulis": gettext_noop("Written reprimand"),
    "pernyataan_tidak_puas": gettext_noop("Written statement of dissatisfaction"),
    "hukuman_sedang": gettext_noop("Moderate disciplinary penalty"),
    "hukuman_berat": gettext_noop("Severe disciplinary penalty"),
    "pemberhentian": gettext_noop("Dismissal"),
}

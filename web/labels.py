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

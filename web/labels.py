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
# What someone else was shown of a person's attendance (the access log's ``what``).
ACCESS_KINDS = {
    "unit_month": gettext_noop("The unit's month"),
    "unit_csv": gettext_noop("The unit's month, downloaded (CSV)"),
    "tpp": gettext_noop("The unit's TPP attendance export"),
    "absences": gettext_noop("The year's absences"),
    "day": gettext_noop("One day in detail"),
    "requests": gettext_noop("The unit's requests (leave, travel, corrections)"),
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
    "not-your-delegation": gettext_noop(
        "You may book only for yourself, or as a delegate for colleagues of your unit."
    ),
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
FEED_MADE = gettext_noop(
    "Your calendar address is made. Copy it now: it is shown only this once. An address "
    "made before no longer works."
)
BOOKING_DONE = {
    "booked": gettext_noop("The desk is booked."),
    "series": gettext_noop("The series is booked: every time is listed below."),
    "series-partly": gettext_noop(
        "Part of the series is booked: the times the rules refused (a desk taken, a day "
        "closed) are not; the booked ones are listed below."
    ),
    "cancelled": gettext_noop("The booking is cancelled."),
    "cancelled-following": gettext_noop(
        "The booking and the later ones of its series are cancelled."
    ),
    "checked-in": gettext_noop("You are checked in."),
    "checked-out": gettext_noop("You are checked out; the desk is free again."),
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
    "excused": gettext_noop(
        "The disruption is excused for your unit: the lateness inside it no longer counts."
    ),
}
# What disrupted the platform (ikn_core.attendance.disruption.Cause).
DISRUPTION_CAUSES = {
    "database_unavailable": gettext_noop("the database was unavailable"),
    "api_unavailable": gettext_noop("the server was unavailable"),
    "ingest_unavailable": gettext_noop("the badge and sensor intake was unavailable"),
    "api_errors": gettext_noop("the server answered with errors"),
    "ingest_lag": gettext_noop("badge and sensor data arrived late"),
    "declared": gettext_noop("declared by an administrator"),
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
# A desk's state on the Find-a-desk page: ikn_service.booking.desk_state's, ``mine``
# (the person's own booking) and ``free`` (for a desk assigned to them).
DESK_STATES = {
    "free": gettext_noop("free"),
    "mine": gettext_noop("your booking"),
    "booked": gettext_noop("booked"),
    "occupied": gettext_noop("occupied now"),
    "assigned": gettext_noop("assigned to someone"),
    "offline": gettext_noop("free (sensor offline)"),
    "disabled": gettext_noop("out of use"),
}
# A desk's state on the live floor map (ikn_core.live_desk.LiveState).
LIVE_STATES = {
    "free": gettext_noop("free"),
    "booked": gettext_noop("booked, not checked in"),
    "checked_in": gettext_noop("checked in"),
    "occupied": gettext_noop("booked and occupied"),
    "ghost": gettext_noop("ghost: booked, nobody there"),
    "unbooked_use": gettext_noop("in use without a booking"),
    "offline": gettext_noop("sensor offline"),
    "disabled": gettext_noop("out of use"),
    "assigned": gettext_noop("assigned to one person (not shown)"),
}
# A day of My attendance's calendar: (its short word in the cell, what it means;
# no word: a dash, or nothing on a day still to come).
DAY_STATES = {
    "wfo": (gettext_noop("WFO"), gettext_noop("Working in the office")),
    "wfo_other": (gettext_noop("WFO+"), gettext_noop("Working in another agency's office")),
    "wfa": (gettext_noop("WFA"), gettext_noop("Working remotely")),
    "cuti": (gettext_noop("Leave"), gettext_noop("On leave (cuti)")),
    "dinas_luar": (gettext_noop("Travel"), gettext_noop("On official travel (dinas luar)")),
    "absent": (gettext_noop("No-show"), gettext_noop("Absent without an excuse")),
    "non_working_day": (gettext_noop("Off"), gettext_noop("Weekend or holiday")),
    "not_counted": ("", gettext_noop("Not counted (yet)")),
    "future": ("", gettext_noop("Still to come")),
}
# A desk's own display (ikn_core.live_desk.DeskSign), in large type.
DESK_SIGNS = {
    "free": gettext_noop("Free"),
    "booked": gettext_noop("Booked"),
    "occupied": gettext_noop("Occupied"),
    "out_of_use": gettext_noop("Out of use"),
    "assigned": gettext_noop("Assigned"),
}
SIGNAL_KINDS = {
    "badge_in": gettext_noop("Badge tap in"),
    "badge_out": gettext_noop("Badge tap out"),
    "desk_occupied": gettext_noop("Desk sensor"),
    "booking_check_in": gettext_noop("Desk check-in"),
    "door_qr": gettext_noop("Door code scanned"),
    "app_check_in": gettext_noop("Clock-in from the app"),
    "app_check_out": gettext_noop("Clock-out from the app"),
    "correction_in": gettext_noop("Approved correction of the clock-in"),
    "correction_out": gettext_noop("Approved correction of the clock-out"),
}
PLACES = {
    "office": gettext_noop("In the office"),
    "other_office": gettext_noop("At another agency's office"),
    "home": gettext_noop("At home"),
    "field": gettext_noop("In the field"),
}
# The places a remote clocking declares, in the form's order.
REMOTE_PLACES = ("home", "field", "other_office", "office")
# Why a clocking was refused.
CLOCK_REFUSALS = {
    "outside-geofence": gettext_noop(
        "Your location is not within any office building's area. Choose where you "
        "work instead, or tap your badge at the office."
    ),
    "needs-location": gettext_noop(
        "Clocking in at the office needs your location: tick the box to share it."
    ),
    "bad-location": gettext_noop("The location could not be read; try again."),
    "bad-place": gettext_noop("Choose where you are working."),
    "bad-action": gettext_noop("Choose clock in or clock out."),
}
CLOCK_DONE = {
    "clocked-in": gettext_noop("You are clocked in."),
    "clocked-in-over-cap": gettext_noop(
        "You are clocked in. Working remotely today is over your agency's weekly cap: it is "
        "recorded, and your supervisor sees it."
    ),
    "clocked-out": gettext_noop("You are clocked out."),
}
REQUEST_STATUSES = {
    "pending": gettext_noop("Pending"),
    "approved": gettext_noop("Approved"),
    "rejected": gettext_noop("Rejected"),
}
# The request form's fields: their labels, also naming them in the form's error summary.
REQUEST_FIELDS = {
    "kind": gettext_noop("What do you ask for?"),
    "from": gettext_noop("First day (or the day corrected)"),
    "to": gettext_noop("Last day (leave and travel; empty: one day)"),
    "clock_in": gettext_noop("Corrected clock-in"),
    "clock_out": gettext_noop("Corrected clock-out"),
    "reason": gettext_noop("Reason"),
}
# What is wrong with a request's field: by ``ikn_core.fields.InvalidField.code``.
REQUEST_FIELD_ERRORS = {
    "kind-required": gettext_noop("Choose leave, official travel or a correction."),
    "day-required": gettext_noop("Enter the date."),
    "day-format": gettext_noop("Enter the date as YYYY-MM-DD."),
    "year-range": gettext_noop("The date must fall between 2000 and 2100."),
    "to-range": gettext_noop("The last day must be on or after the first, at most a year later."),
    "reason-required": gettext_noop("Give a reason (at most 1000 characters)."),
    "times-not-asked": gettext_noop("Only a correction gives clock times; leave them empty."),
    "evidence-not-asked": gettext_noop("Only a correction cites signals."),
    "evidence-format": gettext_noop("Cite signals by their ids, such as s17."),
    "correction-not-begun": gettext_noop(
        "A correction is of a day that has begun: today or before."
    ),
    "correction-one-day": gettext_noop("A correction is for one day: leave the last day empty."),
    "correction-empty": gettext_noop("Give the corrected clock-in, clock-out or both."),
    "time-required": gettext_noop("Enter the time."),
    "time-format": gettext_noop("Enter the time as HH:MM, for example 07:30."),
    "time-offset": gettext_noop("Enter the time as HH:MM, for example 07:30."),
    "time-other-day": gettext_noop("The time must fall on the day corrected."),
    "time-future": gettext_noop("This time is still to come: a correction records what happened."),
    "out-before-in": gettext_noop("The clock-out must be after the clock-in."),
}
REQUEST_INVALID = gettext_noop("This value cannot be used.")  # any other code
REQUEST_DONE = {"filed": gettext_noop("Your request is filed; your supervisor decides it.")}
# A device's state on the fleet page (ikn_service.fleet.device_state).
DEVICE_STATES = {
    "online": gettext_noop("online"),
    "offline": gettext_noop("offline"),
    "unknown": gettext_noop("no status yet"),
    "disabled": gettext_noop("disabled"),
}
# A device's alerts (ikn_store.fleet.devices.ALERTS), in the order the page lists them.
DEVICE_ALERTS = {
    "never-seen": gettext_noop("never seen"),
    "offline": gettext_noop("offline past its interval"),
    "clock-not-synced": gettext_noop("clock not synchronised"),
    "clock-drift": gettext_noop("clock drifts"),
    "flooding": gettext_noop("sends too much"),
    "battery-low": gettext_noop("battery low"),
    "no-credentials": gettext_noop("no MQTT credentials"),
    "implausible-tap-rate": gettext_noop("implausible badge taps a minute"),
    "taps-outside-hours": gettext_noop("badge taps outside opening hours"),
}
COMMAND_STATUSES = {
    "pending": gettext_noop("waiting for the device"),
    "succeeded": gettext_noop("done"),
    "failed": gettext_noop("failed"),
    "expired": gettext_noop("expired: no answer"),
}
COMMAND_DONE = {"sent": gettext_noop("Sent. The device's answer shows below when it comes.")}
COMMAND_REFUSALS = {
    "bad-seconds": gettext_noop(
        "Blink or beep for (seconds): a whole number of seconds from 1 to 600."
    ),
    "bad-interval": gettext_noop(
        "Sample interval (seconds): a whole number of seconds from 1 to 86400."
    ),
    "no-broker": gettext_noop("Commands are off here: the server has no MQTT broker."),
    "broker-unavailable": gettext_noop("The broker did not take the command: try again."),
    "disabled": gettext_noop("This device is disabled: it takes no commands."),
}
# The floor-plan editor (web/plan_editor.py): what was saved, and why a form was not
# (``ikn_core.floor_plans.PlanRefused.code``).
PLAN_DONE = {
    "plan": gettext_noop("The floor's plan drawing is saved."),
    "desk": gettext_noop("The desk is saved."),
}
PLAN_REFUSALS = {
    "empty": gettext_noop("The file is empty."),
    "too-large": gettext_noop("The file is larger than 1 MiB."),
    "not-an-image": gettext_noop("The file is neither a PNG nor an SVG drawing."),
    "unsafe-svg": gettext_noop(
        "The SVG holds more than a drawing (a script, a foreign object, a style sheet or a "
        "link outside it): export it again as a plain drawing."
    ),
    "bad-size": gettext_noop("The drawing's size cannot be read, or it is too large."),
    "bad-number": gettext_noop("A coordinate is a number from 0 to 1000 (grid steps)."),
    "bad-equipment": gettext_noop(
        "Equipment is tags separated by commas: lower-case letters, digits, '-' or '_'."
    ),
    "bad-person": gettext_noop("A person's id: letters, digits, '.', '@', '-' or '_'."),
    "unknown-person": gettext_noop("There is no person with that id."),
}
# A zone's booking rules and access list (web/zones.py): the fields, what was saved,
# and why a form was not (``ikn_core.fields.InvalidField.code``).
ZONE_FIELDS = {
    "max_days_ahead": gettext_noop("Days ahead a booking may be made"),
    "min_minutes": gettext_noop("Shortest booking (minutes)"),
    "max_minutes": gettext_noop("Longest booking (minutes)"),
    "opens_minute": gettext_noop("Bookable from (HH:MM)"),
    "closes_minute": gettext_noop("Bookable until (HH:MM)"),
    "cancel_cutoff_minutes": gettext_noop("Cancel at least this many minutes before (0: any time)"),
    "allowed": gettext_noop("Who may book"),
}
ZONE_DONE = {
    "rules": gettext_noop("The zone's booking rules are saved."),
    "access": gettext_noop("Who may book in the zone is saved."),
}
ZONE_REFUSALS = {
    "range": gettext_noop("The value is outside what the platform allows."),
    "number": gettext_noop("Enter a whole number, or leave it empty."),
    "time": gettext_noop("Enter a time as HH:MM (00:00 to 24:00), or leave it empty."),
    "pair": gettext_noop(
        "The opening hours, and the shortest and longest booking, are set as pairs: fill "
        "both or neither."
    ),
    "order": gettext_noop("The first of the pair must come before the second."),
    "name": gettext_noop("An agency or unit is 1 to 64 characters, without '/'."),
    "twice": gettext_noop("A line is listed twice."),
    "too-many": gettext_noop("At most 100 lines."),
}
# Registering a device (web/admin.py): its kinds, its form's fields, and why it was
# refused (``InvalidField.code`` of ``ikn_core.fleet.new_device``, ``DeviceError.kind``).
DEVICE_KINDS = {
    "desk_sensor": gettext_noop("Desk sensor"),
    "badge_reader": gettext_noop("Badge reader"),
    "people_counter": gettext_noop("People counter"),
    "environment": gettext_noop("Environment sensor"),
}
DEVICE_FIELDS = {
    "id": gettext_noop("Device id"),
    "kind": gettext_noop("Kind"),
    "building": gettext_noop("Building"),
    "zone": gettext_noop("Zone"),
    "desk": gettext_noop("Desk"),
    "expected_interval_s": gettext_noop("Reports at least every (seconds)"),
}
DEVICE_REFUSALS = {
    "id": gettext_noop("Use 1 to 64 letters, digits, '-' or '_'."),
    "kind": gettext_noop("Choose one of the kinds."),
    "interval": gettext_noop("A whole number of seconds from 10 to 86400."),
    "desk-required": gettext_noop("A desk sensor needs its desk."),
    "unknown": gettext_noop("The form sent a field it does not have."),
    "exists": gettext_noop("A device with this id is registered already."),
    "desk-taken": gettext_noop("This desk already has a sensor."),
    "unknown-place": gettext_noop("There is no such place in this building."),
}

"""The domain errors of leave, travel and correction requests.

AttendanceError
└── RequestError          kind: a stable code, the problem ``type`` of the API
    ├── RequestNotFound   no such request (or not one the caller may see)
    ├── RequestDecided    it was approved or rejected already
    ├── OwnRequest        the approver made the request (or is its subject)
    ├── NotYourUnit       the approver supervises another agency or unit
    ├── NotHappenedYet    approving a correction of a day that has not begun
    └── UnknownEvidence   a correction cites a signal that is not a device's signal of
                          its person on its day
"""

from __future__ import annotations

from ikn_core.attendance.errors import AttendanceError

KINDS = ("cuti", "dinas_luar", "correction")


class RequestError(AttendanceError):
    kind = "request-error"

    def __init__(self, detail: str) -> None:
        super().__init__("", detail)


class RequestNotFound(RequestError):
    kind = "request-not-found"


class RequestDecided(RequestError):
    kind = "request-decided"


class OwnRequest(RequestError):
    kind = "own-request"


class NotYourUnit(RequestError):
    kind = "not-your-unit"


class NotHappenedYet(RequestError):
    """A correction records what happened: its day must have begun (the API refuses to
    file one earlier; this catches those filed before it did)."""

    kind = "correction-of-future-day"


class UnknownEvidence(RequestError):
    kind = "unknown-evidence"

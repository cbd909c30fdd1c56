"""The rotating check-in code at a building's door (issue 19, docs/attendance.md, "The
door's code").

A lobby kiosk shows a QR code of ``/door?b=<building>&w=<window>&s=<signature>``,
a new one every ``WINDOW_S`` seconds: ``window`` is the index of the 30-second window
since the epoch, ``signature`` the HMAC-SHA256 of the building and the window under the
site's display key (``IKN_DISPLAY_KEY``), its first 16 bytes in base64url. Only a
server holding the key can make one, so a scan proves the phone saw the kiosk's screen
within about a minute: presence in that building without trusting the phone's GPS.

A code is accepted during its own window and the next (``MAX_AGE_WINDOWS``: scanned
at the very end of its window, a person still has 30 s to tap), and one window early
(two servers' clocks a moment apart: nobody without the key can make a future code).
Pure: no I/O, the clock is given.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ikn_core.errors import IknError

WINDOW_S = 30  # a new code this often
MAX_AGE_WINDOWS = 1  # a code of the window before the current one still counts
AHEAD_WINDOWS = 1  # a code one window ahead counts too (another server's clock)
SIGNATURE_BYTES = 16  # of the HMAC-SHA256: 128 bits, 22 characters of base64url
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DoorCodeRefused(IknError):
    """A door code that proves nothing: ``kind`` says why (``door-code-unreadable``,
    ``door-code-forged``, ``door-code-expired``)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class DoorCode:
    building_id: str
    window: int
    signature: str

    @property
    def starts(self) -> datetime:
        return EPOCH + timedelta(seconds=self.window * WINDOW_S)

    def query(self) -> str:
        """The address's query, ``b=...&w=...&s=...`` (the building id is URL-safe)."""
        return f"b={self.building_id}&w={self.window}&s={self.signature}"


def window_of(at: datetime) -> int:
    """The index of the 30-second window holding ``at`` (an aware datetime)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("window_of needs an aware datetime")
    return int((at - EPOCH).total_seconds() // WINDOW_S)


def next_change(at: datetime) -> datetime:
    """When the code shown at ``at`` is replaced: the start of the next window."""
    return EPOCH + timedelta(seconds=(window_of(at) + 1) * WINDOW_S)


def _signature(key: bytes, building_id: str, window: int) -> str:
    mac = hmac.new(key, f"ikn-door:{building_id}:{window}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:SIGNATURE_BYTES]).decode().rstrip("=")


def code_at(key: bytes, building_id: str, at: datetime) -> DoorCode:
    """The building's code for the window holding ``at``."""
    window = window_of(at)
    return DoorCode(building_id, window, _signature(key, building_id, window))


def check(key: bytes, building_id: str, window: str, signature: str, now: datetime) -> DoorCode:
    """The code a scan sent (its query's ``b``, ``w``, ``s``) if it is the building's
    and current at ``now``; else ``DoorCodeRefused``. The signature is compared in
    constant time, and before the window's age: a forged code is called forged."""
    if not building_id or not window.isascii() or not window.isdigit() or len(window) > 12:
        raise DoorCodeRefused("door-code-unreadable", "not a door code: b, w and s are needed")
    code = DoorCode(building_id, int(window), signature)
    expected = _signature(key, building_id, code.window)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise DoorCodeRefused("door-code-forged", "the code's signature is not ours")
    current = window_of(now)
    if code.window < current - MAX_AGE_WINDOWS or code.window > current + AHEAD_WINDOWS:
        raise DoorCodeRefused("door-code-expired", "the code is of another time: scan it again")
    return code

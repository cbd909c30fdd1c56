"""When something a phone sent happened: a check-in or clock-in queued while the phone
was offline (issue 18) arrives later, with the phone's time of the tap (``client_time``).

The rule: the phone's time is the event's time when it is not in the future (``SKEW``
allowed, a phone's clock being a little off) and not older than the policy's bound on
late signals (``corrections.late_signal_hours``, ``Policy.late_signal_after``); else the
action is refused (``SentInFuture``, ``SentTooLongAgo``). The receipt time is always
stored beside it. A day's explanation names a signal received more than ``SKEW`` after
its time (``offline_note``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from ikn_core.errors import IknError

SKEW = timedelta(minutes=2)  # how far ahead of ours a phone's clock may be


class SentTimeRefused(IknError):
    """The phone's time cannot be the event's time; ``kind``: why (a stable code)."""

    kind = "sent-time-refused"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class SentTimeUnreadable(SentTimeRefused):
    kind = "sent-time-unreadable"


class SentInFuture(SentTimeRefused):
    kind = "sent-in-future"


class SentTooLongAgo(SentTimeRefused):
    kind = "sent-too-long-ago"


def parse_sent(text: str) -> datetime:
    """An ISO 8601 time with its offset (``2026-12-07T08:55:00+08:00``); a time without
    one says no moment and is refused."""
    try:
        found = datetime.fromisoformat(text.strip())
    except ValueError:
        raise SentTimeUnreadable(f"not an ISO 8601 time: {text[:40]!r}") from None
    if found.utcoffset() is None:
        raise SentTimeUnreadable(f"an ISO 8601 time needs its offset: {text[:40]!r}")
    return found


def event_time(sent: datetime | None, received: datetime, oldest: timedelta) -> datetime:
    """The time an action happened: the phone's (``sent``) inside the bounds, else
    refused; ``received`` when the phone sent none (online, at once)."""
    if sent is None:
        return received
    if sent > received + SKEW:
        raise SentInFuture(f"the phone's time {sent.isoformat()} is ahead of ours")
    if received - sent > oldest:
        raise SentTooLongAgo(f"sent {received - sent} ago, over the bound of {oldest}")
    return sent


def sent_offline(at: datetime, received: datetime) -> bool:
    """Whether a signal arrived so long after its time that it waited on the phone."""
    return received - at > SKEW


def offline_note(kind: str, signal_id: str, at: datetime, received: datetime, zone: tzinfo) -> str:
    """The explanation's line for a signal sent offline, times in the person's zone."""
    at, received = at.astimezone(zone), received.astimezone(zone)
    day = "" if at.date() == received.date() else f"{received:%Y-%m-%d} "
    return f"{kind} {signal_id} at {at:%H:%M %Z} sent offline, received {day}{received:%H:%M %Z}"

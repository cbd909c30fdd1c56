"""The weekly remote-work cap (PermenPANRB 4/2025 lets each agency set one).

``remote_days_over_cap`` flags the WFA days of an ISO week beyond the policy's
``remote_days_per_week`` (the cap of the policy in force on each day): the first
``cap`` WFA days of a week are within it, later ones are over.
"""

from __future__ import annotations

from collections.abc import Iterable

from ikn_core.attendance.record import DailyRecord, WorkMode
from ikn_core.attendance.versions import Policies


def remote_days_over_cap(
    records: Iterable[DailyRecord], policies: Policies
) -> tuple[DailyRecord, ...]:
    """ONE person's WFA records that exceed their week's cap, by day."""
    used: dict[tuple[int, int], int] = {}
    over: list[DailyRecord] = []
    for record in sorted(records, key=lambda r: r.day):
        if record.mode is not WorkMode.WFA:
            continue
        year, week, _ = record.day.isocalendar()
        used[year, week] = used.get((year, week), 0) + 1
        if used[year, week] > policies.in_force(record.day).remote_days_per_week:
            over.append(record)
    return tuple(over)

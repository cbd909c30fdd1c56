"""The weekly remote-work cap (PermenPANRB 4/2025 lets each agency set one).

``remote_days_over_cap`` flags the WFA days of an ISO week beyond the policy's
``remote_days_per_week`` (the cap of the policy in force on each day): the first
``cap`` WFA days of a week are within it, later ones are over. ``mark_over_cap`` marks
such days on the records themselves (``over_remote_cap`` and a reason line): a remote
clock-in beyond the cap is recorded as any other, and shown, never silently accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date

from ikn_core.attendance.record import DailyRecord, WorkMode
from ikn_core.attendance.versions import Policies


def _over(wfa_days: Iterable[date], policies: Policies) -> dict[date, tuple[int, int]]:
    """The WFA days over their week's cap: each with its rank in the week and the cap."""
    used: dict[tuple[int, int], int] = {}
    over: dict[date, tuple[int, int]] = {}
    for day in sorted(set(wfa_days)):
        year, week, _ = day.isocalendar()
        used[year, week] = used.get((year, week), 0) + 1
        cap = policies.in_force(day).remote_days_per_week
        if used[year, week] > cap:
            over[day] = (used[year, week], cap)
    return over


def remote_days_over_cap(
    records: Iterable[DailyRecord], policies: Policies
) -> tuple[DailyRecord, ...]:
    """ONE person's WFA records that exceed their week's cap, by day."""
    wfa = sorted((r for r in records if r.mode is WorkMode.WFA), key=lambda r: r.day)
    over = _over((r.day for r in wfa), policies)
    return tuple(r for r in wfa if r.day in over)


def mark_over_cap(
    records: Sequence[DailyRecord], other_wfa_days: Iterable[date], policies: Policies
) -> list[DailyRecord]:
    """ONE person's ``records`` with each WFA day beyond its week's cap marked
    (``over_remote_cap``, and a last reason line such as ``remote work: WFA day 3 of
    2026-W51, over the cap of 2 a week (PermenPANRB 4/2025): recorded, shown to the
    supervisor``). ``other_wfa_days``: the person's WFA days of the same weeks not among
    ``records`` (a report starting mid-week counts the week's earlier ones)."""
    wfa = [r.day for r in records if r.mode is WorkMode.WFA]
    over = _over([*wfa, *other_wfa_days], policies)
    out = []
    for r in records:
        if r.mode is WorkMode.WFA and r.day in over:
            rank, cap = over[r.day]
            year, week, _ = r.day.isocalendar()
            line = (
                f"remote work: WFA day {rank} of {year}-W{week:02d}, over the cap of {cap} a "
                "week (PermenPANRB 4/2025): recorded, shown to the supervisor"
            )
            out.append(replace(r, over_remote_cap=True, reasons=(*r.reasons, line)))
        else:
            out.append(r)
    return out


def over_cap_if_remote(
    day: date, other_wfa_days: Iterable[date], policies: Policies
) -> tuple[int, int] | None:
    """Were ``day`` a WFA day besides ``other_wfa_days`` (the person's, of its week):
    its rank in the week and the cap when that is over the cap, else None (what a remote
    clock-in's answer tells the person)."""
    return _over([*other_wfa_days, day], policies).get(day)

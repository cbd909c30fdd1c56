"""``compute_day``: one local day's signals into a ``DailyRecord`` (rules in ``record.py``'s
docstring and ``docs/attendance.md``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ikn_core.attendance.disruption import Disruption, mark
from ikn_core.attendance.errors import SignalError
from ikn_core.attendance.policy import DaySchedule, Policy
from ikn_core.attendance.record import (
    CLOCK_IN_KINDS,
    CLOCK_OUT_KINDS,
    PRESENCE_KINDS,
    DailyRecord,
    Excuse,
    PlaceType,
    Signal,
    WorkMode,
    local_day,
)

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Day:
    """What one computation needs to hand round."""

    day: date
    zone: ZoneInfo
    policy: Policy
    signals: tuple[Signal, ...]  # the day's, in time order

    def clock(self, at: datetime) -> str:
        local = at.astimezone(self.zone)
        return f"{_hhmm(local.time())} {local.tzname()}"


def compute_day(
    day: date,
    zone: ZoneInfo,
    home_agency: str,
    signals: Iterable[Signal],
    *,
    policy: Policy,
    excuse: Excuse | None = None,
    disruptions: Sequence[Disruption] = (),
) -> DailyRecord:
    """The record of ``day`` (local to ``zone``) from whichever of ``signals`` fall on
    it (others are ignored), under ``policy`` (the one in force on ``day``).

    ``excuse`` must cover ``day`` (SignalError otherwise). ``disruptions``: the
    platform's disruption windows of the person's building (``disruption.mark``): a
    lateness or early departure they overlap is marked "system disruption".
    """
    if excuse is not None and excuse.day != day:
        raise SignalError("excuse.day", f"the excuse covers {excuse.day}, not {day}")
    todays = _distinct(sorted((s for s in signals if local_day(s.at, zone) == day), key=_order))
    ctx = _Day(day, zone, policy, todays)
    clock_in = _clock_in(todays)
    clock_out = _clock_out(todays, clock_in)
    reasons = [f"policy {policy.version}"]
    schedule = policy.schedule(day)
    if schedule is None:
        reasons.append(f"non-working day: {policy.non_working_reason(day)}")
        return _unscheduled(
            ctx,
            WorkMode.NON_WORKING_DAY,
            clock_in=clock_in,
            clock_out=clock_out,
            reasons=reasons,
            excuse=excuse,
        )
    reasons.append(_describe(schedule))
    if excuse is not None:
        reasons.append(_describe_excuse(excuse))
        return _unscheduled(
            ctx,
            WorkMode.EXCUSED,
            clock_in=clock_in,
            clock_out=clock_out,
            reasons=reasons,
            excuse=excuse,
        )
    mode = _mode(todays, home_agency)
    if mode is None:
        reasons.append("no signal and no excuse on a working day: absent (unexcused)")
        return _record(ctx, WorkMode.ABSENT, None, None, reasons)
    reasons.append(_describe_mode(mode, todays, home_agency))
    reasons.extend(_describe_ambiguous(todays))
    record = _scheduled(
        ctx, schedule, mode, clock_in=clock_in, clock_out=clock_out, reasons=reasons
    )
    return mark(record, disruptions, policy, zone)


def _order(
    signal: Signal,
) -> tuple[datetime, str, str, str, str, str, bool, bool, tuple[str, ...]]:
    """A total order (time first) so the result never depends on the input order."""
    return (
        signal.at,
        signal.kind,
        signal.id,
        signal.place,
        signal.building_id or "",
        signal.building_agency or "",
        signal.building_id is None,
        signal.building_agency is None,
        signal.also_within,
    )


def _distinct(ordered: list[Signal]) -> tuple[Signal, ...]:
    """``ordered`` without repeats (a signal delivered twice counts once)."""
    return tuple(s for i, s in enumerate(ordered) if i == 0 or s != ordered[i - 1])


def _clock_in(todays: tuple[Signal, ...]) -> Signal | None:
    firm = [s for s in todays if s.kind in CLOCK_IN_KINDS]
    if firm:
        return firm[0]
    presence = [s for s in todays if s.kind in PRESENCE_KINDS]
    return presence[0] if presence else None


def _clock_out(todays: tuple[Signal, ...], clock_in: Signal | None) -> Signal | None:
    outs = [s for s in todays if s.kind in CLOCK_OUT_KINDS]
    if clock_in is not None:
        outs = [s for s in outs if s.at > clock_in.at]
    return outs[-1] if outs else None


def _mode(todays: tuple[Signal, ...], home_agency: str) -> WorkMode | None:
    modes = {_place_mode(s, home_agency) for s in todays}
    for mode in (WorkMode.WFO, WorkMode.WFO_OTHER, WorkMode.WFA):
        if mode in modes:
            return mode
    return None


def _place_mode(signal: Signal, home_agency: str) -> WorkMode:
    if signal.place is PlaceType.OFFICE:
        own = signal.building_agency in (None, home_agency)
        return WorkMode.WFO if own else WorkMode.WFO_OTHER
    if signal.place is PlaceType.OTHER_OFFICE:
        return WorkMode.WFO_OTHER
    return WorkMode.WFA


def _scheduled(
    ctx: _Day,
    schedule: DaySchedule,
    mode: WorkMode,
    *,
    clock_in: Signal | None,
    clock_out: Signal | None,
    reasons: list[str],
) -> DailyRecord:
    late = _lateness(ctx, schedule, clock_in, reasons)
    early = _early_departure(ctx, schedule, clock_in, clock_out, reasons)
    worked = _worked(ctx, clock_in, clock_out, schedule.break_minutes, reasons)
    return _record(
        ctx,
        mode,
        clock_in,
        clock_out,
        reasons,
        worked=worked,
        late=late,
        early=early,
        missing=(clock_in is None, clock_out is None),
    )


def _unscheduled(
    ctx: _Day,
    mode: WorkMode,
    *,
    clock_in: Signal | None,
    clock_out: Signal | None,
    reasons: list[str],
    excuse: Excuse | None,
) -> DailyRecord:
    """An excused or non-working day: times recorded, nothing counted against anyone."""
    if clock_in is not None:
        reasons.append(f"clock-in {ctx.clock(clock_in.at)} from {_name(clock_in)} (not counted)")
    if clock_out is not None:
        reasons.append(f"clock-out {ctx.clock(clock_out.at)} from {_name(clock_out)} (not counted)")
    pause = ctx.policy.regular.break_minutes(ctx.day)
    worked = _worked(ctx, clock_in, clock_out, pause, reasons)
    excuse_id = (excuse.id or None) if excuse is not None else None
    return _record(ctx, mode, clock_in, clock_out, reasons, worked=worked, excuse_id=excuse_id)


def _lateness(ctx: _Day, schedule: DaySchedule, clock_in: Signal | None, reasons: list[str]) -> int:
    start = _hhmm(schedule.start)
    if clock_in is None:
        minutes = ctx.policy.missing_clock_in_minutes
        reasons.append(f"no clock-in: counts as {minutes} min late (missing clock-in)")
        return minutes
    late = _whole_minutes(clock_in.at - schedule.start_at(ctx.zone))
    source = f"clock-in {ctx.clock(clock_in.at)} from {_name(clock_in)}"
    if clock_in.kind in PRESENCE_KINDS:
        source += " (no badge, app or correction clock-in that day)"
    if late <= 0:
        reasons.append(f"{source}: on time against {start}")
        return 0
    if late <= ctx.policy.late_tolerance_minutes:
        tolerance = ctx.policy.late_tolerance_minutes
        reasons.append(
            f"{source}: {late} min late against {start}, within {tolerance} min tolerance"
        )
        return 0
    reasons.append(f"{source}: {late} min late against {start}")
    return late


def _early_departure(
    ctx: _Day,
    schedule: DaySchedule,
    clock_in: Signal | None,
    clock_out: Signal | None,
    reasons: list[str],
) -> int:
    end = _hhmm(schedule.end)
    if clock_out is None:
        minutes = ctx.policy.missing_clock_out_minutes
        ignored = [s for s in ctx.signals if s.kind in CLOCK_OUT_KINDS]
        if ignored and clock_in is not None:
            names = ", ".join(_name(s) for s in ignored)
            reasons.append(f"{names}: before the clock-in, not a clock-out")
        reasons.append(f"no clock-out: counts as {minutes} min early departure (missing clock-out)")
        return minutes
    early = _whole_minutes(schedule.end_at(ctx.zone) - clock_out.at)
    source = f"clock-out {ctx.clock(clock_out.at)} from {_name(clock_out)}"
    if early <= 0:
        reasons.append(f"{source}: no early departure against {end}")
        return 0
    reasons.append(f"{source}: {early} min early departure against {end}")
    return early


def _worked(
    ctx: _Day,
    clock_in: Signal | None,
    clock_out: Signal | None,
    pause: int,
    reasons: list[str],
) -> int:
    if clock_in is None or clock_out is None:
        reasons.append("worked 0 min: needs both a clock-in and a clock-out")
        return 0
    span = _whole_minutes(clock_out.at - clock_in.at)
    worked = max(0, span - pause)
    window = f"{ctx.clock(clock_in.at)[:5]}-{ctx.clock(clock_out.at)}"
    reasons.append(f"worked {worked} min: {window} is {span} min less {pause} min break")
    return worked


def _record(
    ctx: _Day,
    mode: WorkMode,
    clock_in: Signal | None,
    clock_out: Signal | None,
    reasons: list[str],
    *,
    worked: int = 0,
    late: int = 0,
    early: int = 0,
    missing: tuple[bool, bool] = (False, False),
    excuse_id: str | None = None,
) -> DailyRecord:
    return DailyRecord(
        day=ctx.day,
        policy_version=ctx.policy.version,
        mode=mode,
        clock_in=clock_in.at.astimezone(ctx.zone) if clock_in else None,
        clock_out=clock_out.at.astimezone(ctx.zone) if clock_out else None,
        minutes_worked=worked,
        late_minutes=late,
        early_departure_minutes=early,
        missing_clock_in=missing[0],
        missing_clock_out=missing[1],
        signals=tuple(s.id for s in ctx.signals),
        reasons=tuple(reasons),
        excuse_id=excuse_id,
    )


def _whole_minutes(delta: timedelta) -> int:
    """Whole minutes, rounded towards minus infinity (07:30:59 is 0 min late)."""
    return delta // MINUTE


def _name(signal: Signal) -> str:
    return f"{signal.kind} {signal.id}"


def _hhmm(moment: time) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def _describe(schedule: DaySchedule) -> str:
    kind = "Ramadan working day" if schedule.ramadan else "working day"
    hours = f"{_hhmm(schedule.start)}-{_hhmm(schedule.end)}"
    return f"{kind} {hours} ({schedule.work_minutes} min + {schedule.break_minutes} min break)"


def _describe_excuse(excuse: Excuse) -> str:
    detail = f" ({excuse.detail})" if excuse.detail else ""
    ident = f" {excuse.id}" if excuse.id else ""
    return f"excused: {excuse.kind.value}{detail}{ident}"


def _describe_ambiguous(todays: tuple[Signal, ...]) -> list[str]:
    """A line per signal that was within the geofence of more than one building."""
    return [
        f"{_name(s)}: within the geofence of {len(s.also_within) + 1} buildings; "
        f"the nearest, {s.building_id}, taken (also {', '.join(s.also_within)})"
        for s in todays
        if s.also_within
    ]


def _describe_mode(mode: WorkMode, todays: tuple[Signal, ...], home_agency: str) -> str:
    evidence = next(s for s in todays if _place_mode(s, home_agency) is mode)
    where = evidence.place.value
    if evidence.building_id:
        where += f" building {evidence.building_id}"
    if evidence.building_agency:
        where += f" of agency {evidence.building_agency}"
    return f"mode {mode.value}: {_name(evidence)} at {where}"

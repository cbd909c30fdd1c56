"""``ikn bench attendance-rules``: daily records computed per second, against a ceiling.

A morning rush in memory: P people, D working days each, every day with a badge tap in
between 07:00 and 08:00 WITA, a booking check-in and a desk sensor a few minutes later
and a tap out in the afternoon (one day in ten remote by app, one in twenty absent).

1. ours: ``compute_day`` for every person-day under the national policy, with its
   validation, work mode, reasons and audit trail;
2. ceiling: the bare arithmetic on the same signals (earliest in, latest out, minutes
   late and worked against fixed 07:30/16:00), no policy, no reasons.

Prints one JSON line: records, signals, seconds, records_per_s, ceiling_records_per_s,
ratio (ours / ceiling), and a checksum of late minutes that both must agree on.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ikn_core.domain import IKN_ZONE as WITA

if TYPE_CHECKING:
    from ikn_core.attendance import Signal

FIRST_DAY = date(2026, 11, 23)  # a Monday
AGENCY = "OIKN"


@dataclass(frozen=True, slots=True)
class Options:
    people: int = 20_000
    days: int = 5
    seed: int = 7


def register_bench(kinds: Any) -> None:
    """``ikn bench attendance-rules`` (called by ikn/commands/bench.py)."""
    bench = kinds.add_parser(
        "attendance-rules", help="daily attendance records/s (pure rules), with a ceiling"
    )
    defaults = Options()
    bench.add_argument("--people", type=int, default=defaults.people)
    bench.add_argument("--days", type=int, default=defaults.days, help="working days from a Monday")
    bench.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> None:
    from ikn.benchmarks.results import emit

    emit(args, run(Options(args.people, args.days)))


def run(options: Options) -> dict[str, Any]:
    from ikn_core.attendance import Policies, compute_day

    days = _working_days(options.days)
    workload = _workload(options, days)
    policies = Policies.default()
    started = time.perf_counter()
    late_ours = 0
    for day, signals in workload:
        record = compute_day(day, WITA, AGENCY, signals, policy=policies.in_force(day))
        late_ours += record.late_minutes if record.clock_in else 0
    ours = time.perf_counter() - started
    started = time.perf_counter()
    late_ceiling = sum(_bare(day, signals)[0] for day, signals in workload)
    ceiling = time.perf_counter() - started
    count = len(workload)
    return {
        "bench": "attendance-rules",
        "records": count,
        "signals": sum(len(s) for _, s in workload),
        "seconds": round(ours, 3),
        "records_per_s": round(count / ours),
        "ceiling_records_per_s": round(count / ceiling),
        "ratio": round(ceiling / ours, 3),
        "late_minutes_agree": late_ours == late_ceiling,
    }


def _working_days(count: int) -> list[date]:
    days: list[date] = []
    day = FIRST_DAY
    while len(days) < count:
        if day.isoweekday() <= 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _workload(options: Options, days: list[date]) -> list[tuple[date, list[Signal]]]:
    from ikn_core.attendance import PlaceType, Signal, SignalKind

    rng = random.Random(options.seed)
    out: list[tuple[date, list[Signal]]] = []
    for person in range(options.people):
        for day in days:
            roll = rng.random()
            if roll < 0.05:
                out.append((day, []))
                continue
            base = datetime.combine(day, datetime.min.time(), tzinfo=WITA)
            arrive = base + timedelta(hours=7, seconds=rng.randrange(3600))
            leave = base + timedelta(hours=16, seconds=rng.randrange(-1800, 3600))
            ident = f"p{person}-{day.day}"
            if roll < 0.15:
                home = PlaceType.HOME
                signals = [
                    Signal(f"{ident}-a", SignalKind.APP_CHECK_IN, arrive, home),
                    Signal(f"{ident}-b", SignalKind.APP_CHECK_OUT, leave, home),
                ]
            else:
                office = PlaceType.OFFICE
                b = f"B{person % 12}"
                signals = [
                    Signal(f"{ident}-i", SignalKind.BADGE_IN, arrive, office, b, AGENCY),
                    Signal(
                        f"{ident}-k",
                        SignalKind.BOOKING_CHECK_IN,
                        arrive + timedelta(minutes=3),
                        office,
                        b,
                        AGENCY,
                    ),
                    Signal(
                        f"{ident}-d",
                        SignalKind.DESK_OCCUPIED,
                        arrive + timedelta(minutes=5),
                        office,
                        b,
                        AGENCY,
                    ),
                    Signal(f"{ident}-o", SignalKind.BADGE_OUT, leave, office, b, AGENCY),
                ]
            rng.shuffle(signals)
            out.append((day, signals))
    return out


def _bare(day: date, signals: list[Signal]) -> tuple[int, int]:
    """The ceiling: (minutes late, minutes worked) with nothing but arithmetic, against
    a fixed 07:30 start and 60-minute break."""
    ins = [s.at for s in signals if s.kind in ("badge_in", "app_check_in")]
    outs = [s.at for s in signals if s.kind in ("badge_out", "app_check_out")]
    if not ins:
        return 0, 0
    start = datetime.combine(day, datetime.min.time(), tzinfo=WITA) + timedelta(hours=7.5)
    first = min(ins)
    last = max((t for t in outs if t > first), default=None)
    worked = max(0, (last - first) // timedelta(minutes=1) - 60) if last is not None else 0
    return max(0, (first - start) // timedelta(minutes=1)), worked

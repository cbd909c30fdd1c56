"""``ikn bench booking``: a morning rush of desk bookings over HTTP, with its ceiling."""

from __future__ import annotations

import argparse
import logging
from typing import Any


def cmd_bench_booking(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.booking import Options, run
    from ikn.benchmarks.results import emit

    figures = run(Options(clients=args.clients, bookings=args.bookings, rate=args.rate))
    emit(args, figures)


def _positive_rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got {text!r}") from None
    if not 0 < rate <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1000000, got {text}")
    return rate


def register_bench(kinds: Any) -> None:
    """``ikn bench booking`` (called by ikn/commands/bench.py)."""
    booking = kinds.add_parser(
        "booking", help="bookings/s and p50/p99 over HTTP at C clients, double bookings, ceiling"
    )
    booking.add_argument("--clients", type=int, default=200, help="concurrent HTTP clients")
    booking.add_argument("--bookings", type=int, default=5000, help="booking requests in all")
    booking.add_argument(
        "--rate",
        type=_positive_rate,
        default=None,
        help="open loop: requests per second offered, latency counted from when each was "
        "due (default: closed loop, each client as fast as the API answers)",
    )
    booking.set_defaults(func=cmd_bench_booking)

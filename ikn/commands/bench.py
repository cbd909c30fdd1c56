"""``ikn bench ingest | edge | ...``: benchmarks that print one JSON line of figures.

Each also takes ``--results DIR`` (ikn/benchmarks/results.py); ``ikn bench report``
writes docs/benchmarks.md's Latest table from the result files.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ikn.benchmarks import results
from ikn.commands import booking, edge


def cmd_bench_ingest(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.ingest import Options, run

    options = Options(
        args.readings,
        args.devices,
        args.batch,
        args.ingest_processes,
        stored_notices=args.stored_notices == "on",
    )
    results.emit(args, run(options))


def cmd_bench_analytics(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.analytics import Options, run

    results.emit(args, run(Options(args.desks, args.days, args.repeat)))


def cmd_bench_web(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.web import Options, run

    results.emit(args, run(Options(args.desks, args.users, args.clients, args.requests)))


def cmd_bench_ui_latency(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING)
    from ikn.benchmarks.ui_latency import Options, run

    results.emit(args, run(Options(args.changes, args.speed)))


def _register_ui_latency(kinds: Any) -> None:
    ui = kinds.add_parser(
        "ui-latency",
        help="the demo building running: sensor publish to the live floor map's DOM in "
        "Chromium, p50/p99, against a bare EventSource on the same page",
    )
    ui.add_argument("--changes", type=int, default=200, help="sensor changes published")
    ui.add_argument("--speed", type=float, default=60.0, help="the simulated building's speed")
    ui.set_defaults(func=cmd_bench_ui_latency)


def _register_web(kinds: Any) -> None:
    web = kinds.add_parser(
        "web",
        help="the staff pages: Find a desk and booking p50/p99 against the API, bytes, "
        "time to an interactive floor plan in Chromium",
    )
    web.add_argument("--desks", type=int, default=200, help="desks on the floor")
    web.add_argument("--users", type=int, default=50, help="people booking at once")
    web.add_argument("--clients", type=int, default=10, help="clients loading the page")
    web.add_argument("--requests", type=int, default=500, help="page loads in all")
    web.set_defaults(func=cmd_bench_web)


def register(sub: Any) -> None:
    bench = sub.add_parser("bench", help="benchmarks (one JSON line of figures each)")
    kinds = bench.add_subparsers(dest="bench", required=True)
    ingest = kinds.add_parser("ingest", help="MQTT to PostgreSQL readings/s, with ceilings")
    ingest.add_argument("--readings", type=int, default=200_000)
    ingest.add_argument("--devices", type=int, default=100)
    ingest.add_argument("--batch", type=int, default=100, help="readings per message")
    ingest.add_argument("--ingest-processes", type=int, default=1)
    ingest.add_argument(
        "--stored-notices",
        choices=("on", "off"),
        default="on",
        help="publish the end-to-end acknowledgement after each commit",
    )
    ingest.set_defaults(func=cmd_bench_ingest)
    edge.register_bench(kinds)
    booking.register_bench(kinds)
    _register_web(kinds)
    _register_ui_latency(kinds)
    from ikn.benchmarks import attendance_rules

    attendance_rules.register_bench(kinds)
    analytics = kinds.add_parser(
        "analytics", help="a month of utilisation per level from the rollups: p50/p99 ms, ceilings"
    )
    analytics.add_argument("--desks", type=int, default=5000)
    analytics.add_argument("--days", type=int, default=30, help="days in the period (at most 31)")
    analytics.add_argument("--repeat", type=int, default=15, help="runs of each query")
    analytics.set_defaults(func=cmd_bench_analytics)
    from ikn.commands import attendance

    attendance.register_bench(kinds)
    for kind in kinds.choices.values():
        results.add_results_option(kind)
        kind.set_defaults(bench_parser=kind)
    results.register_report(kinds)

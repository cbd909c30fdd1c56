"""Result files of ``ikn bench ...`` and the "Latest" table of docs/benchmarks.md.

``ikn bench KIND --results DIR`` prints its JSON line as always and also writes
``DIR/KIND.json`` (or the file named, when the value ends in ``.json``): the figures of
that line with the full command that reproduces them and when the run finished (UTC).
``ikn bench report`` renders the table between the markers of docs/benchmarks.md from
the files in ``docs/bench-results/``; ``--check`` fails when the table is not that.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from ikn_core.errors import IknError

BEGIN = "<!-- latest: written by `ikn bench report` from docs/bench-results/*.json -->"
END = "<!-- end of latest -->"
# The figures a row shows, per benchmark (the file holds them all); others show every
# top-level number and yes/no.
HEADLINES: dict[str, tuple[str, ...]] = {
    "ingest": ("readings_per_s", "p50_ms", "p99_ms", "rss_mb", "count_ok", "ratio"),
    "booking": (
        "bookings_per_s",
        "requests_per_s",
        "p50_ms",
        "p99_ms",
        "errors_5xx",
        "double_bookings",
        "ratio",
    ),
    "edge": ("drain_readings_per_s", "drain_s", "stored_s", "rss_mb", "drain_rss_mb", "cpu_share"),
    "attendance-rules": ("records_per_s", "ratio", "late_minutes_agree"),
    "attendance": ("records_ok", "all_correct", "complete_after_last_tap_s", "ratio"),
    "analytics": ("refresh_s", "desk.p50_ms", "building.p50_ms", "ratio", "raw_speedup"),
    "web": (
        "find_p50_ms",
        "find_p99_ms",
        "find_ratio",
        "book_p50_ms",
        "book_p99_ms",
        "book_ratio",
        "first_load_kb",
        "repeat_load_kb",
        "interactive_ms",
    ),
    "ui-latency": (
        "changes",
        "p50_ms",
        "p99_ms",
        "ceiling_p50_ms",
        "ceiling_p99_ms",
        "ratio",
        "page_work_p50_ms",
        "clock_error_ms",
        "load_1m",
    ),
}


class ReportError(IknError):
    """A result file or the document cannot be read as expected (the message says which)."""


@dataclass(frozen=True)
class Result:
    """One result file: which benchmark, the command that ran it, when, its figures."""

    name: str  # the file's stem
    bench: str
    command: str
    finished: str
    figures: dict[str, Any]


def add_results_option(parser: argparse.ArgumentParser) -> None:
    """``--results DIR`` on one ``ikn bench KIND`` parser."""
    parser.add_argument(
        "--results",
        metavar="DIR",
        type=Path,
        help="also write the figures, the full command and the time to DIR/<bench>.json"
        " (or to the file named, when it ends in .json)",
    )


def command_line(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The ``ikn bench KIND ...`` command with every option spelled out, defaults too."""
    words = ["ikn", "bench", args.bench]
    for action in parser._actions:  # argparse has no public list of a parser's options
        if not action.option_strings or action.dest in ("help", "results"):
            continue
        value = getattr(args, action.dest)
        if value is not None:
            words += [action.option_strings[-1], _number(value)]
    return " ".join(words)


def _number(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def emit(args: argparse.Namespace, figures: dict[str, Any]) -> None:
    """Print the JSON line; with ``--results``, write the result file too."""
    print(orjson.dumps(figures).decode(), flush=True)
    target: Path | None = args.results
    if target is None:
        return
    path = target if target.suffix == ".json" else target / f"{args.bench}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    finished = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    command = command_line(args, args.bench_parser)
    doc = {"bench": args.bench, "command": command, "finished": finished}
    path.write_bytes(orjson.dumps({**doc, "figures": figures}, option=orjson.OPT_INDENT_2))


def load(directory: Path) -> list[Result]:
    """Every result file of ``directory``, by file name."""
    results = []
    for path in sorted(directory.glob("*.json")):
        try:
            doc = orjson.loads(path.read_bytes())
            results.append(
                Result(path.stem, doc["bench"], doc["command"], doc["finished"], doc["figures"])
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ReportError(f"{path}: not a result file of ikn bench ({exc!r})") from exc
    return results


def _figure(figures: dict[str, Any], key: str) -> Any:
    value: Any = figures
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if value < 10 else f"{value:,.1f}"
    return str(value)


def _cell(result: Result) -> str:
    keys = HEADLINES.get(result.bench) or tuple(
        k for k, v in result.figures.items() if isinstance(v, int | float)
    )
    shown = [(k, _figure(result.figures, k)) for k in keys]
    return ", ".join(f"{k} {_show(v)}" for k, v in shown if v is not None)


def table(results: list[Result], link_prefix: str = "bench-results/") -> str:
    """The Markdown table of ``results``: one row per file, linked to it."""
    rows = [
        "| result | command | finished (UTC) | figures |",
        "|---|---|---|---|",
    ]
    for r in results:
        link = f"[{r.name}]({link_prefix}{r.name}.json)"
        rows.append(f"| {link} | `{r.command}` | {r.finished} | {_cell(r)} |")
    return "\n".join(rows)


def rewrite(document: str, results: list[Result]) -> str:
    """``document`` with the text between the markers replaced by the table."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ReportError(f"the document needs the lines {BEGIN!r} and, after it, {END!r}")
    return f"{document[: start + len(BEGIN)]}\n{table(results)}\n{document[end:]}"


def cmd_report(args: argparse.Namespace) -> None:
    results = load(args.results_dir)
    if not results:
        raise ReportError(f"{args.results_dir}: no result files (*.json)")
    old = args.doc.read_text(encoding="utf-8")
    new = rewrite(old, results)
    if args.check:
        if new != old:
            raise ReportError(
                f"{args.doc}: the Latest table is not that of {args.results_dir}"
                " (ikn bench report rewrites it)"
            )
        return
    if new != old:
        args.doc.write_text(new, encoding="utf-8")
    print(f"{args.doc}: {len(results)} results", flush=True)


def register_report(kinds: Any) -> None:
    """``ikn bench report`` (called by ikn/commands/bench.py)."""
    report = kinds.add_parser("report", help="write docs/benchmarks.md's Latest table")
    report.add_argument("--results-dir", type=Path, default=Path("docs/bench-results"))
    report.add_argument("--doc", type=Path, default=Path("docs/benchmarks.md"))
    report.add_argument("--check", action="store_true", help="fail if the table is not current")
    report.set_defaults(func=cmd_report)

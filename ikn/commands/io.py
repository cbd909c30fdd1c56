"""``ikn import spaces|people FILE`` and ``ikn export spaces|people|tpp``: CSV or JSON.

``ikn export tpp --agency A --unit U --month YYYY-MM`` writes the unit's e-Kinerja /
TPP month, the same document as ``GET /api/v1/attendance/units/{agency}/{unit}/tpp``
(docs/api.md), under ``--policy`` (default: IKN_ATTENDANCE_POLICY, else the national).

Formats: docs/import.md. An import checks the whole file first and writes all of
it in one transaction, or nothing (every problem printed with its line or path
and field; exit status 1). Importing the same file again changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikn.running import database_command
from ikn_core.domain import IKN_ZONE

if TYPE_CHECKING:
    import asyncpg

FORMATS = ("csv", "json")


def _format(args: argparse.Namespace, path: str | None) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(path).suffix.lower().lstrip(".") if path else ""
    return suffix if suffix in FORMATS else "json"


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ikn import: cannot read {path}: {exc} (UTF-8 text expected)", file=sys.stderr)
        sys.exit(1)


def cmd_import(args: argparse.Namespace) -> None:
    text = _read(args.file)
    fmt = _format(args, args.file)

    async def work(conn: asyncpg.Connection) -> None:
        from ikn_service.spaces import import_file

        for w in await import_file(conn, args.what, text, fmt):
            print(f"{w.table}: {w.inserted} inserted, {w.updated} updated, {w.unchanged} unchanged")

    database_command("import", work)


def _tpp_export(
    args: argparse.Namespace, fmt: str
) -> Callable[[asyncpg.Connection], Awaitable[bytes]]:
    """The work of ``ikn export tpp``: its options checked first (IknError)."""
    from ikn_core.errors import IknError
    from ikn_core.settings import ApiSettings
    from ikn_service import reports
    from ikn_service.attendance import load_policies

    missing = [f"--{n}" for n in ("agency", "unit", "month") if not getattr(args, n)]
    if missing:
        raise IknError(f"ikn export tpp needs {', '.join(missing)}")
    first = reports.month_start(args.month)
    if first is None:
        raise IknError(f"--month: {args.month!r} is not YYYY-MM (years 2000-2100)")
    api = ApiSettings.from_env()
    policies = load_policies(args.policy or api.attendance_policy, api.retention.attendance_days)
    if not reports.tpp_month_covered(policies, first):
        raise IknError(f"--month: {args.month} is before any attendance policy")

    async def work(conn: asyncpg.Connection) -> bytes:
        from ikn_store.people import unit_people

        now = datetime.now(UTC)
        people = await unit_people(conn, args.agency, args.unit)
        rows = await reports.unit_tpp(
            conn, policies, people, first, now=now, today=now.astimezone(IKN_ZONE).date()
        )
        if fmt == "csv":
            return reports.tpp_csv(rows).encode()
        doc = {"agency": args.agency, "unit": args.unit, "month": args.month}
        return json.dumps({**doc, "people": reports.tpp_json(rows)}, indent=2).encode() + b"\n"

    return work


def cmd_export(args: argparse.Namespace) -> None:
    fmt = _format(args, args.out)
    written: list[bytes] = []
    tpp = _tpp_export(args, fmt) if args.what == "tpp" else None

    async def work(conn: asyncpg.Connection) -> None:
        if tpp is not None:
            written.append(await tpp(conn))
            return
        from ikn_core import io
        from ikn_store.io import export_people, export_spaces

        if args.what == "spaces":
            spaces = await export_spaces(conn)
            written.append(
                io.spaces_csv(spaces).encode() if fmt == "csv" else io.spaces_json(spaces)
            )
        else:
            people = await export_people(conn)
            written.append(
                io.people_csv(people).encode() if fmt == "csv" else io.people_json(people)
            )

    database_command("export", work)
    if args.out:
        Path(args.out).write_bytes(b"".join(written))
    else:
        sys.stdout.buffer.write(b"".join(written))
        sys.stdout.flush()


def register(sub: Any) -> None:
    imp = sub.add_parser("import", help="load spaces or people from a CSV or JSON file")
    imp.add_argument("what", choices=("spaces", "people"))
    imp.add_argument("file", help="the file (- for standard input)")
    imp.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    imp.set_defaults(func=cmd_import)
    exp = sub.add_parser("export", help="write spaces, people or a unit's TPP month as CSV or JSON")
    exp.add_argument("what", choices=("spaces", "people", "tpp"))
    exp.add_argument("--agency", help="tpp: the unit's agency")
    exp.add_argument("--unit", help="tpp: the unit")
    exp.add_argument("--month", help="tpp: YYYY-MM")
    exp.add_argument("--policy", help="tpp: a policy file (default: IKN_ATTENDANCE_POLICY)")
    exp.add_argument("--format", choices=FORMATS, help="default: from --out's extension, or json")
    exp.add_argument("--out", help="a file (default: standard output)")
    exp.set_defaults(func=cmd_export)

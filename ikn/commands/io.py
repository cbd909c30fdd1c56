"""``ikn import spaces|people FILE`` and ``ikn export spaces|people``: CSV or JSON.

Formats: docs/import.md. An import checks the whole file first and writes all of
it in one transaction, or nothing (every problem printed with its line or path
and field; exit status 1). Importing the same file again changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikn.running import database_command

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
        from ikn_store.io import import_people, import_spaces

        load = import_spaces if args.what == "spaces" else import_people
        for w in await load(conn, text, fmt):
            print(f"{w.table}: {w.inserted} inserted, {w.updated} updated, {w.unchanged} unchanged")

    database_command("import", work)


def cmd_export(args: argparse.Namespace) -> None:
    fmt = _format(args, args.out)
    written: list[bytes] = []

    async def work(conn: asyncpg.Connection) -> None:
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
    exp = sub.add_parser("export", help="write spaces or people as CSV or JSON")
    exp.add_argument("what", choices=("spaces", "people"))
    exp.add_argument("--format", choices=FORMATS, help="default: from --out's extension, or json")
    exp.add_argument("--out", help="a file (default: standard output)")
    exp.set_defaults(func=cmd_export)

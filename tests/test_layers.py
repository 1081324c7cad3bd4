"""An independent check of the layers: no import cycle between top-level packages.

import-linter holds the contracts in CI; this reads every module's syntax tree
itself, counting imports inside functions too (a lazy import that closes a
cycle is still a cycle), so the two checks cannot share a blind spot.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Top to bottom: a package may import only those after it.
LAYERS = ["scheduler_project", "shells", "triggers", "waitpoints", "events", "runs", "schedules", "alerts",
          "workspaces", "adapters", "core"]


def _imported(tree: ast.AST, module: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = module.split(".")[: -node.level]
                names.add(".".join([*base, node.module or ""]))
            elif node.module:
                names.add(node.module)
    return names


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {package: set() for package in LAYERS}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            for name in _imported(ast.parse(path.read_text()), module):
                top = name.split(".")[0]
                if top in graph and top != package:
                    graph[package].add(top)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, path = [], []

    def visit(node: str) -> None:
        if node in path:
            found.append(path[path.index(node):] + [node])
            return
        path.append(node)
        for target in sorted(graph[node]):
            visit(target)
        path.pop()

    for start in graph:
        visit(start)
    return found


def test_no_import_cycle_between_top_level_packages():
    assert cycles(package_graph()) == []


def test_every_import_points_down_the_layers():
    upward = [(package, target) for package, targets in package_graph().items() for target in targets
              if LAYERS.index(target) < LAYERS.index(package)]
    assert upward == []


def test_the_check_sees_an_import_inside_a_function():
    tree = ast.parse("def f():\n    from runs.models import Run\n")
    assert "runs.models" in _imported(tree, "schedules.services")
    assert cycles({"a": {"b"}, "b": {"a"}}) != []

"""No import cycles in src/trendflow: every import counts, lazy (in a function) and typing-only too.

The graph is read from the source with `ast` (no module is imported); an edge goes to the most
specific trendflow module an import names. graphlib reports a cycle with its members.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "trendflow"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _target(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for name in names:
                target = _target(name, modules)
                if target is not None and target != module:
                    graph[module].add(target)
    return graph


def test_the_import_graph_is_read() -> None:
    graph = import_graph()
    assert "trendflow.dataprocessor.run.scheduler" in graph["trendflow.dataprocessor.run.admission"]
    assert "trendflow.dataprocessor.run.step" in graph["trendflow.dataprocessor.run.scheduler"]


def test_no_import_cycles() -> None:
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_a_cycle_is_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()


def test_nothing_in_the_orchestrator_imports_its_entry_point() -> None:
    graph = import_graph()
    inner = [m for m in graph if m.startswith("trendflow.dataprocessor.run.")]
    assert inner and all("trendflow.dataprocessor.run" not in graph[m] for m in inner)


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "dataprocessor" / "run").glob("*.py")), ids=lambda p: p.name
)
def test_orchestrator_modules_stay_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400

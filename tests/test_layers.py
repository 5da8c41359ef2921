"""No import runs upward or sideways against the layer table of docs/architecture.md.

Each top-level part of the package may import only the parts its row allows (every import counts, also those
inside functions). A new violation fails this test with the importing module and the imported one."""

from __future__ import annotations

import ast
from pathlib import Path

import tunesmith

PACKAGE = Path(tunesmith.__file__).parent

BASE = {"tunesmith", "__version__", "errors", "files", "progress", "plotting", "jit"}  # anyone may import these
ALLOWED: dict[str, set[str]] = {
    "tunesmith": set(), "errors": set(), "files": set(), "progress": set(), "plotting": set(), "jit": set(),
    "__main__": {"cli"},
    "checkpoints": set(),
    "config": {"checkpoints"},
    "audio": set(),
    "symbolic": {"audio"},
    "models": {"audio", "symbolic"},  # a network over a token vocabulary uses its layout
    "data": {"audio", "symbolic"},
    "train": {"audio", "symbolic", "data", "models", "checkpoints"},
    "compose": {"audio", "symbolic", "models", "checkpoints"},
    "analyze": {"audio", "symbolic", "models", "checkpoints"},
    "provenance": {"audio", "symbolic"},
    "prompting": {"symbolic"},
    "families": {"audio", "symbolic", "compose", "analyze", "train"},
    "generation": {"audio", "symbolic", "data", "checkpoints", "compose", "analyze", "provenance", "families",
                   "prompting"},
    "evaluate": {"audio", "symbolic", "data", "models", "checkpoints", "train", "compose", "analyze", "provenance",
                 "generation", "families"},
    "client": set(),
    "service": {"audio", "symbolic", "checkpoints", "config", "analyze", "provenance", "families", "generation",
                "prompting"},
    "bench": {"audio", "symbolic", "data", "models", "checkpoints", "compose", "analyze", "provenance", "families",
              "generation", "service", "evaluate", "config", "train", "prompting"},
    "cli": {"*"},
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports() -> list[tuple[str, str]]:
    """(importing module, imported tunesmith module) for every import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("tunesmith", *path.relative_to(PACKAGE).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tunesmith":
                names = [node.module] if node.module != "tunesmith" else [f"tunesmith.{a.name}" for a in node.names]
                found += [(module, name) for name in names]
            elif isinstance(node, ast.Import):
                found += [(module, a.name) for a in node.names if a.name.split(".")[0] == "tunesmith"]
    return found


def test_every_part_has_a_row():
    parts = {_part(f"tunesmith.{p.stem if p.is_file() else p.name}") for p in PACKAGE.iterdir()
             if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").is_file()))}
    assert parts - {"__init__"} <= set(ALLOWED), f"add a row for {sorted(parts - set(ALLOWED) - {'__init__'})}"


def test_no_import_runs_against_the_layers():
    violations = []
    for importer, imported in _imports():
        source, target = _part(importer), _part(imported)
        if source == target or target in BASE or "*" in ALLOWED[source]:
            continue
        if target not in ALLOWED[source]:
            violations.append(f"{importer} imports {imported} ({source} may import {sorted(ALLOWED[source])})")
    assert not violations, "\n".join(violations)


def test_the_check_sees_a_violation(tmp_path):
    """The checker itself: an upward import is found (so the test above can fail)."""
    tree = ast.parse("from tunesmith.service.app import create_app\n")
    node = tree.body[0]
    assert isinstance(node, ast.ImportFrom) and _part(node.module) == "service" and "service" not in ALLOWED["audio"]


def _module_level_imports() -> dict[str, set[str]]:
    """module -> the tunesmith modules it imports when it is imported (not inside functions, not for types)."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        module = ".".join(("tunesmith", *(parts[:-1] if parts[-1] == "__init__" else parts)))
        targets = graph.setdefault(module, set())
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tunesmith":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    relative = Path(*sub.split(".")[1:])
                    is_module = (PACKAGE / relative).with_suffix(".py").is_file() or (PACKAGE / relative).is_dir()
                    targets.add(sub if is_module else node.module)
    return graph


def test_no_module_imports_itself_back():
    """No cycle of module-level imports (a lazy import inside a function or a TYPE_CHECKING one is no cycle)."""
    graph = _module_level_imports()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)

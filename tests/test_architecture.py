"""The package's shape, checked: no import cycles (also none hidden inside functions), no private name
imported across modules, no blanket format-skip markers, and files small enough to read.

Imports are read from the source with `ast` (every import statement, at any depth, except those under
`if TYPE_CHECKING:`), so an import placed inside a function to dodge a cycle still counts as an edge.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "nlptransfer"
ROOT = PACKAGE.parent
# Bundled evaluate metric scripts: loaded by `evaluate.load(path)`, not imported as package modules.
SKIP = {PACKAGE / "evaluation" / "metrics" / "modules"}
LIBRARY_MAX_LINES = 500
RECIPE_MAX_LINES = 300


def _sources() -> dict[str, Path]:
    """Module name -> file, for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if any(skip in path.parents for skip in SKIP):
            continue
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _sources()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every runtime import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    found: list[tuple[str, list[str], int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for orelse in child.orelse:
                    visit(orelse)
                continue
            if isinstance(child, ast.Import):
                found.extend((alias.name, [], child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = child.module or ""
                if child.level:
                    base = module.split(".") if is_package else module.split(".")[:-1]
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([target] if target else []))
                found.append((target, [a.name for a in child.names], child.lineno))
            visit(child)

    visit(tree)
    return [item for item in found if item[0] == "nlptransfer" or item[0].startswith("nlptransfer.")]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module, path in MODULES.items():
        for target, names, _ in _imports(module, path):
            if target == "nlptransfer":  # the lazy top-level API; its submodule imports are by name
                graph[module].update(f"nlptransfer.{n}" for n in names if f"nlptransfer.{n}" in MODULES)
                continue
            if target in MODULES:
                graph[module].add(target)
            graph[module].update(f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES)
        graph[module].discard(module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_even_inside_functions():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_private_name_is_imported_from_another_module():
    bad = []
    for module, path in MODULES.items():
        for target, names, line in _imports(module, path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and target != module:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {', '.join(private)} from {target}")
    assert not bad, "\n".join(bad)


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_files_are_small_enough_to_read(module):
    path = MODULES[module]
    limit = RECIPE_MAX_LINES if module.startswith("nlptransfer.recipes.") else LIBRARY_MAX_LINES
    assert _line_count(path) <= limit, f"{path.relative_to(ROOT)} has {_line_count(path)} lines (> {limit})"


def test_no_format_skip_markers():
    marked = [
        f"{path.relative_to(ROOT)}:{i}"
        for folder in ("nlptransfer", "tests", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "fmt: " + "skip" in line
    ]
    assert not marked, f"{len(marked)} format-skip markers: " + ", ".join(marked[:10])

"""The import graph of ladder: no module imports one that imports it back, and the CLI starts
without the heavy libraries.

The graph is read from the source with `ast`, so it sees every import a module can run:
module-level ones and those inside functions alike. Imports under `if TYPE_CHECKING:` never run
and are left out.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ladder

HEAVY = ("torch", "transformers", "onnxruntime", "sklearn", "scipy", "matplotlib", "pandas")


@dataclass(frozen=True)
class Edge:
    """`source` imports `target` at `line`; `nested`: inside a function or class."""

    source: str
    target: str
    line: int
    nested: bool

    def __str__(self) -> str:
        where = "in a function" if self.nested else "at module level"
        return f"{self.source} -> {self.target} (line {self.line}, {where})"


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Every module of the package in folder `root`, by dotted name ("ladder.data" is its
    __init__.py)."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def import_edges(root: Path, package: str) -> list[Edge]:
    """Every import of one of the package's modules by another (or by itself)."""
    modules = module_files(root, package)
    edges = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node, nested in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, name, is_package, modules):
                edges.append(Edge(name, target, node.lineno, nested))
    return edges


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """The import statements that can run, each with whether it sits in a function or class."""
    Found = Iterator[tuple[ast.Import | ast.ImportFrom, bool]]

    def visit(nodes: Iterable[ast.AST], nested: bool) -> Found:
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                yield node, nested
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                yield from visit(node.orelse, nested)  # the `if` body never runs
            else:
                inner = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                yield from visit(ast.iter_child_nodes(node), nested or inner)

    yield from visit(tree.body, False)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(
    node: ast.Import | ast.ImportFrom, name: str, is_package: bool, modules: dict[str, Path]
) -> list[str]:
    """The package's modules an import statement in module `name` loads (by name)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    base = node.module or ""
    if node.level:  # relative: from the module's own package, one level up per extra dot
        package = name if is_package else name.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    if base not in modules:
        return []
    # `from ladder.x import y` loads module ladder.x.y when y is a submodule, else ladder.x
    found = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
    if len(found) < len(node.names):
        found.append(base)
    return found


def import_circles(edges: list[Edge]) -> list[list[Edge]]:
    """The edges of each import circle: a strongly connected component of more than one
    module, or a module that imports itself (Tarjan's algorithm)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.source, set()).add(edge.target)
        graph.setdefault(edge.target, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for after in sorted(graph[node]):
            if after not in index:
                connect(after)
                low[node] = min(low[node], low[after])
            elif after in on_stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    circles = []
    for component in components:
        inside = [e for e in edges if e.source in component and e.target in component]
        if len(component) > 1 or inside:
            circles.append(sorted(inside, key=lambda e: (e.source, e.target, e.line)))
    return sorted(circles, key=lambda circle: str(circle[0]))


def describe(circles: list[list[Edge]]) -> str:
    lines = [f"{len(circles)} import circle(s):"]
    for circle in circles:
        lines.append(f"  circle of {len({e.source for e in circle})} module(s):")
        lines.extend(f"    {edge}" for edge in circle)
    return "\n".join(lines)


def test_no_module_imports_one_that_imports_it_back():
    circles = import_circles(import_edges(Path(ladder.__file__).parent, "ladder"))
    assert not circles, describe(circles)


def test_the_check_sees_every_kind_of_import(tmp_path):
    root = tmp_path / "pkg"
    files = {
        "__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
        "a.py": "import os\nimport pkg.b\n",
        "b.py": "def f():\n    from pkg.sub import c\n",  # function level, submodule name
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\n",  # relative, back to the start
        "d.py": "from pkg import d\n",  # itself
        "e.py": "class E:\n    from pkg.sub import VALUE\n",  # a name of the package pkg.sub
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    edges = import_edges(root, "pkg")
    assert {(e.source, e.target, e.nested) for e in edges} == {
        ("pkg.a", "pkg.b", False),
        ("pkg.b", "pkg.sub.c", True),
        ("pkg.sub.c", "pkg.a", False),
        ("pkg.d", "pkg.d", False),
        ("pkg.e", "pkg.sub", True),
    }
    circles = import_circles(edges)
    assert [{e.source for e in circle} for circle in circles] == [
        {"pkg.a", "pkg.b", "pkg.sub.c"},
        {"pkg.d"},
    ]
    assert "pkg.b -> pkg.sub.c (line 2, in a function)" in describe(circles)


def test_importing_the_cli_imports_no_heavy_library():
    script = f"import sys, ladder.cli; print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

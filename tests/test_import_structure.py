"""The package's import structure: every module imports, no module of ``maskscope`` imports
itself through others (no cycle, the package's ``__init__`` modules included), and ``import
maskscope`` leaves the heavy optional libraries alone.

The cycle check reads the import statements with :mod:`ast`, at module level and inside
functions (lazy imports) and ``if TYPE_CHECKING:`` blocks alike: a lazy import only hides a
cycle until the function runs.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "maskscope"

#: the package's layers, lowest first (docs/architecture.md): a module imports only from lower
#: layers, or from its own part (the longest prefix named here)
LAYERS = (
    ("maskscope.errors",),
    ("maskscope.plotting", "maskscope.core.atomic", "maskscope.core.json_files", "maskscope.core.progress"),
    ("maskscope.core.explanation", "maskscope.core.model", "maskscope.core.perturbation"),
    ("maskscope.core.scoring", "maskscope.core"),
    ("maskscope.core.optimisation",),
    ("maskscope.data", "maskscope.models"),
    ("maskscope.metrics",),
    ("maskscope.methods",),
    ("maskscope.training", "maskscope.checks", "maskscope.bench"),
    ("maskscope.studies", "maskscope.report"),
    ("maskscope.cli",),
    ("maskscope", "maskscope.__main__"),
)

#: libraries ``import maskscope`` must not import (each costs time or is an optional extra)
HEAVY = ("cv2", "onnx", "onnxruntime", "openvino", "matplotlib.pyplot")


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package (a package is its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[tuple[str, str | None]]:
    """``(imported module, enclosing function or None)`` for every import of a package module in a file.

    ``from a.b import c`` imports ``a.b`` and, when it is a module, ``a.b.c``; a name that is not
    a module stands for the module that holds it. Importing ``a.b.c`` also runs the packages
    ``a`` and ``a.b``: those count too, except the importer's own enclosing packages, which
    are always imported before it.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    found: set[tuple[str, str | None]] = set()

    def module_for(dotted: str) -> str | None:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    def record(dotted: str, function: str | None) -> None:
        target = module_for(dotted)
        if target is None:
            return
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in modules and prefix != name and prefix not in own_packages:
                found.add((prefix, function))

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(child, function or child.name)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    record(alias.name, function)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                if source.split(".")[0] == "maskscope":
                    record(source, function)
                    for alias in child.names:
                        if f"{source}.{alias.name}" in modules:
                            record(f"{source}.{alias.name}", function)
            visit(child, function)

    visit(tree, None)
    return found


def import_graph(package: Path = PACKAGE, within: str = "maskscope") -> dict[str, set[str]]:
    """The imports among the modules under ``within``."""
    modules = module_files(package)
    inside = {name for name in modules if name == within or name.startswith(within + ".")}
    graph = {}
    for name in sorted(inside):
        graph[name] = {
            target
            for target, _function in imports_of(name, modules[name], modules)
            if target in inside
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle ``[a, b, …, a]`` of the graph, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = walk(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = walk(node)
            if cycle:
                return cycle
    return None


MODULES = sorted(name for name in module_files() if name != "maskscope.__main__")  # __main__ runs the CLI


@pytest.mark.parametrize("name", MODULES)
def test_every_module_imports(name):
    importlib.import_module(name)


def test_the_package_imports_without_a_cycle():
    graph = import_graph()
    assert {"maskscope.core.model.classifier", "maskscope.plotting.scaling", "maskscope.cli.main"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle in maskscope: " + " -> ".join(cycle)


def test_plotting_and_the_result_type_do_not_import_the_methods():
    """How a map is coloured is carried by the explanation (``pixel_level``), not looked up by method name."""
    graph = import_graph()
    below = [name for name in graph if name.startswith(("maskscope.plotting", "maskscope.core"))]
    assert not [name for name in below if any(t.startswith("maskscope.methods") for t in graph[name])]


def test_the_dependencies_that_were_cycles_go_one_way():
    graph = import_graph()
    assert "maskscope.core.model.classifier" in graph["maskscope.core.model.onnx_models"]
    assert "maskscope.core.model.onnx_models" not in graph["maskscope.core.model.classifier"]
    fillers, inpainters, specs = (f"maskscope.core.perturbation.{name}" for name in ("fillers", "inpainters", "filler_specs"))
    assert fillers in graph[inpainters]
    assert not graph[fillers] & {inpainters, specs}
    assert {fillers, inpainters} <= graph[specs]


def part_of(name: str) -> str:
    """The part of :data:`LAYERS` a module belongs to: the longest name there that is ``name`` or a package above it."""
    parts = [part for layer in LAYERS for part in layer if name == part or name.startswith(part + ".")]
    return max(parts, key=len)


def test_imports_point_down_the_layers():
    rank = {part: level for level, layer in enumerate(LAYERS) for part in layer}
    upward = sorted(
        f"{name} -> {target}"
        for name, targets in import_graph().items()
        for target in targets
        if part_of(target) != part_of(name) and rank[part_of(target)] >= rank[part_of(name)]
    )
    assert not upward, "imports that do not point down the layers of docs/architecture.md:\n" + "\n".join(upward)


def test_the_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_lazy_imports_inside_functions_count(tmp_path):
    package = tmp_path / "maskscope"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "a.py").write_text("from maskscope.core.b import thing\n")
    (package / "core" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from maskscope.core import c\n"
        "def thing():\n    from . import a\n    return a\n"
    )
    (package / "core" / "c.py").write_text("")
    graph = import_graph(package, within="maskscope.core")
    assert graph["maskscope.core.b"] == {"maskscope.core.a", "maskscope.core.c"}
    assert find_cycle(graph) == ["maskscope.core.a", "maskscope.core.b", "maskscope.core.a"]


def test_importing_maskscope_leaves_the_heavy_libraries_alone():
    script = f"import json, sys; import maskscope; print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []

"""The layer contract: imports point down the layers only, and no two modules import each other.

docs/design.md draws the layers. Every import counts: at the top of a module, inside a function,
under ``if TYPE_CHECKING:``. The one exception is ``privface/__init__.py``, the public API, which
imports from every layer lazily (module ``__getattr__``) and which nothing else imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Folder in the repository -> the package it installs as (pyproject's package-dir).
FOLDERS = {"privface": "privface", "privmetrics": "privface.privmetrics",
           "attributes": "privface.attributes", "generators": "privface.generators",
           "adversarial": "privface.adversarial", "cli": "privface.cli"}
# The public API module: allowed to import anything (lazily); no module may import it.
API = "privface"
LAYERS = {
    "privface.base": 0,
    "privface.privmetrics": 1,
    # Image quality (PSNR, SSIM) measures pixels only: the attacks report it as much as the
    # evaluation does, so it sits with the face parts.
    "privface.attributes": 2, "privface.quality": 2,
    "privface.generators": 3, "privface.adversarial": 3,
    "privface.pipeline": 4, "privface.evaluation": 4, "privface.reports": 4,
    "privface.cli": 5,
}


def find_modules(folders: Mapping[Path, str]) -> dict[str, Path]:
    """Every module under the folders, by its dotted name once installed."""
    modules = {}
    for folder, package in folders.items():
        for file in sorted(folder.rglob("*.py")):
            parts = list(file.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            name = ".".join([package, *parts])
            modules.setdefault(name, file)  # privface/ holds no copy of the other folders
    return modules


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Which project modules each module imports, wherever in the module the import stands."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, file in modules.items():
        package = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                # `from package import module` runs the package's __init__ too: both count
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names
                                   if f"{base}.{alias.name}" in modules)]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # `import a.b.c` of a name in a.b
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def layer_of(module: str) -> int | None:
    """The layer of a module: that of the longest package in LAYERS that holds it."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    return None


def layer_violations(graph: Mapping[str, set[str]]) -> list[str]:
    """Imports that point up the layers, import the API module, or leave the base layer."""
    found = []
    for source, targets in sorted(graph.items()):
        if source == API:
            continue
        for target in sorted(targets):
            if target == API:
                found.append(f"{source} imports the public API module {API}")
            elif layer_of(source) is None or layer_of(target) is None:
                found.append(f"{source} -> {target}: a module outside every layer")
            elif layer_of(target) > layer_of(source):
                found.append(f"{source} (layer {layer_of(source)}) imports {target} "
                             f"(layer {layer_of(target)})")
            elif layer_of(source) == 0 and layer_of(target) != 0:
                found.append(f"{source}: the base layer imports {target}")
    return found


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import one another, directly or not (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def project_graph() -> dict[str, set[str]]:
    return import_graph(find_modules({ROOT / folder: package
                                      for folder, package in FOLDERS.items()}))


def test_every_module_has_a_layer_and_imports_point_down():
    assert layer_violations(project_graph()) == []


def test_no_import_cycle_counting_imports_inside_functions():
    assert cycles(project_graph()) == []


def test_the_base_layer_imports_nothing_of_the_project():
    graph = project_graph()
    assert {t for s, ts in graph.items() if layer_of(s) == 0 for t in ts if layer_of(t) != 0} \
        == set()


def test_the_checker_sees_a_cycle_an_upward_import_and_a_lazy_one(tmp_path):
    low, high = tmp_path / "low", tmp_path / "high"
    (low / "sub").mkdir(parents=True)
    high.mkdir()
    (low / "__init__.py").write_text("")
    (low / "sub" / "__init__.py").write_text("")
    (low / "a.py").write_text("from .sub import b\n")
    # the cycle closes inside a function, and the upward import hides under TYPE_CHECKING
    (low / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\n"
                                      "if TYPE_CHECKING:\n    import privface.cli.top\n"
                                      "def f():\n    from ..a import x\n")
    (high / "__init__.py").write_text("")
    (high / "top.py").write_text("from privface.base import sub\n")
    graph = import_graph(find_modules({low: "privface.base", high: "privface.cli"}))
    assert cycles(graph) == [["privface.base.a", "privface.base.sub.b"]]
    violations = layer_violations(graph)
    assert violations == ["privface.base.sub.b (layer 0) imports privface.cli.top (layer 5)"]
    assert graph["privface.cli.top"] == {"privface.base", "privface.base.sub"}

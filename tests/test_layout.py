"""The layout stays true: imports flow one way and the core never imports the demo.

Walks every ``import`` and ``from ... import`` of the package (lazy ones inside
functions included) and checks the graph between the top-level parts of the package
(``_utils``, ``data``, ``models``, ..., and the root modules) has no cycle, and that
within each subpackage its modules import each other without a cycle either.
"""

from __future__ import annotations

import ast
from pathlib import Path

import captum_rnn

PACKAGE = Path(captum_rnn.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every captum_rnn module named by an import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.add(name)
            # ``from captum_rnn.pkg import module`` names a module too
            found.update(f"{name}.{a.name}" for a in node.names)
    return {n for n in found if n.split(".")[0] == "captum_rnn"}


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _part(module: str) -> str:
    """The top-level part a module belongs to: ``captum_rnn.attr._x`` -> ``attr``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _graph(nodes_of, keep) -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        if not keep(name):
            continue
        for target in _imports(path):
            if target not in modules:
                continue  # a name imported from a module, not a module
            a, b = nodes_of(name), nodes_of(target)
            if a != b and keep(target):
                graph.setdefault(a, set()).add(b)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# Root modules that are only deprecation aliases (they import nothing at import time).
_SHIMS = {"captum_rnn.report"}


def test_top_level_parts_import_each_other_without_cycles():
    graph = _graph(_part, lambda m: _part(m) != "__init__" and m not in _SHIMS)
    assert _find_cycle(graph) is None, f"import cycle between parts: {_find_cycle(graph)}"


def test_modules_inside_each_subpackage_import_without_cycles():
    for sub in {p.parent.name for p in PACKAGE.glob("*/__init__.py")}:
        prefix = f"captum_rnn.{sub}."
        graph = _graph(lambda m: m, lambda m, prefix=prefix: m.startswith(prefix))
        assert _find_cycle(graph) is None, f"import cycle in {sub}/: {_find_cycle(graph)}"


def test_the_core_never_imports_the_demo():
    for name, path in _modules().items():
        if _part(name) == "demo" or name in _SHIMS:
            continue
        demo = sorted(t for t in _imports(path) if _part(t) == "demo")
        assert not demo, f"{name} imports the demo: {demo}"


def test_utils_import_nothing_else_of_the_package():
    for name, path in _modules().items():
        if _part(name) == "_utils":
            others = sorted(t for t in _imports(path) if _part(t) not in ("_utils",))
            assert not others, f"{name} imports {others}"


def test_no_module_cites_a_document_the_project_does_not_carry():
    for path in PACKAGE.rglob("*.py"):
        assert "DESIGN.md" not in path.read_text(encoding="utf-8"), path


def test_moved_names_still_work_for_one_release_with_a_warning():
    import warnings

    import captum_rnn.attr
    import captum_rnn.influence
    import captum_rnn.metrics
    import captum_rnn.rules

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert captum_rnn.attr.ExampleStore is captum_rnn.influence.ExampleStore
        assert captum_rnn.metrics.dfa_fidelity is captum_rnn.rules.dfa_fidelity
    assert len(caught) == 2
    assert all(issubclass(w.category, DeprecationWarning) for w in caught)
    assert "captum_rnn.influence.ExampleStore" in str(caught[0].message)

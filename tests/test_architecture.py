"""The import graph keeps the layers of docs/architecture.md (issue 13).

Every runtime import (module level and inside functions; ``TYPE_CHECKING`` blocks
are left out, they never run) between modules of ``ploutos_core`` and the built-in
plugins is read with :mod:`ast`. The graph must have no cycle, no module may import
a module of a higher layer, and built-in plugins import only the public surface that
third-party plugins use.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ploutos_core", "ploutos_plugins", "ploutos")

#: (module prefix, layer), lowest first; a module's layer is its longest matching prefix.
LAYERS: tuple[tuple[str, int], ...] = (
    ("ploutos_core.errors", 0), ("ploutos_core.hookspecs", 0), ("ploutos_core.runfiles", 0),
    ("ploutos_core.data", 1),
    ("ploutos_core.config", 2),
    ("ploutos_core.data.stage_data", 3), ("ploutos_core.data.universe", 3),
    ("ploutos_core.env", 4), ("ploutos_core.agents", 4),
    ("ploutos_core.tuning", 4), ("ploutos_core.tracking", 4), ("ploutos_core.trading", 4),
    ("ploutos_core.pluginmanager", 5),
    ("ploutos_core.evaluation", 6),
    # the gymnasium view loads a registered stage through the plugins
    ("ploutos_core.env.gym_env", 6),
    ("ploutos_core.training", 7), ("ploutos_core.tracking.session", 7),
    ("ploutos_core.tuning.study", 8),
    # issue 12: signals replay a backtest; a trade cycle runs a signal through a broker
    ("ploutos_core.trading.signal", 7), ("ploutos_core.trading.status", 7),
    ("ploutos_core.trading.cycle", 8),
    # walk-forward folds are stages trained through the builder, then one backtest
    ("ploutos_core.walkforward", 9),
    ("ploutos_core.training.runner", 9),
    ("ploutos_core.comparison", 10),
    ("ploutos_core.sb3", 4), ("ploutos_core.torch", 4),
    ("ploutos_core.testing", 11), ("ploutos_core.api", 11),
    ("ploutos_core.cli", 12),
    # the shipped pytest fixtures drive the CLI in-process
    ("ploutos_core.testing.fixtures", 13),
)
#: what a plugin, built-in or not, may import from Ploutos (docs/writing-plugins.md).
PUBLIC = ("ploutos_core", "ploutos_core.sb3", "ploutos_core.torch", "ploutos_core.testing")


def module_files() -> dict[str, Path]:
    """Every module of the checked packages, by dotted name."""
    found = {}
    for package in PACKAGES:
        directory = ROOT / package
        for path in directory.rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The checked modules that ``name`` imports at run time."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def layer(module: str) -> int | None:
    """The layer of a ``ploutos_core`` module (``None`` for the package facade)."""
    matches = [(len(prefix), level) for prefix, level in LAYERS
               if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1] if matches else None


def test_every_core_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    unplaced = [m for m in graph if m.startswith("ploutos_core.") and layer(m) is None]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    # Tarjan's strongly connected components: a component of more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_no_import_from_a_lower_layer_to_a_higher_one(graph: dict[str, set[str]]) -> None:
    upward = []
    for module, targets in graph.items():
        own = layer(module)
        if own is None:
            continue
        for target in targets:
            if target == "ploutos_core":
                upward.append(f"{module} imports the plugin-facing facade ploutos_core")
                continue
            other = layer(target)
            if other is not None and other > own:
                upward.append(f"{module} (layer {own}) imports {target} (layer {other})")
    assert not upward, "\n".join(sorted(upward))


def test_builtin_plugins_use_only_the_public_surface(graph: dict[str, set[str]]) -> None:
    private = sorted(f"{module} imports {target}" for module, targets in graph.items()
                     if module.startswith("ploutos_plugins")
                     for target in targets
                     if target.startswith("ploutos_core") and target not in PUBLIC)
    assert not private, "\n".join(private)


def test_the_example_plugin_and_its_tests_use_only_the_public_surface() -> None:
    """examples/ploutos-regimes is what a third party writes from the docs alone."""
    modules = module_files()
    private = []
    for path in sorted((ROOT / "examples").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            private += [f"{path.relative_to(ROOT)} imports {name}" for name in names
                        if name.startswith("ploutos_core") and name not in PUBLIC
                        and (name in modules or name.startswith("ploutos_core."))]
    assert not private, "\n".join(private)

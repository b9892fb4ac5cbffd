"""The structure ARCHITECTURE.md promises, read from the source's imports (lazy ones inside functions too):
dependencies point one way (each layer imports only itself and the layers below it), no import cycle
between modules or between subpackages, no private name imported from another module, no source file
over 400 lines."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400

# Layers from the bottom up; an area is a top-level module or subpackage of zsad_bench.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {"zsad_bench", "api", "errors", "registry", "atomic", "devices", "options", "hub", "checkpoint_files"}
    ),
    frozenset({"metrics", "backbones", "data", "protocols", "ops"}),
    frozenset({"anomalyclip", "adaclip", "musc", "baselines", "_factory"}),
    frozenset({"results"}),
    frozenset({"engine", "report"}),
    frozenset({"cli"}),
)


def _module_name(path: Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "baselines":  # installed as zsad_bench.baselines (setup.py)
        parts.insert(0, "zsad_bench")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    files = [*(ROOT / "zsad_bench").rglob("*.py"), *(ROOT / "baselines").rglob("*.py")]
    return {_module_name(p): p for p in sorted(files)}


SOURCES = _sources()


def _imports(name: str, path: Path) -> Iterator[tuple[str, str | None]]:
    """``(module, imported name or None)`` for every import statement of the module ``name``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield base, alias.name


def _resolve(module: str, attr: str | None) -> tuple[str | None, bool]:
    """The project module an import lands in (None for third-party), and whether it names a private
    attribute of that module (``from x import _helper``)."""
    candidate = f"{module}.{attr}" if attr else module
    if candidate in SOURCES:
        return candidate, False
    target = module
    while target and target not in SOURCES:
        target = target.rpartition(".")[0]
    private = bool(attr and attr.startswith("_") and not attr.startswith("__"))
    return (target or None), private and bool(target)


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    edges: dict[str, set[str]] = {}
    private: list[str] = []
    for name, path in SOURCES.items():
        deps = edges.setdefault(name, set())
        for module, attr in _imports(name, path):
            target, is_private = _resolve(module, attr)
            if target is None or target == name:
                continue
            deps.add(target)
            if is_private:
                private.append(f"{name} imports {attr} from {target}")
    return edges, private


def _area(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


EDGES, PRIVATE = _graph()


def _layer(area: str) -> int:
    for level, areas in enumerate(LAYERS):
        if area in areas:
            return level
    raise AssertionError(f"area '{area}' is in no layer: add it to LAYERS here and to ARCHITECTURE.md")


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_cycles() -> None:
    assert _cycles(EDGES) == []


def test_no_subpackage_cycles() -> None:
    areas: dict[str, set[str]] = {}
    for module, deps in EDGES.items():
        for dep in deps:
            if _area(module) != _area(dep):
                areas.setdefault(_area(module), set()).add(_area(dep))
    assert _cycles(areas) == []


def test_dependencies_point_down_the_layers() -> None:
    upward = [
        f"{module} ({_area(module)}) imports {dep} ({_area(dep)})"
        for module, deps in EDGES.items()
        for dep in deps
        if _layer(_area(dep)) > _layer(_area(module))
    ]
    assert upward == []


def test_no_private_names_imported_across_modules() -> None:
    assert PRIVATE == []


def test_source_files_stay_short() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in SOURCES.items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}

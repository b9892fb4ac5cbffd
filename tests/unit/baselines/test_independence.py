"""Methods share code only through ``zsad_bench.ops`` (and the layers below): a baseline never imports
another baseline or AnomalyCLIP, AnomalyCLIP never imports a baseline, and the primitives import no
method, engine, results, report or CLI code. Read from the source's imports, lazy ones included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BASELINES = sorted(p for p in (ROOT / "baselines").glob("*.py") if p.name != "__init__.py")


def _imported(path: Path) -> set[str]:
    """Absolute module names a file imports (``from a.b import c`` gives ``a.b`` and ``a.b.c``)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _under(modules: set[str], *packages: str) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.stem)
def test_a_baseline_imports_no_other_method(path):
    others = [f"zsad_bench.baselines.{p.stem}" for p in BASELINES if p != path]
    others += [f"baselines.{p.stem}" for p in BASELINES if p != path]
    assert _under(_imported(path), *others, "zsad_bench.anomalyclip") == []


def test_anomalyclip_imports_no_baseline():
    for path in (ROOT / "zsad_bench" / "anomalyclip").glob("*.py"):
        assert _under(_imported(path), "baselines", "zsad_bench.baselines") == [], path.name


def test_primitives_import_no_method_or_harness_layer():
    above = [f"zsad_bench.{p}" for p in ("anomalyclip", "baselines", "engine", "results", "report", "cli")]
    for path in (ROOT / "zsad_bench" / "ops").glob("*.py"):
        assert _under(_imported(path), "baselines", *above) == [], path.name

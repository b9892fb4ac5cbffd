"""The built wheel works outside the checkout: build it, install it into a fresh virtual environment, and run
``zsad demo``, ``zsad leaderboard --published`` and ``--compare published`` from a folder far from the
repository.

No network: the wheel is built without build isolation from the running interpreter's setuptools (the
``test`` extra requires it), and installed with ``--no-deps --no-index``. The new environment sees the
running environment's dependencies through a folder of links to them that leaves out everything of
zsad-bench itself (the editable install's ``.pth``, its finder and its ``dist-info``), so the only
``zsad_bench`` it can import, and the only entry points it can read, are the wheel's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# What a wheel is built from; everything else in the checkout (tests, caches, results) stays out.
SOURCES = ("pyproject.toml", "setup.py", "README.md", "zsad_bench", "baselines")
PACKAGED_CSV = "zsad_bench/report/published_data/published_results.csv"
TIMEOUT = 120


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _dependencies_without_zsad(folder: Path) -> Path:
    """A folder of links to the running environment's installed packages, less zsad-bench's own entries.

    A plain ``.pth`` line naming site-packages would also expose the checkout's ``zsad_bench-*.dist-info``
    (its entry points); ``.pth`` files inside it are not executed from a path added that way, so none of
    them is linked.
    """
    folder.mkdir()
    sites = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    for site in sites:
        for entry in Path(site).iterdir():
            name = entry.name.lower()
            if name.startswith(("zsad_bench", "zsad-bench", "__editable__")) or name.endswith(".pth"):
                continue
            if not (folder / entry.name).exists():
                (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel-build")
    source = work / "src"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    pip = [sys.executable, "-m", "pip"]
    _run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", ".", "-w", work / "dist"],
        source,
    )
    (built,) = (work / "dist").glob("zsad_bench-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel-venv")
    env = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", env], root)
    python = env / "bin" / "python"
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root).strip()
    )
    deps = _dependencies_without_zsad(root / "deps")
    (site / "zz_test_dependencies.pth").write_text(f"{deps}\n")
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel],
        root,
    )
    return env


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working folder outside the checkout, and an environment that cannot reach the checkout."""
    assert ROOT not in tmp_path.parents
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env["ZSAD_DATA"] = str(tmp_path / "data")
    env["HF_HUB_OFFLINE"] = "1"
    return tmp_path, env


def test_the_wheel_holds_only_the_zsad_bench_namespace_and_its_data(wheel: Path):
    names = zipfile.ZipFile(wheel).namelist()
    version = wheel.name.split("-")[1]
    assert {n.split("/")[0] for n in names} == {"zsad_bench", f"zsad_bench-{version}.dist-info"}
    top_level = next(n for n in names if n.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["zsad_bench"]
    # Every module of the source tree, namespace subpackages (no __init__.py) included; baselines/ under
    # the zsad_bench namespace.
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "zsad_bench").rglob("*.py")}
    modules |= {"zsad_bench/" + p.relative_to(ROOT).as_posix() for p in (ROOT / "baselines").rglob("*.py")}
    assert sorted(modules - set(names)) == []
    assert {PACKAGED_CSV, "zsad_bench/protocols/default.yaml", "zsad_bench/py.typed"} <= set(names)


def test_the_installed_wheel_runs_the_demo_and_the_papers_tables_outside_the_checkout(venv, outside):
    cwd, env = outside
    python, zsad = venv / "bin" / "python", venv / "bin" / "zsad"
    where = _run(
        [
            python,
            "-c",
            "import zsad_bench, zsad_bench.baselines.clip as c; print(zsad_bench.__file__, c.__file__)",
        ],
        cwd,
        env,
    ).split()
    for path in where:
        assert Path(path).resolve().is_relative_to(venv.resolve()), path
    entry_points = _run(
        [
            python,
            "-c",
            "from importlib.metadata import entry_points as e; "
            "print(sorted({p.dist.locate_file('') for p in e(group='zsad_bench.models')}))",
        ],
        cwd,
        env,
    )
    assert str(ROOT) not in entry_points  # the checkout's editable dist-info is invisible here

    demo = _run([zsad, "demo", "--out", "demo", "--quiet"], cwd, env)
    assert "| synthetic | clip (random weights) |" in demo
    assert sorted(p.name for p in (cwd / "demo").glob("*.json")) == [
        "clip-ac__synthetic.json",
        "clip__synthetic.json",
    ]

    tables = _run([zsad, "leaderboard", "--published"], cwd, env)
    assert "# AnomalyCLIP (ICLR 2024) Table 1" in tables and "# AnomalyCLIP (ICLR 2024) Table 2" in tables
    assert "| mvtec-ad | 74.1 / 87.6 |" in tables

    # The comparison reads the same packaged CSV (random-weight rows are shown, never compared).
    compared = _run([zsad, "leaderboard", "demo", "--compare", "published"], cwd, env)
    assert "clip (random weights)" in compared

"""Package discovery that pyproject.toml alone cannot say: the repository's top-level ``baselines/`` folder
installs as ``zsad_bench.baselines`` (a wheel must not claim the generic top-level name ``baselines``).

Namespace discovery, so that a subpackage someone adds without an ``__init__.py`` still ships: plain
``find_packages`` would leave it out of the wheel while an editable install still imports it (this
happened once). ``tests/integration/test_wheel.py`` checks that every module of the source is in the wheel.
"""

from setuptools import find_namespace_packages, setup

# Folders that hold no Python: bytecode caches, and the data shipped through package-data.
NOT_PACKAGES = ["*.__pycache__", "zsad_bench.report.published_data"]

setup(
    packages=[
        *find_namespace_packages(include=["zsad_bench", "zsad_bench.*"], exclude=NOT_PACKAGES),
        "zsad_bench.baselines",
    ],
    package_dir={"zsad_bench.baselines": "baselines"},
)

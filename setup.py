"""Package discovery that pyproject.toml alone cannot say: the repository's top-level ``baselines/`` folder
installs as ``zsad_bench.baselines`` (a wheel must not claim the generic top-level name ``baselines``)."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["zsad_bench", "zsad_bench.*"]), "zsad_bench.baselines"],
    package_dir={"zsad_bench.baselines": "baselines"},
)

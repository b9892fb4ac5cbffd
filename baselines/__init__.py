"""The methods AnomalyCLIP is compared with, each a plugin module registered through entry points.

The folder sits at the top of the repository and installs as ``zsad_bench.baselines`` (setup.py): the
methods reach the harness exactly the way a third-party detector does
(``[project.entry-points."zsad_bench.models"]`` in ``pyproject.toml``), importing only the Detector
contract and the shared primitives (``zsad_bench.ops``, backbones, data transforms), never each other.
"""

"""The methods AnomalyCLIP is compared with, each a plugin registered through entry points.

They live outside ``zsad_bench`` on purpose: they reach the harness exactly the way a third-party
detector does (``[project.entry-points."zsad_bench.models"]`` in ``pyproject.toml``).
"""

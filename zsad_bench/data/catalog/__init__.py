"""The 17 datasets of the AnomalyCLIP paper, one module each; a new dataset is one more module.

A module holds its converter, a plain function ``convert(raw, spec) -> DataFrame`` that turns the raw
layout an official archive extracts into (found anywhere under ``raw``; helpers in ``_common``) into
manifest rows, and ends with ``SPEC = DatasetSpec(..., converter=convert)``: facts, sources and expected
counts (reference/datasets.md). ``SPEC`` is registered through the ``zsad_bench.datasets`` entry-point
group (``id = "zsad_bench.data.catalog.module:SPEC"``), the route a plugin dataset takes too.
"""

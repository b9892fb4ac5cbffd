"""The 17 datasets of the AnomalyCLIP paper, one module each: its ``SPEC`` and its ``convert`` function.

A converter turns the raw layout an official archive extracts into (found anywhere under the folder it
is given) into manifest rows; facts, sources and counts are in reference/datasets.md. Each module is
registered through the ``zsad_bench.datasets`` entry-point group like any plugin dataset.
"""

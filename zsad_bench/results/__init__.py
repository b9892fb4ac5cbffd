"""The results layer: the result file's schema (validated when read) and the prediction cache. Every file
is written through ``zsad_bench.atomic``."""

"""MuSc: zero-shot anomaly detection by mutual scoring of unlabeled test images (Li et al., ICLR 2024)."""

from zsad_bench.musc.model import MuSc, MuScOptions

__all__ = ["MuSc", "MuScOptions"]

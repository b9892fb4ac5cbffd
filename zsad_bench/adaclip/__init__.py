"""AdaCLIP: hybrid learnable prompts for zero-shot anomaly detection (Cao et al., ECCV 2024)."""

from zsad_bench.adaclip.model import AdaCLIP
from zsad_bench.adaclip.options import AdaCLIPOptions

__all__ = ["AdaCLIP", "AdaCLIPOptions"]

"""Run by tests/unit/engine/test_distributed.py under ``torchrun`` (1, 2 or 3 processes, gloo on CPU).

    torchrun --standalone --nproc-per-node N _dist_worker.py OUT_DIR

Evaluates the tiny CLIP on the synthetic dataset (from ZSAD_DATA) in three settings -- exact metrics with a
prediction cache, histogram metrics, and a dataset whose first class has two images (fewer than the ranks)
-- and writes each rank's result to OUT_DIR/<setting>.rank<R>.json (the cache to OUT_DIR/cache-<setting>);
then resumes the exact run with one class file removed (OUT_DIR/resumed.rank<R>.json).
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from zsad_bench.baselines.clip import CLIP

from zsad_bench import load_dataset
from zsad_bench.data import AnomalyDataset
from zsad_bench.engine import evaluate
from zsad_bench.engine.distributed import barrier, current, setup
from zsad_bench.protocols import default
from zsad_bench.results.cache import PredictionCache

EVAL = 32


def main(out: Path) -> None:
    device = setup("cpu")  # joins the gloo group when torchrun started more than one process
    rank = dist.get_rank() if dist.is_initialized() else 0
    torch.manual_seed(0)
    clip = CLIP(backbone="test-tiny", image_size=64).eval()
    data = load_dataset("synthetic", transform=clip.transform(), mask_size=EVAL)
    manifest = data.manifest
    first = manifest["class_name"] == data.classes[0]
    keep = ~first | manifest.index.isin(manifest[first].groupby("label").head(1).index)
    small = AnomalyDataset(data.folder, manifest[keep], transform=clip.transform(), mask_size=EVAL)
    settings = {
        "exact": (data, default.with_overrides(eval_size=EVAL), True),
        "histogram": (data, default.with_overrides(eval_size=EVAL, pixel_mode="histogram"), False),
        "small": (small, default.with_overrides(eval_size=EVAL), True),
    }
    for name, (dataset, protocol, cached) in settings.items():
        cache = PredictionCache(out / f"cache-{name}", "key") if cached else None
        result = evaluate(clip, dataset, protocol, batch_size=1, device=device, progress=False, cache=cache)
        fields = ("per_class", "mean", "counts", "error_bounds")
        record = {k: v for k, v in result.to_dict().items() if k in fields}
        record["images"] = result.timings["images"]
        record["ranks"] = result.timings["ranks"]
        record["from_cache"] = result.timings["classes_from_cache"]
        (out / f"{name}.rank{rank}.json").write_text(json.dumps(record, sort_keys=True))
        if name == "exact":  # resume: rank 0 drops one class file; that class runs again, the rest load
            if rank == 0:
                (out / "cache-exact" / f"{data.classes[1]}.safetensors").unlink()
            barrier(current())
            again = evaluate(
                clip, dataset, protocol, batch_size=1, device=device, progress=False, cache=cache
            )
            resumed = {
                "per_class": again.per_class,
                "from_cache": again.timings["classes_from_cache"],
                "missing": data.classes[1],
            }
            (out / f"resumed.rank{rank}.json").write_text(json.dumps(resumed, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

#!/usr/bin/env bash
# GPU checks and benchmarks on a bare GPU machine without internet, in one run.
#
#   bash benchmarks/gpu.sh OUT_DIR
#
# The machine is expected to have torch, numpy, pandas, scikit-learn, seaborn, click, timm and
# huggingface_hub, but not open_clip_torch: ship it (and ftfy, wcwidth) as wheels in .whl/ first, on a
# machine with the package index, together with a wheel of this project (its entry points register the
# models and datasets, so it must be installed, not just put on PYTHONPATH):
#   python3 -m pip wheel --no-deps -w .whl .
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     open_clip_torch ftfy wcwidth safetensors datasets pyarrow scikit-image
# Random weights throughout (no download is possible there): right for speed figures, meaningless as scores.
# Writes: OUT_DIR/RESULTS.md (the updated benchmark sections), OUT_DIR/tests.log, OUT_DIR/benchmarks.log.
set -uo pipefail
OUT="${1:-${OUT:-gpu-out}}"
mkdir -p "$OUT"
cd "$(dirname "$0")/.."

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl || { echo "error: put the wheels listed above in .whl/ first" >&2; exit 2; }
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import zsad_bench as z; assert 'anomalyclip' in z.list_models()" \
  || { echo "error: zsad-bench is not installed from .whl/ (its entry points are missing)" >&2; exit 2; }
export ZSAD_DATA="${ZSAD_DATA:-/tmp/zsad-data}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# 1. The test suite's CUDA paths (metrics on the device, the packed-key sort on CUDA) and the rest.
python3 -m pytest -q tests/unit/metrics tests/unit/backbones tests/unit/anomalyclip 2>&1 | tee "$OUT/tests.log"

# 2. Benchmarks on the GPU, each printing ratios measured in the same run.
{
  python3 benchmarks/metrics.py --device cuda --write-results
  python3 benchmarks/train.py --device cuda --backbone ViT-L-14-336-quickgelu:random --image-size 518 \
    --epochs 3 --write-results
} 2>&1 | tee "$OUT/benchmarks.log"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"

#!/usr/bin/env bash
# GPU checks and benchmarks on a bare GPU machine without internet, in one run.
#
#   bash benchmarks/gpu.sh --wheels     # first, on a machine with the package index: fill .whl/
#   bash benchmarks/gpu.sh OUT_DIR      # then, on the GPU machine (with .whl/ next to the checkout)
#
# The GPU machine is expected to have python 3.12 with torch, torchvision, numpy, scipy, pandas, pyarrow,
# scikit-learn, scikit-image, seaborn, click, timm, huggingface_hub, safetensors, PyYAML, tqdm and regex, but
# not open_clip_torch, ftfy and wcwidth (nor `datasets`, which only `to_hf()` needs).
# `--wheels` puts into .whl/ a wheel of this project (its entry points register the models and datasets,
# so it must be installed, not just put on PYTHONPATH) and the missing dependencies as manylinux wheels.
# Random weights throughout (no download is possible there): right for speed figures, meaningless as scores.
# Writes: OUT_DIR/gpu.txt, OUT_DIR/tests.log, OUT_DIR/benchmarks.log, OUT_DIR/run.json (a `zsad run` with
# --batch-size auto) and OUT_DIR/RESULTS.md (benchmarks/RESULTS.md with the GPU sections added).
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--wheels" ]; then
  mkdir -p .whl
  python3 -m pip wheel -q --no-deps -w .whl . || exit 2
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    open_clip_torch ftfy wcwidth || exit 2
  du -sh .whl
  exit 0
fi

OUT="${1:-${OUT:-gpu-out}}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
  .whl/*.whl || { echo "error: run 'bash benchmarks/gpu.sh --wheels' on a machine with the index first" >&2; exit 2; }
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PATH="/tmp/site/bin:$PATH"
python3 -c "import zsad_bench as z; assert 'anomalyclip' in z.list_models()" \
  || { echo "error: zsad-bench is not installed from .whl/ (its entry points are missing)" >&2; exit 2; }
export ZSAD_DATA="${ZSAD_DATA:-/tmp/zsad-data}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"

# 1. The tests marked `gpu` (metrics on the device, the packed-key sort, region labelling on the masks'
#    device, --batch-size auto's probe, evaluate() on CUDA against the CPU). The rest of the suite is
#    CI's (CPU); run here it would pick the GPU through device "auto" and compare bf16 against fp32 oracles.
python3 -m pytest -q -p no:cacheprovider -m gpu tests 2>&1 | tee "$OUT/tests.log"

# 2. Benchmarks, each printing ratios measured in the same run (a few minutes together).
{
  python3 benchmarks/inference.py --device cuda --write-results
  python3 benchmarks/metrics.py --device cuda --write-results
  python3 benchmarks/train.py --device cuda --backbone ViT-L-14-336-quickgelu:random --image-size 518 \
    --epochs 3 --write-results
} 2>&1 | tee "$OUT/benchmarks.log"

# 2b. MuSc: time and peak memory of one class against its size (mutual scoring is quadratic), real
#     ViT-L-14-336 shapes at 518 px under bf16 autocast, extrapolated to Br35H's 3,000 images (~2 min).
python3 benchmarks/musc.py --device cuda --sizes 16,32,64,128,256 --write-results 2>&1 \
  | tee -a "$OUT/benchmarks.log"

# 3. The product path: `zsad run` with --batch-size auto on the real architecture (random weights).
python3 -m zsad_bench.cli run --model anomalyclip --backbone ViT-L-14-336-quickgelu:random \
  --dataset synthetic --batch-size auto --no-cache --out "$OUT/run" -q 2>&1 | tee -a "$OUT/benchmarks.log"
python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(json.dumps(r['timings'], indent=1))" \
  "$OUT/run/anomalyclip__synthetic.json" | tee "$OUT/run.json"
cp benchmarks/RESULTS.md "$OUT/RESULTS.md"

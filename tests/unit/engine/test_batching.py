"""``--batch-size auto``: the search, the memory budget, the split-on-OOM fallback, and evaluate() with it."""

import pytest
import torch
from zsad_bench.baselines.clip import CLIP

from zsad_bench import load_dataset
from zsad_bench.api import Detector, Prediction
from zsad_bench.engine import evaluate
from zsad_bench.engine.batching import (
    ACCUMULATOR_BYTES_PER_PIXEL,
    CPU_BATCH_SIZE,
    MAX_BATCH_SIZE,
    auto_batch_size,
    auto_num_workers,
    batch_limit,
    find_batch_size,
    forward_chunked,
    is_out_of_memory,
    parse_batch_size,
    parse_num_workers,
    probe_budget,
)
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default

EVAL = 32


class Counter:
    """fits(b) = b <= capacity, counting calls."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.calls = capacity, []

    def __call__(self, size: int) -> bool:
        self.calls.append(size)
        return size <= self.capacity


@pytest.mark.parametrize("limit", [1, 7, 64, 512])
@pytest.mark.parametrize("start", [1, 8])
def test_find_batch_size_returns_the_largest_fitting_size(limit, start):
    for capacity in range(0, limit + 3):
        fits = Counter(capacity)
        assert find_batch_size(fits, limit, start=start) == min(capacity, limit)
        assert len(fits.calls) <= 2 * (limit.bit_length() + 1)
        assert all(1 <= s <= limit for s in fits.calls)


def test_find_batch_size_rejects_an_empty_range():
    with pytest.raises(ValueError):
        find_batch_size(lambda b: True, 0)


def test_batch_limit_keeps_every_loader_worker_busy():
    assert batch_limit(1725, 8) == MAX_BATCH_SIZE  # MVTec: 216 images a worker, capped
    assert batch_limit(200, 8) == 25  # a small dataset: one batch for each of the 8 workers
    assert batch_limit(5, 0) == 5 and batch_limit(5, 8) == 1 and batch_limit(0, 4) == 1


def test_probe_budget_reserves_the_largest_class_accumulators():
    gib = 2**30
    empty = probe_budget(80 * gib, 0, 518)
    assert empty == int(80 * gib * 0.9)
    # 500 images at 518 px hold 500 * 518^2 * 8 bytes in the pixel accumulators
    assert empty - probe_budget(80 * gib, 500, 518) == 500 * 518 * 518 * ACCUMULATOR_BYTES_PER_PIXEL
    with pytest.raises(ZsadError, match="histogram"):
        probe_budget(8 * gib, 5000, 518)  # 10 GiB of accumulators on an 8 GiB device


@pytest.mark.parametrize(("value", "parsed"), [("auto", "auto"), ("AUTO", "auto"), ("16", 16), (4, 4)])
def test_parse_batch_size(value, parsed):
    assert parse_batch_size(value) == parsed


@pytest.mark.parametrize("value", ["0", "-3", "big", 2.5, None])
def test_parse_batch_size_rejects(value):
    with pytest.raises(ZsadError, match="batch size"):
        parse_batch_size(value)


def test_parse_num_workers():
    assert parse_num_workers("auto") == "auto" and parse_num_workers("0") == 0 and parse_num_workers(3) == 3
    with pytest.raises(ZsadError, match="workers"):
        parse_num_workers("-1")


def test_auto_on_cpu_is_the_cpu_default():
    detector = CLIP(backbone="test-tiny", image_size=64)
    cpu = torch.device("cpu")
    assert auto_batch_size(detector, cpu, eval_size=EVAL, class_name="x") == CPU_BATCH_SIZE
    assert auto_batch_size(detector, cpu, eval_size=EVAL, class_name="x", limit=3) == 3
    assert auto_num_workers(cpu) == 0


def test_is_out_of_memory():
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))


class Fragile(Detector):
    """Scores = mean of each image, map = the image's first channel; runs out of memory above ``capacity``
    images per call."""

    name = "fragile"
    trainable = False

    def __init__(self, capacity: int = 2, size: int = 16) -> None:
        super().__init__()
        self.capacity, self.input_size, self.calls = capacity, size, []
        self._options = {"capacity": capacity}

    def transform(self):
        from zsad_bench.data.transforms import squash_transform

        return squash_transform(self.input_size)

    def forward(self, images, class_names):
        self.calls.append(len(images))
        if len(images) > self.capacity:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory ({len(images)} images)")
        return Prediction(image_scores=images.mean(dim=(1, 2, 3)), anomaly_maps=images[:, 0])


def test_forward_chunked_splits_on_out_of_memory_and_remembers():
    detector = Fragile(capacity=3)
    images = torch.rand(10, 3, 16, 16)
    prediction, chunk = forward_chunked(detector, images, ["a"] * 10, 10, split_on_oom=True)
    assert chunk == 2  # 10 -> 5 -> 2 fits
    assert torch.equal(prediction.image_scores, images.mean(dim=(1, 2, 3)))
    assert torch.equal(prediction.anomaly_maps, images[:, 0])
    detector.calls.clear()
    forward_chunked(detector, images, ["a"] * 10, chunk, split_on_oom=True)
    assert detector.calls == [2, 2, 2, 2, 2]


def test_forward_chunked_without_split_raises():
    with pytest.raises(torch.cuda.OutOfMemoryError):
        forward_chunked(Fragile(capacity=3), torch.rand(4, 3, 16, 16), ["a"] * 4, 4, split_on_oom=False)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # one image that does not fit is the end
        forward_chunked(Fragile(capacity=0), torch.rand(2, 3, 16, 16), ["a"] * 2, 2, split_on_oom=True)


def test_evaluate_auto_survives_out_of_memory_with_identical_metrics(session_data_root):
    detector = Fragile(capacity=3)
    data = load_dataset("synthetic", transform=detector.transform(), mask_size=EVAL, root=session_data_root)
    protocol = default.with_overrides(eval_size=EVAL)
    auto = evaluate(detector, data, protocol, batch_size="auto", num_workers="auto", progress=False)
    assert auto.timings["batch_size"] == CPU_BATCH_SIZE and auto.timings["batch_size_requested"] == "auto"
    assert auto.timings["num_workers"] == 0
    assert max(detector.calls) == CPU_BATCH_SIZE  # the first batch ran out of memory, then was split
    small = evaluate(Fragile(capacity=3), data, protocol, batch_size=3, progress=False)
    assert auto.per_class == small.per_class
    with pytest.raises(torch.cuda.OutOfMemoryError):  # a fixed batch size is taken at its word
        evaluate(Fragile(capacity=3), data, protocol, batch_size=8, progress=False)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_on_cuda_finds_a_batch_that_runs(session_data_root):
    device = torch.device("cuda")
    detector = CLIP(backbone="test-tiny", image_size=64).to(device).eval()
    size = auto_batch_size(detector, device, eval_size=EVAL, class_name="x", largest_class=100, limit=256)
    assert 8 <= size <= 256
    with torch.no_grad():
        detector(torch.zeros(size, 3, 64, 64, device=device), ["x"] * size)


def test_a_bad_batch_size_fails_before_anything_is_written(tmp_path, session_data_root):
    from zsad_bench.results.cache import PredictionCache

    detector = Fragile()
    data = load_dataset("synthetic", transform=detector.transform(), mask_size=EVAL, root=session_data_root)
    cache = PredictionCache(tmp_path / "cache", "key")
    with pytest.raises(ZsadError, match="batch size"):
        evaluate(
            detector,
            data,
            default.with_overrides(eval_size=EVAL),
            batch_size="zero",
            cache=cache,
            progress=False,
        )
    assert not (tmp_path / "cache").exists()


class FakeMemory:
    """A device of ``total`` bytes where a forward of b images peaks at ``weights + b * per_image``."""

    def __init__(self, detector: "Fragile", total: int, weights: int, per_image: int) -> None:
        self.detector, self.total_bytes, self.weights, self.per_image = detector, total, weights, per_image
        self.resets = 0

    def total(self) -> int:
        return self.total_bytes

    def peak(self) -> int:
        return self.weights + self.detector.calls[-1] * self.per_image

    def reset(self) -> None:
        self.resets += 1


@pytest.mark.parametrize(("capacity", "expected"), [(1000, 44), (30, 30), (0, None)])
def test_probe_keeps_the_largest_batch_under_the_budget_and_without_oom(capacity, expected):
    from zsad_bench.engine.batching import probe_batch_size

    detector = Fragile(capacity=capacity, size=16)
    # 1000 B device: budget 900 - 8 B/px x 16^2 px x 0 images; weights 20 B, 20 B per image -> 44 images
    memory = FakeMemory(detector, total=1000, weights=20, per_image=20)
    probe = dict(eval_size=16, class_name="x", precision="fp32", largest_class=0, limit=128)
    if expected is None:  # the detector runs out of memory even for one image
        with pytest.raises(ZsadError, match="not even one image"):
            probe_batch_size(detector, torch.device("cpu"), memory, **probe)
        return
    assert probe_batch_size(detector, torch.device("cpu"), memory, **probe) == expected
    assert memory.resets == len(detector.calls) + 1  # after every probe, whatever happened
    assert detector.calls[0] == 8 and max(detector.calls) <= 128


def test_probe_reserves_the_largest_class_and_lets_other_errors_through():
    from zsad_bench.engine.batching import probe_batch_size

    detector = Fragile(capacity=5000, size=4)
    # 100 000 B device, 90 000 budget, minus 8 B x 4^2 px x 500 images = 26 000 left: (26000 - 20) // 20
    memory = FakeMemory(detector, total=100_000, weights=20, per_image=20)
    probe = dict(eval_size=4, class_name="x", precision="fp32", largest_class=500, limit=2048)
    assert probe_batch_size(detector, torch.device("cpu"), memory, **probe) == 1299

    def broken(images, class_names):
        raise RuntimeError("shape mismatch")

    detector.forward = broken
    with pytest.raises(RuntimeError, match="shape mismatch"):
        probe_batch_size(detector, torch.device("cpu"), memory, **probe)

"""evaluate() on synthetic data with the tiny CLIP: per-class metrics equal the metric functions applied
to all of a class's predictions at once, whatever the batch size."""

import math

import pytest
import torch
from zsad_bench.baselines.clip import CLIP

from zsad_bench import load_dataset
from zsad_bench.api import Detector, Prediction
from zsad_bench.engine import evaluate
from zsad_bench.metrics import image_metrics, pixel_metrics
from zsad_bench.ops.maps import upsample
from zsad_bench.protocols import default

EVAL = 48


@pytest.fixture(scope="module")
def clip():
    return CLIP(backbone="test-tiny", image_size=64).eval()


@pytest.fixture(scope="module")
def dataset(clip, session_data_root):
    return load_dataset("synthetic", transform=clip.transform(), mask_size=EVAL, root=session_data_root)


def _direct(clip, dataset, class_name):
    idx = dataset.class_indices[class_name]
    items = [dataset[i] for i in idx]
    images = torch.stack([it["image"] for it in items])
    with torch.no_grad():
        pred = clip(images, [it["prompt_name"] for it in items])
    maps = upsample(pred.anomaly_maps, EVAL)
    masks = torch.stack([it["mask"] for it in items])
    labels = torch.tensor([it["label"] for it in items])
    return image_metrics(pred.image_scores, labels), pixel_metrics(maps, masks)


@pytest.mark.parametrize("batch_size", [3, 16])
def test_per_class_metrics_equal_direct_computation(clip, dataset, batch_size):
    protocol = default.with_overrides(eval_size=EVAL)
    result = evaluate(clip, dataset, protocol, batch_size=batch_size, progress=False)
    assert set(result.per_class) == set(dataset.classes)
    for name in dataset.classes:
        image, pixel = _direct(clip, dataset, name)
        for key in ("auroc", "ap", "f1_max"):
            assert result.per_class[name][f"image_{key}"] == pytest.approx(image[key], abs=1e-6)
        for key in ("auroc", "ap", "f1_max", "aupro"):
            assert result.per_class[name][f"pixel_{key}"] == pytest.approx(pixel[key], abs=1e-6)
    for key, value in result.mean.items():
        values = [v[key] for v in result.per_class.values()]
        assert value == pytest.approx(sum(values) / len(values))


def test_result_records_provenance(clip, dataset):
    result = evaluate(clip, dataset, default.with_overrides(eval_size=EVAL), progress=False)
    assert result.model == "clip" and result.dataset == "synthetic"
    assert result.random_weights is True
    assert result.protocol["eval_size"] == EVAL
    assert result.metric_variants["aupro"] == "mvtec"
    assert result.detector["config"]["backbone"] == "test-tiny"
    assert result.environment["packages"]["torch"] == torch.__version__.split("+")[0] or result.environment[
        "packages"
    ]["torch"].startswith(torch.__version__.split("+")[0])
    assert result.timings["images"] == len(dataset)
    assert all(not math.isnan(v) for v in result.mean.values() if v is not None)
    total = sum(c["normal"] + c["anomalous"] for c in result.counts.values())
    assert total == len(dataset)


def test_classification_only_dataset_reports_pixel_metrics_missing(clip, dataset):
    # Drop every mask path: the dataset becomes classification-only (like HeadCT or BrainMRI).
    from zsad_bench.data import AnomalyDataset

    manifest = dataset.manifest.copy()
    manifest["mask_path"] = None
    no_masks = AnomalyDataset(dataset.folder, manifest, transform=clip.transform(), mask_size=EVAL)
    assert not no_masks.has_masks
    result = evaluate(clip, no_masks, default.with_overrides(eval_size=EVAL), progress=False)
    for name in no_masks.classes:
        assert result.per_class[name]["pixel_auroc"] is None
        assert "mask" in result.missing[name]["pixel_auroc"]
        assert result.per_class[name]["image_auroc"] is not None
    assert result.mean["pixel_aupro"] is None and "pixel_aupro" in result.missing["mean"]


def test_dataset_id_is_loaded_at_the_protocol_size(clip):
    result = evaluate(clip, "synthetic", default.with_overrides(eval_size=32), progress=False)
    assert result.dataset == "synthetic" and result.protocol["eval_size"] == 32


def test_mask_size_mismatch_is_a_clear_error(clip, dataset):
    from zsad_bench.errors import ZsadError

    with pytest.raises(ZsadError, match="evaluates at 518 px"):
        evaluate(clip, dataset, default, progress=False)


def test_loader_workers_label_regions_with_identical_metrics(clip, dataset):
    # num_workers=2: the collate function (region labelling) runs in worker processes
    protocol = default.with_overrides(eval_size=EVAL)
    inline = evaluate(clip, dataset, protocol, batch_size=5, num_workers=0, progress=False)
    workers = evaluate(clip, dataset, protocol, batch_size=5, num_workers=2, progress=False)
    assert workers.timings["num_workers"] == 2
    assert workers.per_class == inline.per_class


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_evaluation_matches_cpu(clip, dataset):
    protocol = default.with_overrides(eval_size=EVAL)
    cpu = evaluate(clip, dataset, protocol, device="cpu", progress=False)
    try:
        on_gpu = {"device": "cuda", "progress": False}
        fp32 = evaluate(clip, dataset, protocol, precision="fp32", num_workers=2, **on_gpu)
        bf16 = evaluate(clip, dataset, protocol, batch_size="auto", **on_gpu)
    finally:
        clip.to("cpu")  # the fixture is shared with the CPU tests
    assert bf16.timings["precision"] == "bf16" and bf16.timings["batch_size"] >= 8
    for name, values in cpu.per_class.items():
        for key, value in values.items():
            assert fp32.per_class[name][key] == pytest.approx(value, abs=1e-4)  # TF32/cuBLAS rounding
            assert bf16.per_class[name][key] == pytest.approx(value, abs=0.05)


class _Wrapped(Detector):
    """The tiny CLIP with its maps upsampled to the evaluation size (so the loop's own upsampling is a no-op
    returning the detector's tensor), writing each batch into the same output buffers when ``reuse``."""

    name = "clip-wrapped"

    def __init__(self, clip: CLIP, reuse: bool) -> None:
        super().__init__()
        self.clip, self.reuse, self.input_size = clip, reuse, clip.input_size
        self.buffers = (torch.zeros(64), torch.zeros(64, EVAL, EVAL))

    def transform(self):
        return self.clip.transform()

    def forward(self, images, class_names):
        pred = self.clip(images, class_names)
        scores, maps = pred.image_scores.float(), upsample(pred.anomaly_maps, EVAL)
        if self.reuse:  # float32 like the buffers, so the loop's .float() would return the buffer itself
            n = len(images)
            scores, maps = self.buffers[0][:n].copy_(scores), self.buffers[1][:n].copy_(maps)
        return Prediction(scores, maps)


def test_a_detector_reusing_its_output_buffers_gets_the_same_metrics(clip, dataset):
    # The accumulators keep what they are given by reference: the loop must hand them copies, or every
    # batch of a class would be overwritten by the next one written into the same buffers.
    protocol = default.with_overrides(eval_size=EVAL)
    fresh = evaluate(_Wrapped(clip, reuse=False), dataset, protocol, batch_size=3, progress=False)
    reusing = evaluate(_Wrapped(clip, reuse=True), dataset, protocol, batch_size=3, progress=False)
    assert reusing.per_class == fresh.per_class
    assert fresh.per_class == evaluate(clip, dataset, protocol, batch_size=7, progress=False).per_class

"""Transductive detectors: one ``score_class`` call per class with all of its images in dataset order, the
same per-class metrics as a hand computation, whatever the batch size; cache resume; the result and
every table format mark the row; under several ranks a class is scored whole by its owner."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from zsad_bench import load_dataset
from zsad_bench.api import ClassImages, Detector, Prediction, Transductive
from zsad_bench.cli import main
from zsad_bench.engine import distributed, evaluate
from zsad_bench.engine.distributed import Ranks
from zsad_bench.errors import ZsadError
from zsad_bench.protocols import default
from zsad_bench.results.cache import PredictionCache, cache_key
from zsad_bench.results.schema import RunResult

SIZE = 32  # input size = evaluation size: the maps need no upsampling, so the hand computation is exact
PROTOCOL = default.with_overrides(eval_size=SIZE)


def to_tensor(image):
    array = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=np.float32) / 255.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


class MedianDistance(Detector, Transductive):
    """Scores each image by the distance of its mean colour to the class's median colour; the map is the
    distance of each pixel's grey value to the class's median grey image. Records every call."""

    name = "median-distance"
    transductive = True
    map_range = (0.0, 1.0)

    def __init__(self) -> None:
        super().__init__()
        self.input_size = SIZE
        self.calls: list[tuple[str, torch.Tensor]] = []

    def transform(self):
        return to_tensor

    def score_class(self, images: ClassImages, class_name: str) -> Prediction:
        batches = list(images.batches())
        assert all(len(b) <= images.batch_size for b in batches)
        stacked = torch.cat(batches)
        self.calls.append((class_name, stacked.clone()))
        return median_scores(stacked)


def median_scores(images: torch.Tensor) -> Prediction:
    colours = images.mean(dim=(2, 3))
    scores = (colours - colours.median(dim=0).values).norm(dim=1)
    grey = images.mean(dim=1)
    return Prediction(scores, (grey - grey.median(dim=0).values).abs())


@pytest.fixture(scope="module")
def dataset(session_data_root):
    return load_dataset("synthetic", transform=to_tensor, mask_size=SIZE, root=session_data_root)


def class_images(dataset, name):
    items = [dataset[i] for i in dataset.class_indices[name]]
    return items, torch.stack([it["image"] for it in items])


def test_a_transductive_detector_must_implement_score_class():
    with pytest.raises(TypeError, match=r"transductive = True: subclass zsad_bench\.api\.Transductive"):

        class Forgetful(Detector):
            name = "forgetful"
            transductive = True


@pytest.mark.parametrize("batch_size", [3, 16, "auto"])
def test_called_once_per_class_in_dataset_order_and_metrics_match_sklearn(dataset, batch_size):
    detector = MedianDistance()
    result = evaluate(detector, dataset, PROTOCOL, batch_size=batch_size, num_workers=0, progress=False)
    assert result.transductive is True and result.label == "median-distance (transductive)"
    assert result.filename == "median-distance-transductive__synthetic.json"
    assert result.timings["batch_size"] == (8 if batch_size == "auto" else batch_size)
    assert [name for name, _ in detector.calls] == [
        dataset[dataset.class_indices[c][0]]["prompt_name"] for c in dataset.classes
    ]
    for (_, seen), name in zip(detector.calls, dataset.classes, strict=True):
        items, images = class_images(dataset, name)
        assert torch.equal(seen, images)  # every image of the class, in dataset order
        prediction = median_scores(images)
        labels = np.array([it["label"] for it in items])
        masks = torch.stack([it["mask"] for it in items]).bool()
        scores = result.per_class[name]
        assert scores["image_auroc"] == pytest.approx(
            roc_auc_score(labels, prediction.image_scores), abs=1e-6
        )
        pixel = roc_auc_score(masks.flatten().numpy(), prediction.anomaly_maps.flatten().numpy())
        assert scores["pixel_auroc"] == pytest.approx(pixel, abs=1e-6)


def test_the_class_arrives_with_its_dataset_ids_and_defect_types(dataset):
    seen = []

    class Recording(MedianDistance):
        def score_class(self, images, class_name):
            seen.append((images.dataset, images.sample_ids, images.defect_types))
            return super().score_class(images, class_name)

    evaluate(Recording(), dataset, PROTOCOL, batch_size=5, num_workers=0, progress=False)
    manifest = dataset._manifest  # the rows of the split, in dataset order
    for (dataset_id, ids, types), name in zip(seen, dataset.classes, strict=True):
        rows = manifest[manifest["class_name"] == name]
        assert dataset_id == "synthetic"
        assert (
            ids
            == tuple(rows["sample_id"])
            == tuple(dataset[i]["sample_id"] for i in dataset.class_indices[name])
        )
        assert types == tuple(rows["defect_type"])
        assert "good" in types and len(set(types)) > 1  # normals and at least one defect type


def test_class_images_refuses_metadata_of_another_length():
    with pytest.raises(ValueError, match="defect_types has 2 entries for 3 images"):
        ClassImages(torch.zeros(3, 3, 4, 4), torch.device("cpu"), 2, defect_types=("good", "cut"))


def test_batch_size_does_not_change_the_result(dataset):
    small = evaluate(MedianDistance(), dataset, PROTOCOL, batch_size=2, num_workers=0, progress=False)
    large = evaluate(MedianDistance(), dataset, PROTOCOL, batch_size=64, num_workers=0, progress=False)
    assert small.per_class == large.per_class


def test_cache_resume_runs_only_the_missing_class(dataset, tmp_path):
    cache = PredictionCache(tmp_path / "preds", cache_key(MedianDistance().config(), "manifest", SIZE))
    first = evaluate(MedianDistance(), dataset, PROTOCOL, cache=cache, num_workers=0, progress=False)
    last = dataset.classes[-1]
    (tmp_path / "preds" / f"{last}.safetensors").unlink()
    detector = MedianDistance()
    second = evaluate(detector, dataset, PROTOCOL, cache=cache, num_workers=0, progress=False)
    assert [seen.shape[0] for _, seen in detector.calls] == [len(dataset.class_indices[last])]
    assert second.per_class == first.per_class
    assert second.timings["classes_from_cache"] == dataset.classes[:-1]
    loaded = cache.load(last)
    assert loaded.sample_ids == [dataset[i]["sample_id"] for i in dataset.class_indices[last]]


def test_a_wrong_number_of_rows_is_one_line(dataset):
    class Short(MedianDistance):
        def score_class(self, images, class_name):
            return median_scores(torch.cat(list(images.batches()))[:-1])

    with pytest.raises(
        ZsadError, match=r"returned 15 rows for class 'checker' of 16 images; score_class must return"
    ):
        evaluate(Short(), dataset, PROTOCOL, num_workers=0, progress=False)


@pytest.mark.parametrize("world", [2, 3])
def test_each_rank_scores_only_the_classes_it_owns_whole(dataset, monkeypatch, world):
    # the collectives of a single process: what each rank computes alone is what is checked here
    monkeypatch.setattr(distributed, "broadcast", lambda obj, ranks: obj)
    monkeypatch.setattr(distributed, "all_gather", lambda obj, ranks: [obj])
    monkeypatch.setattr(distributed, "barrier", lambda ranks: None)
    from zsad_bench.engine.loop import run_detector

    scored: dict[str, dict] = {}
    for rank in range(world):
        monkeypatch.setattr(distributed, "current", lambda rank=rank: Ranks(rank, world))
        detector = MedianDistance()
        outcome = run_detector(detector, dataset, _config(batch_size=5))
        owned = [c for p, c in enumerate(dataset.classes) if p % world == rank]
        assert sorted(outcome.per_class) == sorted(owned)
        assert [len(seen) for _, seen in detector.calls] == [len(dataset.class_indices[c]) for c in owned]
        scored.update(outcome.per_class)
    monkeypatch.setattr(distributed, "current", Ranks)
    single = run_detector(MedianDistance(), dataset, _config(batch_size=5)).per_class
    assert {name: scores.values for name, scores in scored.items()} == {
        name: scores.values for name, scores in single.items()
    }


def _config(**changes):
    from zsad_bench.engine.config import EvalConfig

    return EvalConfig(protocol=PROTOCOL, num_workers=0, progress=False, **changes)


@pytest.mark.parametrize("fmt", ["md", "csv", "latex", "html"])
def test_leaderboard_marks_the_row_in_every_format(dataset, tmp_path, fmt):
    result = evaluate(MedianDistance(), dataset, PROTOCOL, num_workers=0, progress=False)
    written = result.write(tmp_path)
    assert RunResult.read(written).transductive is True
    out = CliRunner().invoke(main, ["leaderboard", str(tmp_path), "--format", fmt])
    assert out.exit_code == 0, out.output
    assert "median-distance (transductive)" in out.output

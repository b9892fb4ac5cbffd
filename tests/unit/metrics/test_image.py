"""Image AUROC, AP and F1-max against scikit-learn, hand-worked cases and missing levels."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from zsad_bench.metrics import MetricResult, image_metrics

KEYS = ("auroc", "ap", "f1_max")


def _assert_matches(result: MetricResult, reference: dict[str, float], tol: float) -> None:
    assert set(result) == set(KEYS)
    for key in KEYS:
        assert result[key] == pytest.approx(reference[key], abs=tol), key


@pytest.mark.parametrize("seed", range(5))
def test_random_scores_match_sklearn(sklearn_reference: Callable, seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.random(300) < 0.4
    scores = rng.standard_normal(300) + 0.8 * labels
    _assert_matches(image_metrics(scores, labels), sklearn_reference(scores, labels), 1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_heavily_tied_scores_match_sklearn(sklearn_reference: Callable, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    labels = rng.random(200) < 0.3
    scores = np.round(rng.random(200) * 0.6 + 0.4 * labels, 1)  # ~10 distinct values
    _assert_matches(image_metrics(scores, labels), sklearn_reference(scores, labels), 1e-12)


def test_all_equal_scores(sklearn_reference: Callable) -> None:
    labels = np.array([0, 1, 0, 0, 1, 0, 0, 1])
    scores = np.full(8, 0.7)
    result = image_metrics(scores, labels)
    # One threshold: everything predicted anomalous. AUROC 1/2, AP = prevalence, F1 = 2p/(1+p).
    assert result == pytest.approx({"auroc": 0.5, "ap": 3 / 8, "f1_max": 2 * (3 / 8) / (1 + 3 / 8)})
    _assert_matches(result, sklearn_reference(scores, labels), 1e-15)


def test_hand_worked() -> None:
    # scores 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-).
    # AUROC: of the 4 (+,-) pairs, 3 are ordered correctly -> 0.75.
    # AP: recall steps 1/2 at precision 1 (t=0.8) and 1/2 at precision 2/3 (t=0.35) -> 5/6.
    # F1: t=0.8 -> 2/3; t=0.4 -> 1/2; t=0.35 -> P=2/3, R=1 -> 0.8; t=0.1 -> 2/3. Max 0.8.
    result = image_metrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    assert result["auroc"] == 0.75
    assert result["ap"] == pytest.approx(5 / 6, abs=1e-15)
    assert result["f1_max"] == pytest.approx(0.8, abs=1e-15)


def test_hand_worked_tie_across_labels() -> None:
    # A positive and a negative tied at 0.5 count as half a correct pair: AUROC = (1 + 1 + 0.5 + 1)/4.
    result = image_metrics([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    assert result["auroc"] == 0.875
    # AP: recall 1/2 at precision 1, then recall 1 at precision 2/3 (the tie block is one step).
    assert result["ap"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=1e-15)


def test_input_types_agree(sklearn_reference: Callable) -> None:
    rng = np.random.default_rng(7)
    labels = rng.random(50) < 0.5
    scores = rng.random(50).astype(np.float32)
    expected = sklearn_reference(scores, labels)
    for s, y in [
        (scores, labels),
        (torch.from_numpy(scores), torch.from_numpy(labels)),
        (scores.tolist(), labels.astype(int).tolist()),
        (torch.from_numpy(scores), torch.from_numpy(labels.astype(np.float32))),
    ]:
        _assert_matches(image_metrics(s, y), expected, 1e-12)


def test_float64_distinctions_are_kept() -> None:
    # Scores that differ by 1e-12 are distinct in float64 only; a cast to float32 would tie them (AUROC 0.5).
    scores = 0.5 + np.arange(10) * 1e-12
    labels = np.arange(10) >= 5
    assert image_metrics(scores, labels)["auroc"] == 1.0


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([1, 1, 1], "class has no normal images"),
        ([0, 0, 0], "class has no anomalous images"),
        ([], "no images"),
    ],
)
def test_single_label_is_missing_with_reason(labels: list[int], reason: str) -> None:
    result = image_metrics(np.linspace(0, 1, len(labels)), np.array(labels, dtype=bool))
    assert isinstance(result, MetricResult)
    assert dict(result) == dict.fromkeys(KEYS)
    assert result.reasons == dict.fromkeys(KEYS, reason)
    assert all(value is None and value != 0.0 for value in result.values())


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="binary"):
        image_metrics([0.1, 0.2], [0, 2])
    with pytest.raises(ValueError, match="NaN"):
        image_metrics([0.1, float("nan")], [0, 1])
    with pytest.raises(ValueError, match="shape"):
        image_metrics([0.1, 0.2, 0.3], [0, 1])
    with pytest.raises(ValueError, match="dimension"):
        image_metrics([[0.1, 0.2]], [[0, 1]])


def test_metric_result_requires_reasons_for_missing_values() -> None:
    with pytest.raises(ValueError, match="reason"):
        MetricResult({"auroc": None})
    result = MetricResult({"auroc": 0.9})
    result.set_missing("ap", "no anomalous images")
    assert result == {"auroc": 0.9, "ap": None}
    assert result.reasons == {"ap": "no anomalous images"}

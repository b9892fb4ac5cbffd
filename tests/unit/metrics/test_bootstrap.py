"""Stratified bootstrap CIs: every replicate against scikit-learn, the draws against a naive slow loop."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest

from zsad_bench.metrics import BootstrapCI, bootstrap_image_metrics, image_metrics
from zsad_bench.metrics.bootstrap import _replicate_metrics, _resample_counts

KEYS = ("auroc", "ap", "f1_max")


def _class(seed: int, n: int, shift: float = 1.0, p_anomalous: float = 0.6, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < p_anomalous
    labels[:2] = [False, True]  # both labels, whatever the draw
    scores = rng.standard_normal(n) + shift * labels
    if decimals is not None:
        scores = np.round(scores, decimals)
    return scores, labels


def _counts(scores: np.ndarray, labels: np.ndarray, replicates: int, seed: int = 0):
    order = np.argsort(-scores, kind="stable")
    rng = np.random.Generator(np.random.PCG64(seed))
    return scores[order], labels[order], _resample_counts(labels, order, rng, replicates)


@pytest.mark.parametrize("decimals", [None, 1, 0])  # continuous, ~40 distinct values, ~7 distinct values
def test_each_replicate_matches_sklearn_on_the_expanded_sample(
    sklearn_reference: Callable, decimals: int | None
) -> None:
    scores, labels = _class(1, 120, decimals=decimals)
    sorted_scores, sorted_labels, counts = _counts(scores, labels, 20)
    values = _replicate_metrics(sorted_scores, sorted_labels, counts)
    for r in range(counts.shape[0]):
        expected = sklearn_reference(np.repeat(sorted_scores, counts[r]), np.repeat(sorted_labels, counts[r]))
        for key in KEYS:
            assert values[key][r] == pytest.approx(expected[key], abs=1e-9), (key, r)


def test_all_tied_scores_per_replicate(sklearn_reference: Callable) -> None:
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 1, 0, 0], bool)
    scores = np.full(10, 0.3)
    sorted_scores, sorted_labels, counts = _counts(scores, labels, 5)
    values = _replicate_metrics(sorted_scores, sorted_labels, counts)
    expected = sklearn_reference(scores, labels)  # stratified: the same 4/10 prevalence in every replicate
    for key in KEYS:
        np.testing.assert_allclose(values[key], expected[key], atol=1e-12)


def test_replicates_keep_each_label_count() -> None:
    scores, labels = _class(2, 77)
    _, sorted_labels, counts = _counts(scores, labels, 300)
    assert counts.shape == (300, 77)
    assert (counts >= 0).all()
    np.testing.assert_array_equal(counts[:, sorted_labels].sum(axis=1), labels.sum())
    np.testing.assert_array_equal(counts[:, ~sorted_labels].sum(axis=1), (~labels).sum())
    assert (counts != 1).any()  # an actual resample, not the identity


def _naive(classes: dict, replicates: int, seed: int, level: float, sklearn_reference: Callable) -> dict:
    """The documented draws, replayed one replicate at a time with explicit arrays and scikit-learn."""
    rng = np.random.Generator(np.random.PCG64(seed))
    lo, hi = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    per_class, replicate_values = {}, []
    for name in sorted(classes):
        scores, labels = classes[name]
        normal, anomalous = scores[~labels], scores[labels]
        idx_normal = rng.integers(0, normal.size, size=(replicates, normal.size))
        idx_anomalous = rng.integers(0, anomalous.size, size=(replicates, anomalous.size))
        rows = []
        for r in range(replicates):
            s = np.concatenate([normal[idx_normal[r]], anomalous[idx_anomalous[r]]])
            y = np.r_[np.zeros(normal.size, bool), np.ones(anomalous.size, bool)]
            m = sklearn_reference(s, y)
            rows.append([m[key] for key in KEYS])
        rows = np.array(rows)
        replicate_values.append(rows)
        per_class[name] = {key: tuple(np.percentile(rows[:, i], [lo, hi])) for i, key in enumerate(KEYS)}
    means = np.mean(replicate_values, axis=0)
    return {
        "per_class": per_class,
        "mean": {key: tuple(np.percentile(means[:, i], [lo, hi])) for i, key in enumerate(KEYS)},
    }


def test_agrees_with_naive_slow_loop(sklearn_reference: Callable) -> None:
    classes = {"screw": _class(3, 30, decimals=1), "bottle": _class(4, 25), "cable": _class(5, 18, shift=0.3)}
    result = bootstrap_image_metrics(classes, replicates=60, seed=11, level=0.9)
    expected = _naive(classes, 60, 11, 0.9, sklearn_reference)
    assert list(result.per_class) == ["bottle", "cable", "screw"]
    for name in classes:
        for key in KEYS:
            assert result.per_class[name][key] == pytest.approx(expected["per_class"][name][key], abs=1e-9)
    for key in KEYS:
        assert result.mean[key] == pytest.approx(expected["mean"][key], abs=1e-9)


def test_seeded_and_independent_of_dict_order() -> None:
    a, b = _class(6, 60), _class(7, 80)
    first = bootstrap_image_metrics({"a": a, "b": b}, replicates=200, seed=3)
    again = bootstrap_image_metrics({"b": b, "a": a}, replicates=200, seed=3)
    other = bootstrap_image_metrics({"a": a, "b": b}, replicates=200, seed=4)
    assert first == again
    assert first.to_dict() == again.to_dict()
    assert other.per_class["a"]["auroc"] != first.per_class["a"]["auroc"]
    assert other.mean != first.mean


def test_interval_contains_point_estimate_and_narrows_with_more_images() -> None:
    small, large = _class(8, 40, shift=1.2), _class(9, 400, shift=1.2)
    result = bootstrap_image_metrics({"small": small, "large": large}, replicates=1000, seed=0)
    for name, (scores, labels) in {"small": small, "large": large}.items():
        point = image_metrics(scores, labels)
        for key in KEYS:
            low, high = result.per_class[name][key]
            assert low <= point[key] <= high, (name, key)
    widths = {
        name: {key: result.per_class[name][key][1] - result.per_class[name][key][0] for key in KEYS}
        for name in ("small", "large")
    }
    for key in KEYS:
        assert 0 < widths["large"][key] < widths["small"][key], key
    # ~1/sqrt(10) = 0.32 expected for AUROC; F1-max of few images is squeezed by its 2p/(1+p) floor.
    assert widths["large"]["auroc"] < 0.5 * widths["small"]["auroc"]


def test_perfect_separation_gives_degenerate_auroc_interval() -> None:
    # Every resample of perfectly separated images stays perfectly separated: AUROC = AP = F1-max = 1.
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.7, 0.8, 0.9])
    labels = np.array([0, 0, 0, 0, 1, 1, 1])
    result = bootstrap_image_metrics({"hand": (scores, labels)}, replicates=500)
    assert result.per_class["hand"] == dict.fromkeys(KEYS, (1.0, 1.0))
    assert result.mean["auroc"] == (1.0, 1.0)


def test_undefined_class_is_none_and_left_out_of_the_mean() -> None:
    good = _class(10, 50)
    only_normal = (np.linspace(0, 1, 10), np.zeros(10, bool))
    only_anomalous = (np.linspace(0, 1, 5), np.ones(5, bool))
    alone = bootstrap_image_metrics({"good": good}, replicates=300, seed=2)
    mixed = bootstrap_image_metrics(
        {"good": good, "normal_only": only_normal, "anomalous_only": only_anomalous}, replicates=300, seed=2
    )
    assert mixed.per_class["normal_only"] == dict.fromkeys(KEYS)
    assert mixed.per_class["anomalous_only"] == dict.fromkeys(KEYS)
    assert mixed.per_class["good"] == alone.per_class["good"]  # undefined classes draw nothing
    assert mixed.mean == alone.mean == alone.per_class["good"]
    none = bootstrap_image_metrics({"normal_only": only_normal}, replicates=10)
    assert none.mean == dict.fromkeys(KEYS)


def test_metric_subset_and_to_dict_is_json() -> None:
    result = bootstrap_image_metrics(
        {"a": _class(12, 40), "b": (np.ones(3), np.ones(3))}, replicates=50, metrics=("auroc",)
    )
    assert isinstance(result, BootstrapCI)
    assert set(result.mean) == {"auroc"}
    d = json.loads(json.dumps(result.to_dict()))
    assert d["level"] == 0.95 and d["replicates"] == 50 and d["seed"] == 0
    assert d["method"] == "percentile, label-stratified image resampling within each class"
    # the form a result file records: under result keys
    assert d["per_class"]["a"]["image_auroc"] == list(result.per_class["a"]["auroc"])
    assert d["per_class"]["b"] == {"image_auroc": None}
    assert d["mean"] == {"image_auroc": list(result.mean["auroc"])}


def test_bad_inputs_are_rejected() -> None:
    ok = _class(13, 20)
    with pytest.raises(ValueError, match="dimension"):
        bootstrap_image_metrics({"a": (ok[0][None], ok[1][None])})
    with pytest.raises(ValueError, match="shape"):
        bootstrap_image_metrics({"a": (ok[0], ok[1][:-1])})
    with pytest.raises(ValueError, match="binary"):
        bootstrap_image_metrics({"a": (ok[0], ok[1] * 2)})
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_image_metrics({"a": (np.r_[ok[0][:-1], np.nan], ok[1])})
    for level in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="level"):
            bootstrap_image_metrics({"a": ok}, level=level)
    for replicates in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="replicates"):
            bootstrap_image_metrics({"a": ok}, replicates=replicates)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metrics"):
        bootstrap_image_metrics({"a": ok}, metrics=("aupro",))
    with pytest.raises(ValueError, match="no classes"):
        bootstrap_image_metrics({})

"""Qualitative grids: for the top-scored anomalous images of a class, the image, its ground truth and each
model's anomaly-map overlay, from the prediction caches (maps min-max normalised per model over the class)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zsad_bench.errors import ZsadError
from zsad_bench.report.figures.common import (
    Results,
    by_dataset,
    check_formats,
    load_results,
    log,
    matplotlib_figure,
    open_caches,
    safe_name,
    save,
)
from zsad_bench.report.tables import model_label
from zsad_bench.results.schema import RunResult

__all__ = ["plot_qualitative", "qualitative_figure"]


def qualitative_figure(
    results: Sequence[RunResult], class_name: str, *, samples: int = 4, results_dir: str | Path | None = None
) -> Any:
    """The qualitative grid of one class of one dataset (see ``plot_qualitative``), or None."""
    runs, base = load_results(results, results_dir)
    if len({r.dataset for r in runs}) != 1:
        raise ZsadError("a qualitative grid takes the results of one dataset")
    caches = [c for c in open_caches(runs, base, "qualitative") if class_name in c[2]]
    images = _test_images(runs) if caches else None
    if images is None:
        return None
    preds = {model_label(r): cache.load(class_name) for r, cache, _ in caches}
    return _grid(preds, images, samples, f"{runs[0].dataset} / {class_name}")


def plot_qualitative(
    results: Results,
    out: str | Path = "plots",
    *,
    samples: int = 4,
    formats: Sequence[str] = ("png", "svg"),
    results_dir: str | Path | None = None,
) -> list[Path]:
    """``<out>/qualitative/<dataset>__<class>.<format>``: the ``samples`` highest-scored anomalous images.

    Rows: image, ground truth, then each model's map (jet, alpha 0.5) over the image. Images are ranked by
    the mean over models of their score rank in the class (normal images fill up a class with fewer
    anomalous ones). Maps are min-max normalised per model over the whole class, so a model's colours
    compare across its rows, not across models. Images come from the dataset's folder (``data_root()``,
    else the folder recorded in the result), squash-resized to the map size as the detectors saw them.
    """
    if samples < 1:
        raise ZsadError(f"samples must be at least 1, got {samples}")
    runs, base = load_results(results, results_dir)
    formats = check_formats(formats)
    written: list[Path] = []
    for dataset, group in by_dataset(runs).items():
        caches = open_caches(group, base, "qualitative")
        images = _test_images(group) if caches else None
        if images is None:
            continue
        for class_name in sorted(set().union(*(classes for _, _, classes in caches))):
            preds = {
                model_label(r): cache.load(class_name)
                for r, cache, classes in caches
                if class_name in classes
            }
            fig = _grid(preds, images, samples, f"{dataset} / {class_name}")
            if fig is not None:
                written += save(
                    fig, Path(out) / "qualitative" / f"{safe_name(dataset)}__{safe_name(class_name)}", formats
                )
    if not written:
        raise ZsadError(
            "nothing to plot: no result has both a prediction cache and its images available locally"
        )
    return written


def _grid(preds: dict[str, Any], images: _TestImages, samples: int, title: str) -> Any:
    """The grid of one class from each model's ``ClassPredictions``; None (warned) when an image is not in
    the local dataset."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    _, Figure = matplotlib_figure()
    first = next(iter(preds.values()))
    shared = set(first.sample_ids).intersection(*(p.sample_ids for p in preds.values()))
    ids = [i for i in first.sample_ids if i in shared]
    index = {m: {s: k for k, s in enumerate(p.sample_ids)} for m, p in preds.items()}
    at = {m: [index[m][i] for i in ids] for m in preds}  # model -> its row of each shared id
    # One ranking for all columns: the mean over models of each image's score rank.
    ranks = np.mean([np.argsort(np.argsort(p.scores[at[m]].numpy())) for m, p in preds.items()], axis=0)
    anomalous = first.labels[at[next(iter(preds))]].numpy()
    order = sorted(range(len(ids)), key=lambda k: (-anomalous[k], -ranks[k], ids[k]))[:samples]
    lost = [ids[k] for k in order if ids[k] not in images]
    if lost or not order:
        log.warning(
            "qualitative grid of %s skipped: %s is not in the local dataset", title, lost or "no image"
        )
        return None
    with_masks = next(((m, p) for m, p in preds.items() if p.masks is not None), None)

    n_rows, n_cols = len(order), 2 + len(preds)
    fig = Figure(figsize=(1.9 * n_cols + 1.3, 1.9 * n_rows + 1.0), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    size = int(first.maps.shape[-1])
    for row, k in enumerate(order):
        axes[row, 0].imshow(images(ids[k], size))
        axes[row, 0].set_ylabel(f"{ids[k]}\n{'anomalous' if anomalous[k] else 'normal'}", fontsize="small")
        if with_masks is None:
            axes[row, 1].imshow(np.zeros((size, size)), cmap="gray", vmin=0, vmax=1)
            axes[row, 1].text(0.5, 0.5, "no mask", color="w", ha="center", transform=axes[row, 1].transAxes)
        else:
            m, p = with_masks
            axes[row, 1].imshow(p.masks[at[m][k]].numpy(), cmap="gray", vmin=0, vmax=1)
        for col, (m, p) in enumerate(preds.items(), start=2):
            lo, hi = float(p.maps.min()), float(p.maps.max())
            normalised = (p.maps[at[m][k]].numpy() - lo) / (hi - lo if hi > lo else 1.0)
            axes[row, col].imshow(images(ids[k], int(p.maps.shape[-1])))
            axes[row, col].imshow(normalised, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            axes[row, col].set_xlabel(f"score {float(p.scores[at[m][k]]):.3g}", fontsize="small")
    for col, name in enumerate(["image", "ground truth", *preds]):
        axes[0, col].set_title(name, fontsize="medium")
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    colorbar = ScalarMappable(norm=Normalize(0, 1), cmap="jet")
    fig.colorbar(colorbar, ax=axes[:, 2:].ravel().tolist(), shrink=0.6, label="anomaly map, normalised")
    kept = "highest-scored anomalous" if anomalous[order].all() else "highest-scored"
    fig.suptitle(
        f"{title}: the {len(order)} {kept} images\n"
        "maps min–max normalised per model over the class, jet at alpha 0.5 over the image"
    )
    return fig


class _TestImages:
    """The test images of one prepared dataset by sample id, squash-resized (bicubic) to a square size
    as ``SquashTransform`` does, so a map lies where the detector saw the image."""

    def __init__(self, folder: Path, paths: dict[str, str]) -> None:
        self.folder, self.paths = folder, paths
        self._loaded: dict[tuple[str, int], np.ndarray] = {}

    def __contains__(self, sample_id: object) -> bool:
        return sample_id in self.paths

    def __call__(self, sample_id: str, size: int) -> np.ndarray:
        """(size, size, 3) uint8."""
        from PIL import Image

        from zsad_bench.data.transforms import open_image

        if (sample_id, size) not in self._loaded:
            image = open_image(self.folder / self.paths[sample_id]).convert("RGB")
            self._loaded[sample_id, size] = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC))
        return self._loaded[sample_id, size]


def _test_images(results: Sequence[RunResult]) -> _TestImages | None:
    """The images of the results' dataset from ``data_root()`` or the folder the run recorded; None,
    with a warning, when neither holds the prepared dataset."""
    from zsad_bench.data import data_root, is_prepared, read_manifest

    dataset = results[0].dataset
    recorded = [Path(r.data["folder"]) for r in results if r.data.get("folder")]
    folder = next((f for f in [data_root() / dataset, *recorded] if is_prepared(f)), None)
    if folder is None:
        log.warning(
            "qualitative grids of %s skipped: the dataset is not prepared locally "
            "(run 'zsad datasets prepare %s', or point ZSAD_DATA at its root)",
            dataset,
            dataset,
        )
        return None
    manifest = read_manifest(folder)
    rows = manifest[manifest["split"] == results[0].data.get("split", "test")]
    return _TestImages(folder, dict(zip(rows["sample_id"], rows["image_path"], strict=True)))

"""What AdaCLIP's official data pipeline gives the model, beyond the images (reference/datasets.md §4).

- **Class words.** The official ``meta.json`` files name the one class of each single-class dataset after
  the dataset (``ColonDB``, ``ClinicDB``, ``isic``, ``tn3k``, ``headct``, ``brain_mri``, ``br35h``, ``SDD``),
  and that word goes into the sentences, in training and in testing. The harness's prompt names for them are
  generic (``colon`` for both polyp sets, ``brain`` for three datasets), so the word cannot be told from the
  class name alone: the model looks it up by dataset id (``AdaCLIP.begin_dataset`` when evaluating;
  ``ClassWord`` over each auxiliary part when training). The multi-class datasets keep their folder names.
- **Mosaic.** ``BaseDataset(aug_rate=0.2)`` for MVTec AD only: an item becomes, with that probability, a
  2 x 2 mosaic of four distinct images of its class that keeps the item's label
  (``ops.augment.ClassMosaicDataset``).
"""

from __future__ import annotations

from typing import Any

from zsad_bench.ops.augment import ClassMosaicDataset

__all__ = ["OFFICIAL_CLASS_WORDS", "ClassWord", "official_training_data"]

# dataset id -> the official class word of its one class (the dataset classes' ``cls_names``)
OFFICIAL_CLASS_WORDS = {
    "cvc-colondb": "ColonDB",
    "cvc-clinicdb": "ClinicDB",
    "isic": "isic",
    "tn3k": "tn3k",
    "headct": "headct",
    "brainmri": "brain_mri",
    "br35h": "br35h",
    "sdd": "SDD",
}
MOSAIC_DATASETS = ("mvtec-ad",)  # the official sets aug_rate only for MVTec AD


class ClassWord:
    """A dataset whose items carry ``word`` as their prompt name (the official class word of its class)."""

    def __init__(self, dataset: Any, word: str) -> None:
        self.dataset, self.word = dataset, word

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {**self.dataset[index], "prompt_name": self.word}

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    @property
    def augmented(self) -> bool:
        return bool(getattr(self.dataset, "augmented", False))


def official_training_data(dataset: Any, mosaic_prob: float, class_words: bool) -> Any:
    """``dataset`` (one ``AnomalyDataset`` or the engine's concatenation of several, which offers
    ``with_parts``) with the official mosaic on its MVTec AD part and, if ``class_words``, the official class
    word on each single-class part."""

    def wrap(dataset_id: str | None, part: Any) -> Any:
        if dataset_id in MOSAIC_DATASETS and mosaic_prob > 0:
            part = ClassMosaicDataset(part, mosaic_prob)
        if class_words and dataset_id in OFFICIAL_CLASS_WORDS:
            part = ClassWord(part, OFFICIAL_CLASS_WORDS[dataset_id])
        return part

    with_parts = getattr(dataset, "with_parts", None)
    if with_parts is not None:
        return with_parts(wrap)
    return wrap(getattr(getattr(dataset, "spec", None), "id", None), dataset)

"""MuSc's ``divide_num`` subsets of a class: a label-free split (default) and the official stratified one.

Mutual scoring compares the images of one subset with each other, so ``divide_num`` subsets cut its
quadratic cost by ``divide_num`` (and change the scores: each image has fewer neighbours).

- ``label_free_split`` (default): the class's indices shuffled by ``random.Random(seed)`` and dealt round
  robin, so the subsets differ in size by at most one. It reads nothing but the number of images.
- ``official_split`` reproduces ``datasets/mvtec.py`` ``sub_datasets`` (reference/musc.md "divide_num"):
  ``random.seed(42)``, then per anomaly type (types sorted, each type's files sorted) shuffle the type's
  indices, cut them into chunks of ``divide_num``, and subset ``t`` takes element ``t`` of every chunk
  that has one. The anomaly type is the image's ground-truth defect folder, so this split is **label
  information**: every subset gets its share of each defect type. It exists to compare with the paper;
  a result that used it says so (the detector's ``subsets`` option, recorded in its config).

Here the files of a type are taken in dataset order, which is sample-id order; the catalog's sample ids
are the image paths, so this is the official sorted file order for the MVTec-AD-layout datasets. For
VisA the official split iterates ``meta.json`` order with types ``Anomaly``/``Normal`` as they first
appear there; this split sorts (``anomaly`` < ``good``), so a VisA ``official`` split can differ in which
images share a subset. With ``divide_num = 1`` both give the whole class in dataset order, as the official
code (which skips ``sub_datasets`` then).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["SPLITS", "label_free_split", "official_split"]

SPLITS = ("label-free", "official")


def label_free_split(n: int, divide_num: int, seed: int = 42) -> list[list[int]]:
    """``divide_num`` subsets of ``range(n)``: shuffled with ``seed``, dealt round robin, each sorted."""
    if divide_num == 1:
        return [list(range(n))]
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[t::divide_num]) for t in range(divide_num)]


def official_split(defect_types: Sequence[str], divide_num: int, seed: int = 42) -> list[list[int]]:
    """The official stratified subsets of images whose ground-truth types are ``defect_types`` (in
    dataset order); subset ``t`` lists its indices in the official order (type by type, shuffled)."""
    n = len(defect_types)
    if divide_num == 1:
        return [list(range(n))]
    rng = random.Random(seed)  # the official random.seed(seed) before the loop over types
    by_type: dict[str, list[int]] = {}
    for index, kind in enumerate(defect_types):
        by_type.setdefault(kind, []).append(index)
    subsets: list[list[int]] = [[] for _ in range(divide_num)]
    for kind in sorted(by_type):
        indices = by_type[kind]
        rng.shuffle(indices)
        for start in range(0, len(indices), divide_num):
            chunk = indices[start : start + divide_num]
            for t, index in enumerate(chunk):
                subsets[t].append(index)
    return subsets

"""The divide_num subsets: the official stratified split worked by hand, the label-free split."""

from __future__ import annotations

import random

import pytest

from zsad_bench.musc.subsets import label_free_split, official_split

# Ten images in dataset order: blob 0-2, good 3-6, scratch 7-9. With random.seed(42) the official code
# shuffles the types in sorted order, one generator for all: blob -> [1, 0, 2], good -> [6, 4, 5, 3],
# scratch -> [8, 9, 7] (checked below). Cut into chunks of divide_num, subset t takes element t of each.
TYPES = ["blob"] * 3 + ["good"] * 4 + ["scratch"] * 3


def test_the_shuffles_the_hand_worked_example_uses():
    rng = random.Random(42)
    shuffled = []
    for indices in ([0, 1, 2], [3, 4, 5, 6], [7, 8, 9]):
        rng.shuffle(indices)
        shuffled.append(indices)
    assert shuffled == [[1, 0, 2], [6, 4, 5, 3], [8, 9, 7]]


def test_official_split_in_three_by_hand():
    # blob [1, 0, 2]; good [6, 4, 5] [3]; scratch [8, 9, 7]
    assert official_split(TYPES, 3) == [[1, 6, 3, 8], [0, 4, 9], [2, 5, 7]]


def test_official_split_in_two_by_hand():
    # blob [1, 0] [2]; good [6, 4] [5, 3]; scratch [8, 9] [7]
    assert official_split(TYPES, 2) == [[1, 2, 6, 5, 8, 7], [0, 4, 3, 9]]


def test_official_split_sorts_the_types_whatever_their_dataset_order():
    # the same images listed scratch, good, blob: the types are still shuffled blob, good, scratch
    order = list(range(7, 10)) + list(range(3, 7)) + list(range(3))
    types = [TYPES[i] for i in order]
    position = {image: row for row, image in enumerate(order)}
    expected = [[position[i] for i in subset] for subset in official_split(TYPES, 3)]
    assert official_split(types, 3) == expected


def test_one_subset_is_the_whole_class_in_dataset_order():
    assert official_split(TYPES, 1) == label_free_split(10, 1) == [list(range(10))]


@pytest.mark.parametrize(("n", "divide_num"), [(10, 3), (16, 2), (7, 7), (3000, 4)])
def test_label_free_split_is_a_balanced_partition(n, divide_num):
    parts = label_free_split(n, divide_num)
    assert sorted(i for p in parts for i in p) == list(range(n))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert all(p == sorted(p) for p in parts)
    assert label_free_split(n, divide_num) == parts  # seeded
    if n > divide_num:
        assert label_free_split(n, divide_num, seed=1) != parts


def test_label_free_split_by_hand():
    # random.Random(42) shuffles range(10) to this order; subset t takes every third from position t
    order = list(range(10))
    random.Random(42).shuffle(order)
    assert label_free_split(10, 3) == [sorted(order[0::3]), sorted(order[1::3]), sorted(order[2::3])]

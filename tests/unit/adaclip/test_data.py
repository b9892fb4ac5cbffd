"""AdaCLIP's official data conventions: the class word of a single-class dataset in evaluation (through
``begin_dataset``, which the loop calls) and in training (per auxiliary part), and the MVTec-only mosaic of
four distinct images of a class that keeps the item's label."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zsad_bench import load_dataset
from zsad_bench.adaclip import AdaCLIP
from zsad_bench.adaclip.data import OFFICIAL_CLASS_WORDS, ClassWord, official_training_data
from zsad_bench.data.synthetic import SPEC
from zsad_bench.engine.checkpoint import AuxiliaryData
from zsad_bench.ops.augment import ClassMosaicDataset
from zsad_bench.protocols import default


@pytest.fixture(scope="module")
def model() -> AdaCLIP:
    return AdaCLIP(backbone="test-tiny", image_size=64).eval()


def test_the_word_of_a_single_class_dataset_comes_from_its_id(model):
    model.begin_dataset("cvc-colondb")
    assert model.prompt_word("colon") == "ColonDB"
    model.begin_dataset("cvc-clinicdb")
    assert model.prompt_word("colon") == "ClinicDB"
    model.begin_dataset("brainmri")
    assert model.prompt_word("brain") == "brain_mri"
    model.begin_dataset("mvtec-ad")  # multi-class: the folder name
    assert model.prompt_word("metal nut") == "metal_nut"
    model.begin_dataset("")
    assert model.prompt_word("metal nut") == "metal_nut"
    assert (
        AdaCLIP(backbone="test-tiny", image_size=64, folder_names=False).prompt_word("metal nut")
        == "metal nut"
    )
    chosen = AdaCLIP(backbone="test-tiny", image_size=64, prompt_class="Kvasir")
    chosen.begin_dataset("cvc-colondb")
    assert chosen.prompt_word("colon") == "Kvasir"  # an explicit word wins


def test_begin_dataset_restarts_the_official_kmeans_sequence():
    model = AdaCLIP(backbone="test-tiny", image_size=64, kmeans_order="official")
    first = model.cluster.state.randint(1 << 30)
    model.cluster.state.randint(1 << 30)
    model.begin_dataset("visa")
    assert model.cluster.state.randint(1 << 30) == first


def test_the_loop_tells_the_model_its_dataset(session_data_root, monkeypatch):
    from zsad_bench.engine import evaluate

    seen = []
    model = AdaCLIP(backbone="test-tiny", image_size=64, use_hsf=False)
    monkeypatch.setattr(model, "begin_dataset", seen.append)
    dataset = load_dataset(
        "synthetic", transform=model.transform(), mask_size=32, root=session_data_root, classes=["stripes"]
    )
    evaluate(model, dataset, default.with_overrides(eval_size=32), num_workers=0, progress=False)
    assert seen == ["synthetic"]


@pytest.fixture(scope="module")
def parts(session_data_root):
    def part(dataset_id):
        spec = dataclasses.replace(SPEC, id=dataset_id)
        dataset = load_dataset(
            "synthetic", transform=lambda im: torch.zeros(1), mask_size=16, root=session_data_root
        )
        dataset.spec = spec
        return dataset

    return part


def test_training_parts_get_the_mosaic_and_the_class_word(parts):
    mvtec, colon = parts("mvtec-ad"), parts("cvc-colondb")
    data = official_training_data(AuxiliaryData(["mvtec-ad", "cvc-colondb"], [mvtec, colon]), 0.2, True)
    first, second = data.parts
    assert isinstance(first, ClassMosaicDataset) and first.prob == 0.2
    assert isinstance(second, ClassWord) and second.word == OFFICIAL_CLASS_WORDS["cvc-colondb"]
    assert data[len(mvtec)]["prompt_name"] == "ColonDB"
    assert data.augmented  # the mosaic changes items every epoch
    plain = official_training_data(AuxiliaryData(["visa"], [parts("visa")]), 0.2, True)
    assert not plain.augmented and not isinstance(plain.parts[0], (ClassMosaicDataset, ClassWord))
    single = official_training_data(mvtec, 0.0, True)  # one dataset, mosaic off
    assert single is mvtec


def test_the_class_mosaic_draws_four_distinct_images_of_the_class_and_keeps_the_label(parts):
    mvtec = parts("mvtec-ad")
    mosaic = ClassMosaicDataset(mvtec, 1.0)
    manifest = mvtec.manifest
    torch.manual_seed(0)
    for index in (0, len(mvtec) - 1):
        row = manifest.iloc[index]
        item = mosaic[index]
        sources = item["mosaic_of"].tolist()
        assert len(set(sources)) == 4
        assert set(manifest.class_name.iloc[sources]) == {row.class_name}
        assert item["label"] == int(row.label)  # the official keeps the replaced item's label

"""Converters of the 10 medical datasets, run on miniature copies of their raw layouts.

Each builder writes the folder names, file-name patterns, CSV header and oddities of the real archive
(reference/datasets.md sections 2.2 #8-#17 and 6) with tiny real images, and returns the folder the
archive extracts into; ``EXPECTED`` holds the (normal, anomalous) counts per split it was built with.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest
from PIL import Image

from zsad_bench.data.catalog import (
    br35h,
    brainmri,
    covid19,
    cvc_clinicdb,
    cvc_colondb,
    endo,
    headct,
    isic,
    kvasir,
    tn3k,
)
from zsad_bench.data.manifest import validate_manifest
from zsad_bench.errors import ZsadError

# -- builders: miniature raw layouts ------------------------------------------------------------------


@cache
def _image_bytes(suffix: str, mode: str) -> bytes:
    buffer = io.BytesIO()
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}[suffix.lower()]
    Image.new(mode, (8, 8), 255 if mode == "L" else (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def _images(folder: Path, names: list[str], mode: str = "RGB") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(_image_bytes(PurePosixPath(name).suffix, mode))


def build_headct_kaggle(tmp: Path) -> Path:
    """Kaggle ``head_ct/head_ct/NNN.png`` + ``labels.csv`` whose header has a space: ``id, hemorrhage``."""
    root = tmp / "head-ct-hemorrhage"
    _images(root / "head_ct" / "head_ct", [f"{i:03d}.png" for i in range(5)], mode="L")
    (root / "labels.csv").write_text("id, hemorrhage\n0,1\n1,1\n2,0\n3,0\n4,0\n")
    return root


def build_headct_anomalyclip(tmp: Path) -> Path:
    root = tmp / "HeadCT_anomaly_detection"
    _images(root / "brain" / "test" / "good", ["100.png", "101.png", "102.png"], mode="L")
    _images(root / "brain" / "test" / "hemorrhage", ["000.png", "001.png"], mode="L")
    return root


def build_brainmri(tmp: Path) -> Path:
    """``brain_tumor_dataset/{no,yes}`` plus the zip's duplicate ``no/``, ``yes/`` at the top level."""
    root = tmp / "brain-mri"
    normal, tumour = ["1 no.jpeg", "N1.JPG", "No11.jpg"], ["Y1.jpg", "Y2.JPG"]
    for top in (root / "brain_tumor_dataset", root):
        _images(top / "no", normal)
        _images(top / "yes", tumour)
    return root


def build_br35h(tmp: Path) -> Path:
    """``{yes,no,pred}/*.jpg``; ``pred`` holds unlabelled images."""
    root = tmp / "br35h"
    _images(root / "no", ["no0.jpg", "no1.jpg", "no2.jpg"])
    _images(root / "yes", ["y0.jpg", "y1.jpg"])
    _images(root / "pred", ["pred0.jpg", "pred1.jpg"])
    return root


def build_covid_first(tmp: Path) -> Path:
    """First release: ``NORMAL/``, ``COVID-19/``, ``Viral Pneumonia/`` and metadata spreadsheets."""
    root = tmp / "COVID-19 Radiography Database"
    _images(root / "NORMAL", [f"NORMAL ({i}).png" for i in range(1, 4)], mode="L")
    _images(root / "COVID-19", ["COVID-19 (1).png", "COVID-19 (2).png"], mode="L")
    _images(root / "Viral Pneumonia", ["Viral Pneumonia (1).png"], mode="L")
    for name in ("COVID-19.metadata.xlsx", "NORMAL.metadata.xlsx", "Viral Pneumonia.matadata.xlsx"):
        (root / name).write_bytes(b"PK\x03\x04 not a real workbook")
    return root


def build_covid_later(tmp: Path) -> Path:
    """Later releases: ``<class>/{images,masks}`` for four classes, lung masks included, plus xlsx."""
    root = tmp / "COVID-19_Radiography_Dataset"
    for cls, n in (("Normal", 3), ("COVID", 2), ("Lung_Opacity", 2), ("Viral Pneumonia", 1)):
        names = [f"{cls}-{i}.png" for i in range(1, n + 1)]
        _images(root / cls / "images", names, mode="L")
        _images(root / cls / "masks", names, mode="L")
        (root / f"{cls}.metadata.xlsx").write_bytes(b"PK\x03\x04")
    return root


def build_isic(tmp: Path) -> Path:
    """The two official zips extracted side by side; masks are ``ISIC_<id>_Segmentation.png``."""
    root = tmp / "isic2016"
    ids = ["ISIC_0000003", "ISIC_0000012", "ISIC_0000013"]
    _images(root / "ISBI2016_ISIC_Part1_Test_Data", [f"{i}.jpg" for i in ids])
    _images(root / "ISBI2016_ISIC_Part1_Test_GroundTruth", [f"{i}_Segmentation.png" for i in ids], mode="L")
    return root


def build_isic_anomalyclip(tmp: Path) -> Path:
    root = tmp / "ISIC"
    ids = ["ISIC_0000003", "ISIC_0000012", "ISIC_0000013"]
    _images(root / "skin" / "test" / "defect", [f"{i}.jpg" for i in ids])
    _images(
        root / "skin" / "ISBI2016_ISIC_Part1_Test_GroundTruth",
        [f"{i}_Segmentation.png" for i in ids],
        mode="L",
    )
    return root


POLYP_SETS = {"CVC-ClinicDB": 3, "CVC-ColonDB": 2, "Kvasir": 4, "CVC-300": 2, "ETIS-LaribPolypDB": 2}


def build_polyp_zip(tmp: Path) -> Path:
    """The figshare Polyp_DataSet_zip: five datasets as ``<name>/{images,masks}`` with equal names."""
    root = tmp / "Polyp_DataSet"
    for name, n in POLYP_SETS.items():
        stems = [f"cju{i}k{name.lower()}" if name == "Kvasir" else str(i + 1) for i in range(n)]
        _images(root / name / "images", [f"{s}.png" for s in stems])
        _images(root / name / "masks", [f"{s}.png" for s in stems], mode="L")
    return root


def build_kvasir_simula(tmp: Path) -> Path:
    """Simula zip: ``Kvasir-SEG/{images,masks}/*.jpg`` + ``kavsir_bboxes.json``."""
    root = tmp / "kvasir-seg"
    stems = ["cju0qkwl35piu0993l0dewei2", "cju0qoxqj9q6s0835b43399p4", "cju0roawvklrq0799vmjorwfv"]
    _images(root / "Kvasir-SEG" / "images", [f"{s}.jpg" for s in stems])
    _images(root / "Kvasir-SEG" / "masks", [f"{s}.jpg" for s in stems], mode="L")
    (root / "Kvasir-SEG" / "kavsir_bboxes.json").write_text('{"cju0qkwl35piu0993l0dewei2": {}}')
    return root


def build_endo(tmp: Path) -> Path:
    """``EndoTect_2020_Segmentation_Test_Dataset/{images,masks}``; masks are .png, images .jpg."""
    root = tmp / "endo"
    stems = ["0a2d4a6f-6c8f", "1b0e7c1e-9b2d", "2c3f5d10-aa01"]
    folder = root / "EndoTect_2020_Segmentation_Test_Dataset"
    _images(folder / "images", [f"{s}.jpg" for s in stems])
    _images(folder / "masks", [f"{s}.png" for s in stems], mode="L")
    return root


def build_tn3k(tmp: Path) -> Path:
    """Google Drive zip: ``Thyroid Dataset/tn3k/{test,trainval}-{image,mask}/NNNN.jpg`` + csv/json."""
    root = tmp / "Thyroid Dataset"
    tn3k_dir = root / "tn3k"
    for prefix, n in (("test", 3), ("trainval", 2)):
        names = [f"{i:04d}.jpg" for i in range(n)]
        _images(tn3k_dir / f"{prefix}-image", names, mode="L")
        _images(tn3k_dir / f"{prefix}-mask", names, mode="L")
    (tn3k_dir / "label4test.csv").write_text("id,label\n0,1\n1,0\n2,1\n")
    for k in range(5):
        (tn3k_dir / f"tn3k-trainval-fold{k}.json").write_text('{"train": [0], "val": [1]}')
    return root


# -- the cases ----------------------------------------------------------------------------------------

Builder = Callable[[Path], Path]

# case -> (module, builder, split -> (normal, anomalous))
CASES = {
    "headct-kaggle": (headct, build_headct_kaggle, {"test": (3, 2)}),
    "headct-anomalyclip": (headct, build_headct_anomalyclip, {"test": (3, 2)}),
    "brainmri": (brainmri, build_brainmri, {"test": (3, 2)}),
    "br35h": (br35h, build_br35h, {"test": (3, 2)}),
    "covid19-first": (covid19, build_covid_first, {"test": (3, 2)}),
    "covid19-later": (covid19, build_covid_later, {"test": (3, 2)}),
    "isic": (isic, build_isic, {"test": (0, 3)}),
    "isic-anomalyclip": (isic, build_isic_anomalyclip, {"test": (0, 3)}),
    "cvc-clinicdb": (cvc_clinicdb, build_polyp_zip, {"test": (0, 3)}),
    "cvc-colondb": (cvc_colondb, build_polyp_zip, {"test": (0, 2)}),
    "kvasir-figshare": (kvasir, build_polyp_zip, {"test": (0, 4)}),
    "kvasir-simula": (kvasir, build_kvasir_simula, {"test": (0, 3)}),
    "endo": (endo, build_endo, {"test": (0, 3)}),
    "tn3k": (tn3k, build_tn3k, {"test": (0, 3), "train": (0, 2)}),
}
MASKED = [name for name, (module, _, _) in CASES.items() if module.SPEC.has_masks]
MODULES = [headct, brainmri, br35h, covid19, isic, cvc_clinicdb, cvc_colondb, kvasir, endo, tn3k]

MASK_SUFFIX = {"isic": "_Segmentation"}


def _counts(table: pd.DataFrame) -> dict[str, tuple[int, int]]:
    return {
        str(split): (int((group["label"] == 0).sum()), int((group["label"] == 1).sum()))
        for split, group in table.groupby("split")
    }


def _stem(path: str) -> str:
    return PurePosixPath(path).stem


# -- every dataset ------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("level", ["top", "parent"])
def test_convert_counts_and_valid_manifest(tmp_path: Path, case: str, level: str) -> None:
    module, build, expected = CASES[case]
    root = build(tmp_path)
    raw = root if level == "top" else tmp_path
    table = validate_manifest(module.SPEC.convert(raw), raw)  # also checks that every file exists
    assert _counts(table) == expected
    (class_name,) = module.SPEC.class_names
    assert set(table["class_name"]) == {class_name}
    assert set(table["prompt_name"]) == {class_name}
    if module.SPEC.has_masks:
        anomalous = table[table["label"] == 1]
        suffix = MASK_SUFFIX.get(module.SPEC.id, "")
        assert anomalous["mask_path"].notna().all()
        for image, mask in zip(anomalous["image_path"], anomalous["mask_path"], strict=True):
            assert _stem(mask) == _stem(image) + suffix
    else:
        assert table["mask_path"].isna().all()


@pytest.mark.parametrize("case", MASKED)
def test_missing_mask_names_the_image(tmp_path: Path, case: str) -> None:
    module, build, _ = CASES[case]
    root = build(tmp_path)
    table = module.SPEC.convert(root)
    victim = table[table["label"] == 1].iloc[0]
    (root / victim["mask_path"]).unlink()
    with pytest.raises(ZsadError, match=re.escape(PurePosixPath(victim["image_path"]).name)):
        module.SPEC.convert(root)


@pytest.mark.parametrize("case", MASKED)
def test_extra_mask_names_the_mask(tmp_path: Path, case: str) -> None:
    module, build, _ = CASES[case]
    root = build(tmp_path)
    mask = root / module.SPEC.convert(root)["mask_path"].dropna().iloc[0]
    suffix = MASK_SUFFIX.get(module.SPEC.id, "")
    extra = mask.with_name(f"orphan{suffix}{mask.suffix}")
    shutil.copy(mask, extra)
    with pytest.raises(ZsadError, match=re.escape(extra.name)):
        module.SPEC.convert(root)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.SPEC.id)
def test_nothing_found_is_an_error_naming_the_dataset(tmp_path: Path, module) -> None:
    _images(tmp_path / "unrelated" / "images", ["a.png"])
    with pytest.raises(ZsadError, match=module.SPEC.id):
        module.SPEC.convert(tmp_path)


# -- the specs ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.SPEC.id)
def test_spec(module) -> None:
    spec = module.SPEC
    (class_name,) = spec.class_names
    assert spec.domain == "medical"
    assert spec.expected_total == spec.expected_counts[class_name]
    assert spec.converter is module.convert  # a plain function, defined beside its spec
    assert spec.prompt_name(class_name) == class_name
    assert spec.sources and spec.licence and spec.citation and spec.homepage.startswith("https://")
    kinds = [s.kind for s in spec.sources]
    assert kinds == sorted(kinds, key=["https", "gdrive", "kaggle", "hf"].index)
    assert all(s.kind in ("https", "gdrive", "kaggle", "hf") for s in spec.sources)


def test_spec_facts() -> None:
    ids = [m.SPEC.id for m in MODULES]
    assert ids == [
        "headct", "brainmri", "br35h", "covid19", "isic",
        "cvc-clinicdb", "cvc-colondb", "kvasir", "endo", "tn3k",
    ]  # fmt: skip
    classes = ["brain"] * 3 + ["chest", "skin"] + ["colon"] * 4 + ["thyroid"]
    assert [m.SPEC.class_names[0] for m in MODULES] == classes
    assert [m.SPEC.expected_total for m in MODULES] == [
        (100, 100), (98, 155), (1500, 1500), (1341, 219), (0, 379), (0, 612), (0, 380), (0, 1000), (0, 200),
        (0, 614),
    ]  # fmt: skip
    assert [m.SPEC.has_masks for m in MODULES] == [False] * 4 + [True] * 6
    images, truth = isic.SPEC.sources[:2]
    assert (images.kind, truth.kind) == ("https", "https")
    assert images.filename == "ISBI2016_ISIC_Part1_Test_Data.zip"
    assert truth.filename == "ISBI2016_ISIC_Part1_Test_GroundTruth.zip"
    assert (images.note, truth.note) == ("part 1 of 2: images", "part 2 of 2: ground truth")
    assert images.sha256 is None and truth.sha256 is None


# -- the oddities of each layout ------------------------------------------------------------------------


def test_headct_kaggle_labels(tmp_path: Path) -> None:
    root = build_headct_kaggle(tmp_path)
    table = headct.SPEC.convert(root).set_index("image_path")
    assert table.loc["head_ct/head_ct/000.png", "defect_type"] == "hemorrhage"
    assert table.loc["head_ct/head_ct/004.png", "label"] == 0


def test_headct_image_without_label_is_an_error(tmp_path: Path) -> None:
    root = build_headct_kaggle(tmp_path)
    _images(root / "head_ct" / "head_ct", ["005.png"], mode="L")
    with pytest.raises(ZsadError, match=r"005\.png"):
        headct.SPEC.convert(root)


def test_headct_label_without_image_is_an_error(tmp_path: Path) -> None:
    root = build_headct_kaggle(tmp_path)
    (root / "head_ct" / "head_ct" / "003.png").unlink()
    with pytest.raises(ZsadError, match="003"):
        headct.SPEC.convert(root)


def test_headct_labels_csv_without_hemorrhage_column(tmp_path: Path) -> None:
    root = build_headct_kaggle(tmp_path)
    (root / "labels.csv").write_text("id,label\n0,1\n")
    with pytest.raises(ZsadError, match="hemorrhage"):
        headct.SPEC.convert(root)


def test_brainmri_reads_only_the_nested_copy(tmp_path: Path) -> None:
    table = brainmri.SPEC.convert(build_brainmri(tmp_path))
    assert table["image_path"].str.startswith("brain_tumor_dataset/").all()
    assert set(table.loc[table["label"] == 1, "defect_type"]) == {"tumor"}


def test_brainmri_falls_back_to_top_level_folders(tmp_path: Path) -> None:
    root = build_brainmri(tmp_path)
    shutil.rmtree(root / "brain_tumor_dataset")
    table = brainmri.SPEC.convert(root)
    assert _counts(table) == {"test": (3, 2)}
    assert table["image_path"].str.match(r"(no|yes)/").all()


def test_br35h_excludes_pred(tmp_path: Path) -> None:
    table = br35h.SPEC.convert(build_br35h(tmp_path))
    assert not table["image_path"].str.startswith("pred/").any()


@pytest.mark.parametrize("build", [build_covid_first, build_covid_later])
def test_covid_reads_only_normal_and_covid(tmp_path: Path, build: Builder) -> None:
    table = covid19.SPEC.convert(build(tmp_path))
    folders = {PurePosixPath(p).parts[0] for p in table["image_path"]}
    assert folders in ({"NORMAL", "COVID-19"}, {"Normal", "COVID"})
    assert not table["image_path"].str.contains("/masks/").any()
    assert set(table.loc[table["label"] == 1, "defect_type"]) == {"covid"}


@pytest.mark.parametrize("module", [cvc_clinicdb, cvc_colondb, kvasir], ids=lambda m: m.SPEC.id)
def test_polyp_zip_picks_its_own_folder(tmp_path: Path, module) -> None:
    root = build_polyp_zip(tmp_path)
    table = module.SPEC.convert(root)
    folder = {"cvc-clinicdb": "CVC-ClinicDB", "cvc-colondb": "CVC-ColonDB", "kvasir": "Kvasir"}[
        module.SPEC.id
    ]
    assert table["image_path"].str.startswith(f"{folder}/images/").all()
    assert table["mask_path"].str.startswith(f"{folder}/masks/").all()
    # pointed at the dataset folder itself
    alone = module.SPEC.convert(root / folder)
    assert len(alone) == POLYP_SETS[folder]
    assert alone["image_path"].str.startswith("images/").all()


def test_polyp_converter_does_not_take_a_sibling_dataset(tmp_path: Path) -> None:
    root = build_polyp_zip(tmp_path)
    shutil.rmtree(root / "CVC-ColonDB")
    with pytest.raises(ZsadError, match="CVC-ColonDB"):
        cvc_colondb.SPEC.convert(root)


def test_kvasir_simula_ignores_the_bbox_json(tmp_path: Path) -> None:
    table = kvasir.SPEC.convert(build_kvasir_simula(tmp_path))
    assert not table["image_path"].str.endswith(".json").any()
    assert table["image_path"].str.startswith("Kvasir-SEG/images/").all()


def test_endo_pairs_by_stem_across_extensions(tmp_path: Path) -> None:
    table = endo.SPEC.convert(build_endo(tmp_path))
    assert table["image_path"].str.endswith(".jpg").all()
    assert table["mask_path"].str.endswith(".png").all()


def test_tn3k_splits(tmp_path: Path) -> None:
    root = build_tn3k(tmp_path)
    table = tn3k.SPEC.convert(root)
    test_rows = table[table["split"] == "test"]
    assert test_rows["image_path"].str.startswith("tn3k/test-image/").all()
    assert test_rows["mask_path"].str.startswith("tn3k/test-mask/").all()
    assert table.loc[table["split"] == "train", "image_path"].str.startswith("tn3k/trainval-image/").all()
    assert set(table["defect_type"]) == {"nodule"}


def test_tn3k_test_only(tmp_path: Path) -> None:
    root = build_tn3k(tmp_path)
    shutil.rmtree(root / "tn3k" / "trainval-image")
    shutil.rmtree(root / "tn3k" / "trainval-mask")
    assert _counts(tn3k.SPEC.convert(root)) == {"test": (0, 3)}


def test_tn3k_half_a_split_is_an_error(tmp_path: Path) -> None:
    root = build_tn3k(tmp_path)
    shutil.rmtree(root / "tn3k" / "trainval-mask")
    with pytest.raises(ZsadError, match="trainval-mask"):
        tn3k.SPEC.convert(root)

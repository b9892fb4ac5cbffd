"""The 7 industrial converters on miniature copies of their raw layouts (fixtures in conftest.py)."""

from __future__ import annotations

import importlib
import re
import shutil
from pathlib import Path, PurePosixPath

import pandas as pd
import pytest

from zsad_bench.data.manifest import validate_manifest
from zsad_bench.data.spec import DatasetSpec
from zsad_bench.errors import ZsadError

# dataset id -> (catalog module, conftest fixture)
DATASETS = {
    "mvtec-ad": ("mvtec_ad", "mvtec_raw"),
    "visa": ("visa", "visa_raw"),
    "mpdd": ("mpdd", "mpdd_raw"),
    "btad": ("btad", "btad_raw"),
    "sdd": ("sdd", "sdd_raw"),
    "dagm": ("dagm", "dagm_raw"),
    "dtd-synthetic": ("dtd_synthetic", "dtd_raw"),
}
MVTEC_LIKE = ("mvtec-ad", "mpdd", "btad", "sdd", "dtd-synthetic")  # masks in ground_truth/<defect>/

# Test (normal, anomalous) of the whole dataset, reference/datasets.md section 2.1.
TOTALS = {
    "mvtec-ad": (467, 1258),
    "visa": (962, 1200),
    "mpdd": (176, 282),
    "btad": (451, 290),
    "sdd": (181, 74),
    "dagm": (6996, 1054),
    "dtd-synthetic": (357, 947),
}
SOURCE_KINDS = {"https", "gdrive", "kaggle", "hf"}


def _module(dataset_id: str):
    return importlib.import_module(f"zsad_bench.data.catalog.{DATASETS[dataset_id][0]}")


def _layout(request: pytest.FixtureRequest, dataset_id: str):
    return request.getfixturevalue(DATASETS[dataset_id][1])


def _counts(df: pd.DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    return {
        (split, cls): (int((g["label"] == 0).sum()), int((g["label"] == 1).sum()))
        for (split, cls), g in df.groupby(["split", "class_name"])
    }


def _first_anomalous_test_row(df: pd.DataFrame) -> pd.Series:
    return df[(df["split"] == "test") & (df["label"] == 1)].iloc[0]


# -- specs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_spec_is_complete_and_consistent(dataset_id: str) -> None:
    module = _module(dataset_id)
    spec: DatasetSpec = module.SPEC
    assert spec.id == dataset_id
    assert spec.domain == "industrial" and spec.has_masks
    assert all([spec.title, spec.modality, spec.licence, spec.citation, spec.homepage])
    assert spec.converter is module.convert  # a plain function, defined beside its spec
    assert len(set(spec.class_names)) == len(spec.classes) and all(c.prompt_name for c in spec.classes)
    assert set(spec.expected_counts) <= set(spec.class_names)

    assert spec.sources, "every dataset needs at least one source"
    for source in spec.sources:
        assert source.kind in SOURCE_KINDS
        if source.kind == "https":
            assert source.location.startswith("https://")
            assert re.fullmatch(r"[0-9a-f]{64}", source.sha256 or "")

    total = spec.expected_total
    if total is None:  # only where every class is counted
        assert set(spec.expected_counts) == set(spec.class_names)
        total = tuple(sum(c[i] for c in spec.expected_counts.values()) for i in (0, 1))
    assert total == TOTALS[dataset_id]
    if set(spec.expected_counts) == set(spec.class_names):
        assert tuple(sum(c[i] for c in spec.expected_counts.values()) for i in (0, 1)) == total


def test_specs_follow_the_protocol_notes() -> None:
    # SDD: only AnomalyCLIP's Drive copy gives (181, 74); the KolektorSDD zip re-derives another split.
    assert [s.kind for s in _module("sdd").SPEC.sources] == ["gdrive"]
    assert _module("sdd").SPEC.prompt_name("electrical commutators") == "electrical commutators"
    # DAGM: AdaCLIP's Drive archive re-splits Train+Test, so only Kaggle is a source.
    assert [s.kind for s in _module("dagm").SPEC.sources] == ["kaggle"]
    assert _module("dagm").SPEC.expected_counts == {}
    # MPDD: the official SharePoint folder is named, though not downloadable.
    assert "sharepoint.com" in _module("mpdd").SPEC.sources[0].note
    assert [c.name for c in _module("dtd-synthetic").SPEC.classes][:2] == ["Woven_001", "Woven_127"]


# -- conversion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_convert_finds_every_image_with_its_mask(dataset_id: str, request: pytest.FixtureRequest) -> None:
    layout = _layout(request, dataset_id)
    spec = _module(dataset_id).SPEC
    df = validate_manifest(_module(dataset_id).SPEC.convert(layout.root), folder=layout.root)

    assert _counts(df) == layout.counts
    assert set(df["defect_type"]) == layout.defect_types
    assert set(df["prompt_name"]) == {spec.prompt_name(c) for c in df["class_name"]}
    assert df.loc[df["label"] == 0, "mask_path"].isna().all()
    anomalous = df[df["label"] == 1]
    assert anomalous["mask_path"].notna().all()
    for image, mask, cls in anomalous[["image_path", "mask_path", "class_name"]].itertuples(index=False):
        # paired by name: the mask's stem is the image's stem plus the dataset's suffix
        assert PurePosixPath(mask).stem == PurePosixPath(image).stem + layout.mask_suffix[cls], (image, mask)


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_convert_from_top_folder_or_its_parent(dataset_id: str, request: pytest.FixtureRequest) -> None:
    layout = _layout(request, dataset_id)
    convert = _module(dataset_id).SPEC.convert
    from_top = validate_manifest(convert(layout.root), folder=layout.root)
    from_parent = validate_manifest(convert(layout.parent), folder=layout.parent)

    expected = [
        {
            k: f"{layout.top}/{v}" if k in ("sample_id", "image_path", "mask_path") and v else v
            for k, v in r.items()
        }
        for r in from_top.to_dict("records")
    ]
    assert from_parent.to_dict("records") == expected


@pytest.mark.parametrize("dataset_id", DATASETS)
def test_convert_of_a_folder_without_the_dataset_fails(dataset_id: str, tmp_path: Path) -> None:
    (tmp_path / "unrelated" / "test").mkdir(parents=True)
    with pytest.raises(ZsadError, match=dataset_id):
        _module(dataset_id).SPEC.convert(tmp_path)


# -- pairing by name -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset_id", MVTEC_LIKE)
def test_missing_mask_is_an_error_naming_the_image(dataset_id: str, request: pytest.FixtureRequest) -> None:
    layout = _layout(request, dataset_id)
    convert = _module(dataset_id).SPEC.convert
    target = _first_anomalous_test_row(validate_manifest(convert(layout.root)))
    (layout.root / target["mask_path"]).unlink()
    with pytest.raises(ZsadError, match=re.escape(PurePosixPath(target["image_path"]).name)):
        convert(layout.root)


@pytest.mark.parametrize("dataset_id", MVTEC_LIKE)
def test_mask_without_image_is_an_error_naming_the_mask(
    dataset_id: str, request: pytest.FixtureRequest
) -> None:
    # Dropping an image leaves every later mask one place off: a positional pairing would silently
    # give the next image this mask; pairing by name refuses.
    layout = _layout(request, dataset_id)
    convert = _module(dataset_id).SPEC.convert
    target = _first_anomalous_test_row(validate_manifest(convert(layout.root)))
    (layout.root / target["image_path"]).unlink()
    with pytest.raises(ZsadError, match=re.escape(PurePosixPath(target["mask_path"]).name)):
        convert(layout.root)


@pytest.mark.parametrize("dataset_id", [*MVTEC_LIKE, "dagm"])
def test_extra_mask_is_an_error_naming_it(dataset_id: str, request: pytest.FixtureRequest) -> None:
    layout = _layout(request, dataset_id)
    extra = layout.root / layout.extra_mask
    existing = next(
        p for p in extra.parent.iterdir() if p.suffix == extra.suffix and not p.name.startswith(".")
    )
    shutil.copyfile(existing, extra)
    with pytest.raises(ZsadError, match=re.escape(extra.name)):
        _module(dataset_id).SPEC.convert(layout.parent)


# -- dataset-specific layouts ----------------------------------------------------------------------------


def test_visa_missing_mask_is_an_error_naming_it(visa_raw) -> None:
    from zsad_bench.data.catalog import visa

    mask = visa_raw.root / "pcb1" / "Data" / "Masks" / "Anomaly" / "000.png"
    mask.unlink()
    with pytest.raises(ZsadError, match=re.escape(str(mask))):
        visa.SPEC.convert(visa_raw.parent)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("pcb1,test,anomaly", "pcb1,test,bad", 1), "label 'bad'"),
        (lambda t: t.replace("candle,train", "candles,train", 1), "unknown object 'candles'"),
        (lambda t: t.replace("candle,train", "candle,val", 1), "split 'val'"),
        (lambda t: t.replace("object,split,label,image,mask", "object,split,label,image,mask_path"), "mask"),
    ],
)
def test_visa_rejects_a_malformed_split_csv(visa_raw, edit, message: str) -> None:
    from zsad_bench.data.catalog import visa

    csv = visa_raw.root / "split_csv" / "1cls.csv"
    csv.write_text(edit(csv.read_text()))
    with pytest.raises(ZsadError, match=re.escape(message)):
        visa.SPEC.convert(visa_raw.root)


def test_visa_paths_come_from_the_csv(visa_raw) -> None:
    from zsad_bench.data.catalog import visa

    df = validate_manifest(visa.SPEC.convert(visa_raw.parent))
    row = df[df["sample_id"] == "VisA_20220922/candle/Data/Images/Anomaly/001.JPG"].iloc[0]
    assert (row["split"], row["class_name"], row["label"]) == ("test", "candle", 1)
    assert row["mask_path"] == "VisA_20220922/candle/Data/Masks/Anomaly/001.png"
    assert set(df["split"]) == {"train", "test"}
    assert df.loc[df["split"] == "train", "label"].eq(0).all()


def test_btad_accepts_mvtec_style_mask_names(btad_raw) -> None:
    from zsad_bench.data.catalog import btad

    gt = btad_raw.root / "02" / "ground_truth" / "ko"
    (gt / "0000.png").rename(gt / "0000_mask.png")
    df = validate_manifest(btad.SPEC.convert(btad_raw.root))
    assert df.loc[df["class_name"] == "02", "mask_path"].dropna().tolist() == [
        "02/ground_truth/ko/0000_mask.png"
    ]
    assert _counts(df) == btad_raw.counts


def test_btad_normal_folder_ok_is_recorded_as_good(btad_raw) -> None:
    from zsad_bench.data.catalog import btad

    df = validate_manifest(btad.SPEC.convert(btad_raw.parent))
    normal = df[df["label"] == 0]
    assert set(normal["defect_type"]) == {"good"}
    assert all("/ok/" in p for p in normal["image_path"])
    assert not any("__MACOSX" in p or "/._" in p for p in df["image_path"])


def test_dagm_image_without_label_is_normal_and_splits_follow_the_folders(dagm_raw) -> None:
    from zsad_bench.data.catalog import dagm

    (dagm_raw.root / "Class1" / "Test" / "Label" / "0003_label.PNG").unlink()
    df = validate_manifest(dagm.SPEC.convert(dagm_raw.root))
    row = df[df["sample_id"] == "Class1/Test/0003.PNG"].iloc[0]
    assert (row["split"], row["label"], row["defect_type"], row["mask_path"]) == ("test", 0, "good", None)
    assert set(df.loc[df["image_path"].str.contains("/Train/"), "split"]) == {"train"}
    assert not df["image_path"].str.contains("Label").any()
    assert df.loc[df["class_name"] == "Class10", "prompt_name"].unique().tolist() == ["class10"]


def test_dtd_mixed_mask_names_within_a_class_are_an_error(dtd_raw) -> None:
    from zsad_bench.data.catalog import dtd_synthetic

    gt = dtd_raw.root / "Woven_001" / "ground_truth" / "bad"
    (gt / "001_mask.png").rename(gt / "001.png")
    with pytest.raises(ZsadError, match=re.escape("001.png")):
        dtd_synthetic.SPEC.convert(dtd_raw.root)


def test_sdd_class_name_keeps_its_space(sdd_raw) -> None:
    from zsad_bench.data.catalog import sdd

    df = validate_manifest(sdd.SPEC.convert(sdd_raw.parent), folder=sdd_raw.parent)
    assert set(df["class_name"]) == set(df["prompt_name"]) == {"electrical commutators"}
    assert df["image_path"].str.startswith("SDD/electrical commutators/").all()

"""Miniature copies of the raw industrial layouts, written with tiny real image files.

Each fixture extracts a fake "archive" into ``tmp_path`` exactly as the real one extracts (same top
folder, folder names, file-name patterns, extensions and oddities: ``__MACOSX``, AppleDouble files,
``Labels.txt``, a space in the SDD class name) and returns a ``RawLayout`` saying what a converter should
find in it. The test suite runs with ``--import-mode=importlib``, so helpers live here as fixtures.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

SIZE = (8, 8)


@dataclass(frozen=True)
class RawLayout:
    """A raw dataset extracted under ``parent/top`` and what its converter should make of it.

    counts: (split, class) -> (normal, anomalous) images. mask_suffix: class -> what the mask stem adds to
    the image stem. extra_mask: path under ``root`` of a mask that has no image (None: not applicable).
    """

    parent: Path
    top: str
    counts: dict[tuple[str, str], tuple[int, int]]
    defect_types: frozenset[str]
    mask_suffix: dict[str, str] = field(default_factory=dict)
    extra_mask: str | None = None

    @property
    def root(self) -> Path:
        return self.parent / self.top


def write_image(path: Path, fmt: str = "PNG", value: int = 128, mode: str = "RGB") -> Path:
    """An 8x8 image of one colour, in ``fmt`` whatever the extension says (``.JPG``, ``.PNG``, ``.bmp``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, SIZE, value if mode == "L" else (value, value, value)).save(path, format=fmt)
    return path


def write_mask(path: Path, fmt: str = "PNG", value: int = 255) -> Path:
    """An 8x8 greyscale mask with a 2x2 anomalous square of ``value`` (VisA uses small class ids)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mask = Image.new("L", SIZE, 0)
    for xy in ((2, 2), (2, 3), (3, 2), (3, 3)):
        mask.putpixel(xy, value)
    mask.save(path, format=fmt)
    return path


def _mvtec_class(
    cls_dir: Path,
    train: list[str],
    test_good: list[str],
    defects: dict[str, list[str]],
    *,
    normal: str = "good",
    image_ext: str = ".png",
    mask_name: str = "{stem}_mask.png",
) -> None:
    fmt = {".png": "PNG", ".bmp": "BMP", ".jpg": "JPEG"}[image_ext.lower()]
    for stem in train:
        write_image(cls_dir / "train" / normal / f"{stem}{image_ext}", fmt)
    for stem in test_good:
        write_image(cls_dir / "test" / normal / f"{stem}{image_ext}", fmt)
    for defect, stems in defects.items():
        for stem in stems:
            write_image(cls_dir / "test" / defect / f"{stem}{image_ext}", fmt, value=200)
            name = mask_name.format(stem=stem)
            write_mask(cls_dir / "ground_truth" / defect / name, "BMP" if name.endswith(".bmp") else "PNG")


@pytest.fixture
def mvtec_raw(tmp_path: Path) -> RawLayout:
    root = tmp_path / "mvtec_anomaly_detection"
    _mvtec_class(
        root / "bottle",
        ["000", "001"],
        ["000", "001"],
        {"broken_large": ["000", "001"], "contamination": ["000"]},
    )
    _mvtec_class(root / "metal_nut", ["000"], ["000"], {"color": ["000", "001"]})
    (root / "license.txt").write_text("CC BY-NC-SA 4.0\n")
    (root / "readme.txt").write_text("MVTec AD\n")
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "bottle"): (2, 0),
            ("test", "bottle"): (2, 3),
            ("train", "metal_nut"): (1, 0),
            ("test", "metal_nut"): (1, 2),
        },
        frozenset({"good", "broken_large", "contamination", "color"}),
        {"bottle": "_mask", "metal_nut": "_mask"},
        "bottle/ground_truth/broken_large/007_mask.png",
    )


@pytest.fixture
def mpdd_raw(tmp_path: Path) -> RawLayout:
    root = tmp_path / "MPDD"
    _mvtec_class(
        root / "bracket_black", ["000", "001"], ["000"], {"hole": ["000", "001"], "scratches": ["000"]}
    )
    _mvtec_class(root / "tubes", ["000"], ["000"], {"anomalous": ["000", "001"]})
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "bracket_black"): (2, 0),
            ("test", "bracket_black"): (1, 3),
            ("train", "tubes"): (1, 0),
            ("test", "tubes"): (1, 2),
        },
        frozenset({"good", "hole", "scratches", "anomalous"}),
        {"bracket_black": "_mask", "tubes": "_mask"},
        "tubes/ground_truth/anomalous/009_mask.png",
    )


@pytest.fixture
def btad_raw(tmp_path: Path) -> RawLayout:
    """BTAD as the zip extracts: ``.bmp`` images with ``.png`` masks (01), all ``.png`` (02), ``.bmp``
    images and masks (03), named ``0000``; macOS leftovers beside and inside it."""
    root = tmp_path / "BTech_Dataset_transformed"
    bmp_png = {"normal": "ok", "image_ext": ".bmp", "mask_name": "{stem}.png"}
    _mvtec_class(root / "01", ["0000", "0001"], ["0000"], {"ko": ["0000", "0001"]}, **bmp_png)
    _mvtec_class(root / "02", ["0000"], ["0000"], {"ko": ["0000"]}, normal="ok", mask_name="{stem}.png")
    bmp_bmp = {"normal": "ok", "image_ext": ".bmp", "mask_name": "{stem}.bmp"}
    _mvtec_class(root / "03", ["0000"], ["0000", "0001"], {"ko": ["0000"]}, **bmp_bmp)
    # A zip made on macOS: a __MACOSX tree beside the data and AppleDouble files inside it.
    write_image(tmp_path / "__MACOSX" / root.name / "01" / "test" / "ko" / "._0000.bmp", "BMP")
    write_image(root / "01" / "test" / "ko" / "._0001.bmp", "BMP")
    write_mask(root / "01" / "ground_truth" / "ko" / "._0000.png")
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "01"): (2, 0),
            ("test", "01"): (1, 2),
            ("train", "02"): (1, 0),
            ("test", "02"): (1, 1),
            ("train", "03"): (1, 0),
            ("test", "03"): (2, 1),
        },
        frozenset({"good", "ko"}),
        {"01": "", "02": "", "03": ""},
        "01/ground_truth/ko/0009.png",
    )


@pytest.fixture
def sdd_raw(tmp_path: Path) -> RawLayout:
    """AnomalyCLIP's SDD copy: crops named ``kosNN_PartK_<third>`` (DRA's script), a space in the class."""
    root = tmp_path / "SDD"
    _mvtec_class(
        root / "electrical commutators",
        ["kos01_Part0_0", "kos01_Part1_0"],
        ["kos02_Part0_1"],
        {"defect": ["kos01_Part5_1", "kos03_Part2_2"]},
    )
    return RawLayout(
        tmp_path,
        root.name,
        {("train", "electrical commutators"): (2, 0), ("test", "electrical commutators"): (1, 2)},
        frozenset({"good", "defect"}),
        {"electrical commutators": "_mask"},
        "electrical commutators/ground_truth/defect/kos09_Part0_0_mask.png",
    )


def _dagm_half(folder: Path, stems: list[str], defective: list[str]) -> None:
    for stem in stems:
        write_image(folder / f"{stem}.PNG", "PNG", mode="L")
    for stem in defective:
        write_mask(folder / "Label" / f"{stem}_label.PNG")
    lines = ["1"] + [f"{i}\t{int(s in defective)}\t{s}.PNG\t0" for i, s in enumerate(stems, 1)]
    (folder / "Label" / "Labels.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def dagm_raw(tmp_path: Path) -> RawLayout:
    root = tmp_path / "DAGM_KaggleUpload"
    _dagm_half(root / "Class1" / "Train", ["0001", "0002", "0003", "0004"], ["0002"])
    _dagm_half(root / "Class1" / "Test", ["0001", "0002", "0003"], ["0003"])
    _dagm_half(root / "Class10" / "Train", ["0001", "0002"], ["0001"])
    _dagm_half(root / "Class10" / "Test", ["0001", "0002"], ["0001", "0002"])
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "Class1"): (3, 1),
            ("test", "Class1"): (2, 1),
            ("train", "Class10"): (1, 1),
            ("test", "Class10"): (0, 2),
        },
        frozenset({"good", "defect"}),
        {"Class1": "_label", "Class10": "_label"},
        "Class1/Test/Label/0099_label.PNG",
    )


@pytest.fixture
def dtd_raw(tmp_path: Path) -> RawLayout:
    """One class with MVTec-style mask names, one with masks named like their images (issue #45)."""
    root = tmp_path / "DTD-Synthetic"
    _mvtec_class(root / "Woven_001", ["000", "001"], ["000"], {"bad": ["000", "001"]})
    _mvtec_class(root / "Marbled_078", ["000"], ["000"], {"bad": ["000"]}, mask_name="{stem}.png")
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "Woven_001"): (2, 0),
            ("test", "Woven_001"): (1, 2),
            ("train", "Marbled_078"): (1, 0),
            ("test", "Marbled_078"): (1, 1),
        },
        frozenset({"good", "bad"}),
        {"Woven_001": "_mask", "Marbled_078": ""},
        "Woven_001/ground_truth/bad/009_mask.png",
    )


@pytest.fixture
def visa_raw(tmp_path: Path) -> RawLayout:
    """The VisA tar extracted into ``VisA_20220922/``: raw ``Data/`` folders plus ``split_csv/1cls.csv``
    (its real columns; rows in no particular order, as in the official file)."""
    root = tmp_path / "VisA_20220922"
    rows = []
    layout = {
        "candle": (["0000", "0001"], ["0002", "0003"], ["000", "001"]),
        "pcb1": (["0000"], ["0001"], ["000"]),
    }
    for cls, (train, test_normal, anomalies) in layout.items():
        for split, stems in (("train", train), ("test", test_normal)):
            for stem in stems:
                rel = f"{cls}/Data/Images/Normal/{stem}.JPG"
                write_image(root / rel, "JPEG")
                rows.append([cls, split, "normal", rel, ""])
        for stem in anomalies:
            rel, mask = f"{cls}/Data/Images/Anomaly/{stem}.JPG", f"{cls}/Data/Masks/Anomaly/{stem}.png"
            write_image(root / rel, "JPEG", value=200)
            write_mask(root / mask, value=3)  # class-ID mask
            rows.append([cls, "test", "anomaly", rel, mask])
        (root / cls / "image_anno.csv").write_text("image,label,mask\n")
    random.Random(0).shuffle(rows)
    (root / "split_csv").mkdir(parents=True)
    with (root / "split_csv" / "1cls.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["object", "split", "label", "image", "mask"])
        writer.writerows(rows)
    (root / "split_csv" / "2cls_fewshot.csv").write_text("object,split,label,image,mask\n")
    return RawLayout(
        tmp_path,
        root.name,
        {
            ("train", "candle"): (2, 0),
            ("test", "candle"): (2, 2),
            ("train", "pcb1"): (1, 0),
            ("test", "pcb1"): (1, 1),
        },
        frozenset({"good", "anomaly"}),
        {"candle": "", "pcb1": ""},
    )

from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.errors import ZsadError
from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.report import RunResult, leaderboard, per_class_leaderboard
from zsad_bench.report.published import (
    DEFAULT_PUBLISHED,
    compare_published,
    paper_table,
    paper_tables,
    published_methods,
    read_published,
)

PUBLISHED_DIR = Path(__file__).resolve().parents[3] / "leaderboards" / "published"


def test_committed_paper_tables_are_a_fresh_rendering_of_the_csv():
    # One source of truth: the CSV is package data, and the repository's folder holds only renderings.
    assert DEFAULT_PUBLISHED.is_file() and DEFAULT_PUBLISHED.parent.parent.name == "report"
    assert not list(PUBLISHED_DIR.glob("*.csv"))
    tables = paper_tables(read_published())
    assert set(tables) == {"anomalyclip_table1.md", "anomalyclip_table2.md"}
    for name, text in tables.items():
        assert (PUBLISHED_DIR / name).read_text() == text, (
            f"leaderboards/published/{name} is stale: "
            "run 'zsad leaderboard --published --out leaderboards/published'"
        )


def test_the_cli_writes_the_same_tables(tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", "--published", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for path in tmp_path.iterdir():
        assert path.read_text() == (PUBLISHED_DIR / path.name).read_text()


def test_paper_tables_hold_the_printed_cells():
    tables = paper_tables(read_published(DEFAULT_PUBLISHED))
    table1, table2 = tables["anomalyclip_table1.md"], tables["anomalyclip_table2.md"]
    assert "| dataset | CLIP | CLIP-AC | WinCLIP | APRIL-GAN | CoOp | AnomalyCLIP |" in table1
    # WinCLIP† on MVTec AD, image (AUROC, AP) and pixel (AUROC, PRO); CoOp not reported on DTD-Synthetic.
    assert (
        "| mvtec-ad | 74.1 / 87.6 | 71.5 / 86.4 | 91.8† / 96.5† | 86.1† / 93.5† | 88.8 / 94.8 | 91.5 / 96.2 |"
        in (table1)
    )
    assert "| 85.1† / 64.6† |" in table1 and "| – / – | 93.5 / 97.0 |" in table1
    assert "APRIL-GAN: the column the paper labels VAND." in table1
    # Medical: each dataset has one level only, so each appears in one of the two sections.
    assert (
        table2.count("| headct |") == 1 and table2.count("| tn3k |") == 1 and "– not reported" not in table2
    )
    assert "WinCLIP+" not in table1 + table2  # the few-shot rows belong to other sources


GOLDEN_PAPER_TABLE = """\
<!-- Rendered from published_results.csv by `zsad leaderboard --published`; do not edit. -->

# Paper (2024) Table 9: toy

Numbers in percent, as printed in the paper; one row per dataset (zsad-bench ids), one column per
method. Where they come from: README.md next to this file.

## Image level (AUROC / AP)

| dataset | A | B |
|---|---:|---:|
| d1 | 50.0 / 60.5 | 70.25† / – |

## Pixel level (AUROC / PRO)

| dataset | A | B |
|---|---:|---:|
| d2 | 10.0 / 2.0 | – / – |

† from elsewhere.

– not reported.

B: the column the paper labels OLD.
"""


def test_paper_table_golden(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        "source,method,dataset,level,metric,value,note\n"
        "Paper (2024) Table 9,A,d1,image,image_auroc,50.0,\n"
        "Paper (2024) Table 9,A,d1,image,image_ap,60.5,\n"
        "Paper (2024) Table 9,B,d1,image,image_auroc,70.25,† from elsewhere; column labelled OLD\n"
        "Paper (2024) Table 9,A,d2,pixel,pixel_aupro,2.0,\n"
        "Paper (2024) Table 9,A,d2,pixel,pixel_auroc,10.0,\n"
        "Other (2023),A,d1,image,image_auroc,1.0,\n"
    )
    assert paper_table(read_published(path), "Paper (2024) Table 9", "toy") == GOLDEN_PAPER_TABLE
    with pytest.raises(ZsadError, match="no rows of source"):
        paper_table(read_published(path), "Nope")


@pytest.mark.parametrize(
    ("label", "methods"),
    [
        ("anomalyclip", ["AnomalyCLIP"]),
        ("clip-ac", ["CLIP-AC"]),
        ("april-gan", ["APRIL-GAN"]),
        ("coop", ["CoOp"]),
        ("winclip (4-shot)", ["WinCLIP+ (4-shot)", "WinCLIP (4-shot)"]),
        ("april-gan (4-shot)", ["APRIL-GAN+ (4-shot)", "APRIL-GAN (4-shot)"]),
        ("clip (random weights)", []),
        ("my-plugin", []),
    ],
)
def test_model_labels_map_to_the_papers_method_names(label, methods):
    assert published_methods(label) == methods


def _mean(model, dataset, shots=0, **values):
    mean = {m: values.get(m) for m in METRIC_KEYS}
    return RunResult(model=model, dataset=dataset, per_class={"c": mean}, mean=mean, shots=shots)


def test_real_csv_zero_shot_rows_skip_few_shot_numbers_and_few_shot_rows_find_them():
    results = [
        _mean("winclip", "mvtec-ad", image_auroc=0.915, image_f1_max=0.93),
        _mean("winclip", "mvtec-ad", shots=4, image_auroc=0.95),
        _mean("april-gan", "visa", shots=4, image_auroc=0.9),
    ]
    table = compare_published(
        leaderboard(results, ["image_auroc", "image_f1_max"]), read_published(DEFAULT_PUBLISHED)
    )
    published = table["image_auroc_published"]
    assert published[("mvtec-ad", "winclip")] == 91.8  # AnomalyCLIP Table 1 (equal to WinCLIP's own)
    assert published[("mvtec-ad", "winclip (4-shot)")] == 95.2  # "WinCLIP+ (4-shot)" from WinCLIP's paper
    assert published[("visa", "april-gan (4-shot)")] == 92.6
    assert table.loc[("mvtec-ad", "winclip"), "image_f1_max_published"] == 92.9  # only in WinCLIP's paper
    assert table.loc[("mvtec-ad", "winclip"), "image_auroc_delta"] == pytest.approx(-0.3)
    assert table.attrs["notes"] == [
        "Means left empty: the models share fewer than two datasets (none), so no mean would compare "
        "like with like.",
        "Paper numbers: AnomalyCLIP (ICLR 2024) Table 1; APRIL-GAN (VAND 2023); WinCLIP (CVPR 2023).",
    ]


def test_no_match_is_said_and_per_class_tables_are_refused():
    table = compare_published(
        leaderboard([_mean("my-plugin", "mvtec-ad", image_auroc=0.5)]), read_published(DEFAULT_PUBLISHED)
    )
    assert table["image_auroc_published"].isna().all()
    assert table.attrs["notes"] == ["No published number matches these rows."]
    per_class = per_class_leaderboard([_mean("clip", "mvtec-ad", image_auroc=0.5)])
    with pytest.raises(ZsadError, match="no per-class numbers"):
        compare_published(per_class, read_published(DEFAULT_PUBLISHED))


def test_bad_published_files(tmp_path):
    with pytest.raises(ZsadError, match="not found; pass --published-csv"):
        read_published(tmp_path)
    (tmp_path / "published_results.csv").write_text("source,method\nx,y\n")
    with pytest.raises(ZsadError, match="lacks column"):
        read_published(tmp_path)
    (tmp_path / "published_results.csv").write_text(
        "source,method,dataset,level,metric,value,note\nS,M,d,image,image_auroc,n/a,\n"
    )
    with pytest.raises(ZsadError, match="'n/a' of M on d is not a number"):
        read_published(tmp_path)

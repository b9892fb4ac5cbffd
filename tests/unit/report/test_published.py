from pathlib import Path

import pandas as pd
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
    assert set(tables) == {
        "anomalyclip_table1.md",
        "anomalyclip_table2.md",
        "adaclip_eccv2024.md",
        "musc_iclr2024.md",
        "musc_code_release.md",
    }
    for name, text in tables.items():
        assert (PUBLISHED_DIR / name).read_text() == text, (
            f"leaderboards/published/{name} is stale: "
            "run 'zsad leaderboard --published --out leaderboards/published'"
        )


def test_the_cli_writes_the_same_tables(tmp_path):
    result = CliRunner().invoke(main, ["leaderboard", "--published", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in PUBLISHED_DIR.glob("*.md")} - {
        "README.md"
    }
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
        ("adaclip", ["AdaCLIP"]),
        ("musc", ["MuSc"]),
        ("musc (transductive)", ["MuSc"]),
        ("musc (random weights)", []),
        ("musc (transductive) (random weights)", []),
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


# ------------------------------------------------------------------------------------ AdaCLIP and MuSc

PAPER_CHOICES = {"aupro": "anomalyclip-200", "fpr_limit": 0.3, "eval_size": 518, "pixel_mode": "exact"}


def _run(model, dataset, values, transductive=False, variants=PAPER_CHOICES, precision="fp32"):
    mean = {m: values.get(m) for m in METRIC_KEYS}
    return RunResult(
        model=model,
        dataset=dataset,
        per_class={"c": dict(mean)},
        mean=mean,
        transductive=transductive,
        metric_variants=dict(variants),
        timings={"precision": precision},
    )


def test_the_new_rows_load_with_our_ids_and_keys_and_every_one_says_where_it_was_read():
    published = read_published()
    new = published[published["method"].isin(["AdaCLIP", "MuSc"])]
    assert set(new["source"]) == {
        "AdaCLIP (ECCV 2024)",
        "MuSc (ICLR 2024)",
        "MuSc code release (README, 2024-03-22)",
    }
    assert set(new["metric"]) <= set(METRIC_KEYS)
    assert set(new["dataset"]) == {"mvtec-ad", "visa", "btad"}
    assert (new["level"] == new["metric"].str.split("_").str[0]).all()
    assert not new.duplicated(["source", "method", "dataset", "metric"]).any()
    assert new["value"].between(0, 100).all()
    # MuSc's numbers are all transductive (the note says so first); AdaCLIP's name their training pair.
    musc, adaclip = new[new["method"] == "MuSc"], new[new["method"] == "AdaCLIP"]
    assert musc["note"].str.startswith("transductive: ").all() and len(musc) == 2 * 7 + 3 * 7
    assert adaclip["note"].str.startswith("trained on ").all()
    assert not published.loc[~published["method"].isin(["MuSc"]), "note"].str.startswith("transductive").any()
    # The paper's MVTec AD PRO is the one MuSc cell checked against the paper's own text (its abstract).
    checked = musc[~musc["note"].str.contains("recalled, unverified")]
    assert set(checked["source"]) == {"MuSc (ICLR 2024)", "MuSc code release (README, 2024-03-22)"}
    paper = checked[checked["source"] == "MuSc (ICLR 2024)"]
    assert list(zip(paper["dataset"], paper["metric"], paper["printed"], strict=True)) == [
        ("mvtec-ad", "pixel_aupro", "93.8")
    ]
    assert adaclip["note"].str.contains("recalled, unverified").all()
    # Printed text is kept: the README prints two decimals.
    code = musc[(musc["source"].str.startswith("MuSc code")) & (musc["dataset"] == "visa")]
    assert code.set_index("metric").loc["pixel_f1_max", "printed"] == "48.90"


def test_musc_rows_are_compared_with_the_papers_transductive_numbers_and_keep_their_label():
    ours = {"image_auroc": 0.975, "pixel_aupro": 0.93, "pixel_ap": 0.6}
    results = [
        _run("musc", "mvtec-ad", ours, transductive=True),
        _run("musc", "btad", ours, transductive=True),
        _run("adaclip", "mvtec-ad", {"image_auroc": 0.9, "pixel_auroc": 0.88, "pixel_aupro": 0.4}),
    ]
    metrics = ["image_auroc", "pixel_auroc", "pixel_ap", "pixel_aupro"]
    table = compare_published(leaderboard(results, metrics), read_published())
    assert ("mvtec-ad", "musc (transductive)") in table.index  # the label stays marked
    musc = table.loc[("mvtec-ad", "musc (transductive)")]
    assert musc["image_auroc_published"] == 97.8  # the paper wins over the code-release README
    assert musc["pixel_aupro_published"] == 93.8 and musc["pixel_ap_published"] == 62.7
    assert musc["image_auroc_delta"] == pytest.approx(97.5 - 97.8)
    btad = table.loc[("btad", "musc (transductive)")]  # only the code release reports BTAD
    assert btad["image_auroc_published"] == 96.16 and btad["pixel_aupro_published"] == 83.43
    ada = table.loc[("mvtec-ad", "adaclip")]
    assert ada["image_auroc_published"] == 89.2 and ada["pixel_auroc_published"] == 88.7
    assert pd.isna(ada["pixel_aupro_published"])  # AdaCLIP reports no PRO
    notes = table.attrs["notes"]
    assert (
        "Paper numbers: AdaCLIP (ECCV 2024); MuSc (ICLR 2024); MuSc code release (README, 2024-03-22)."
        in notes
    )
    unverified = next(n for n in notes if n.startswith("Recalled, unverified"))
    assert "MuSc on mvtec-ad I-AUROC in MuSc (ICLR 2024)" in unverified
    assert "AdaCLIP on mvtec-ad P-AUROC in AdaCLIP (ECCV 2024)" in unverified
    assert "MuSc on mvtec-ad P-AUPRO" not in unverified  # checked against the abstract
    # Both official test scripts ran under fp16 autocast: our fp32 rows are compared, and footnoted.
    assert notes[-1] == (
        "Compared although the paper's official code ran under fp16 autocast and these rows did not: "
        "musc (transductive) on btad (fp32), adaclip on mvtec-ad (fp32), "
        "musc (transductive) on mvtec-ad (fp32)."
    )


def test_transductive_numbers_never_stand_beside_per_image_rows_nor_the_reverse():
    rows = [
        _run("musc", "mvtec-ad", {"image_auroc": 0.9}),  # a MuSc run that was not transductive
        _run("anomalyclip", "mvtec-ad", {"image_auroc": 0.9}, transductive=True),
    ]
    table = compare_published(leaderboard(rows, ["image_auroc"]), read_published())
    assert table["image_auroc_published"].isna().all()
    assert table.attrs["notes"][-1] == "No published number matches these rows."


def test_musc_aupro_is_withheld_unless_scored_as_its_official_code_scores_it():
    mvtec_aupro = {**PAPER_CHOICES, "aupro": "mvtec"}
    result = _run("musc", "visa", {"image_auroc": 0.9, "pixel_aupro": 0.9}, True, mvtec_aupro)
    table = compare_published(leaderboard([result], ["image_auroc", "pixel_aupro"]), read_published())
    row = table.loc[("visa", "musc (transductive)")]
    assert pd.isna(row["pixel_aupro_published"]) and row["image_auroc_published"] == 92.8
    assert any(
        "P-AUPRO of musc (transductive) on visa (mvtec, paper anomalyclip-200: zsad score RESULTS_DIR "
        "--aupro-variant anomalyclip-200 --out NEW_DIR)" in note
        for note in table.attrs["notes"]
    )
    small = {**PAPER_CHOICES, "eval_size": 256}
    adaclip = _run("adaclip", "visa", {"image_auroc": 0.8, "pixel_auroc": 0.9}, variants=small)
    table = compare_published(leaderboard([adaclip], ["image_auroc", "pixel_auroc"]), read_published())
    assert pd.isna(table.loc[("visa", "adaclip"), "pixel_auroc_published"])
    assert table.loc[("visa", "adaclip"), "image_auroc_published"] == 85.8


def test_rendered_musc_and_adaclip_tables_mark_transductive_and_unverified_cells():
    tables = paper_tables(read_published())
    musc = tables["musc_iclr2024.md"]
    assert "## Pixel level (AUROC / AP / F1-max / PRO)" in musc
    assert "| mvtec-ad | 97.3* / 62.7* / 62.6* / 93.8 |" in musc
    assert "MuSc: transductive, each score uses the other test images of the class." in musc
    assert "Cells marked * are recalled, unverified" in musc
    code = tables["musc_code_release.md"]
    assert "| btad | 96.16 / 97.85 / 93.90 |" in code and "*" not in code.split("# MuSc")[1]
    assert "| visa | 85.8* |" in tables["adaclip_eccv2024.md"]
    assert "transductive" not in tables["adaclip_eccv2024.md"]
    assert "Cells marked *" not in tables["anomalyclip_table1.md"] + tables["anomalyclip_table2.md"]

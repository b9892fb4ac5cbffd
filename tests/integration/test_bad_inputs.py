"""Bad input and faults through the whole CLI, as a new user meets them: one table, one set of promises.

For every row: exit code 2, at most three lines on stderr (``error: ...``, or click's usage block), no
traceback, and nothing created, changed or removed under the folder the command was pointed at (a world
of results, checkpoints, sources and stray files built once for the module) or under the data root.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from zsad_bench.cli import main
from zsad_bench.data.staging import LOCKS
from zsad_bench.engine.output import LOCK_NAME as RUN_LOCK

TINY = ["--backbone", "test-tiny", "--eval-size", "32", "-q"]
RUN = ["run", "--model", "clip", "--dataset", "synthetic", *TINY, "-o", "image_size=64"]
RESULT = "clip__synthetic.json"


def _edited(record: dict, edit) -> str:
    copy = json.loads(json.dumps(record))
    edit(copy)
    return json.dumps(copy)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, session_data_root: Path) -> Path:
    """One results folder made by a real run, and every broken thing the table points at, side by side."""
    root = tmp_path_factory.mktemp("bad-inputs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSAD_DATA", str(session_data_root))
        patch.setenv("HF_HUB_OFFLINE", "1")
        done = CliRunner().invoke(main, [*RUN, "--out", str(root / "results")])
    assert done.exit_code == 0, done.output
    good = (root / "results" / RESULT).read_text()
    record = json.loads(good)

    def result_folder(name: str, text: str) -> None:
        (root / "bad" / name).mkdir(parents=True)
        (root / "bad" / name / RESULT).write_text(text)

    result_folder("truncated", good[: len(good) // 2])
    result_folder("not-json", "this is not a result\n")
    result_folder("a-list", "[]\n")
    result_folder("no-per-class", _edited(record, lambda r: r.pop("per_class")))
    result_folder("null-mean", _edited(record, lambda r: r.update(mean=None)))
    result_folder("above-one", _edited(record, lambda r: r["mean"].update(image_auroc=1.5)))
    result_folder("negative", _edited(record, lambda r: r["mean"].update(image_auroc=-0.2)))
    result_folder("text-metric", _edited(record, lambda r: r["mean"].update(image_auroc="high")))
    result_folder("no-model", _edited(record, lambda r: r.pop("model")))
    # A result whose prediction cache is gone: nothing to re-score from.
    result_folder("no-cache", good)
    (root / "empty").mkdir()
    (root / "a-file").write_text("not a folder\n")

    ckpt = root / "ckpt"
    (ckpt / "empty").mkdir(parents=True)
    (ckpt / "truncated-config").mkdir()
    (ckpt / "truncated-config" / "config.json").write_text('{"model": "anomalyclip", "opti')
    (ckpt / "list-config").mkdir()
    (ckpt / "list-config" / "config.json").write_text("[1, 2]\n")
    (ckpt / "empty.pth").write_bytes(b"")
    (ckpt / "garbage.pth").write_bytes(bytes(range(256)) * 4)
    import torch

    torch.save([1, 2, 3], ckpt / "list.pth")
    torch.save({"state_dict": [1, 2]}, ckpt / "nested-list.pth")
    from zsad_bench import load_model

    # Another model's checkpoint, and one trained on the very dataset it would be evaluated on.
    load_model("coop", backbone="test-tiny", image_size=64).save(ckpt / "coop")
    shutil.copytree(ckpt / "coop", ckpt / "coop-on-synthetic")
    config = json.loads((ckpt / "coop" / "config.json").read_text()) | {"trained_on": "synthetic"}
    (ckpt / "coop-on-synthetic" / "config.json").write_text(json.dumps(config))
    (root / "weights").mkdir()
    torch.save(["not", "a", "state", "dict"], root / "weights" / "list.pt")
    (root / "weights" / "truncated.pt").write_bytes(b"PK\x03\x04" + b"\0" * 20)

    csv = root / "csv"
    csv.mkdir()
    (csv / "missing-column.csv").write_text("source,method,dataset\nx,CLIP,mvtec-ad\n")
    (csv / "bad-value.csv").write_text(
        "source,method,dataset,level,metric,value,note\nx,CLIP,mvtec-ad,image,image_auroc,high,\n"
    )
    (csv / "empty.csv").write_text("")

    src = root / "sources"
    (src / "empty").mkdir(parents=True)
    (src / "garbage.zip").write_bytes(b"this is no archive" * 10)
    archive = src / "whole.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("MPDD/bracket_black/test/good/000.png", b"\x89PNG" + b"\0" * 5000)
    (src / "truncated.zip").write_bytes(archive.read_bytes()[:-60])
    archive.unlink()
    (src / "meta-broken.json").write_text('{"test": {')
    (src / "meta-list.json").write_text("[]\n")
    (src / "not-images").mkdir()
    (src / "not-images" / "readme.txt").write_text("nothing to see\n")
    shutil.copy(root / "a-file", src / "plain.txt")
    return root


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every path under the folders: a file's mtime and size, a folder's presence.

    A folder's own mtime is left out: a staging folder made and removed again changes it, and leaves
    nothing behind; anything it leaves shows as a new name. Lock files are left out too: they hold no
    data, and an flock file stays by design (the kernel, not the file, holds the lock).
    """
    seen = {}
    for folder in folders:
        for path in folder.rglob("*"):
            if path.name == RUN_LOCK or LOCKS in path.relative_to(folder).parts:
                continue
            stat = path.lstat()
            seen[str(path)] = (0, -1) if path.is_dir() else (stat.st_mtime_ns, stat.st_size)
    return seen


# Each row: (id, what the error line must name, arguments). "{W}" is the world folder, also the working
# directory.
NEW = ["--out", "{W}/new"]
KEPT = ["--out", "{W}/results"]
AC = ["run", "--model", "anomalyclip", "--dataset", "synthetic", *TINY]
COOP = ["run", "--model", "coop", "--dataset", "synthetic", *TINY, "-o", "image_size=64"]
PREPARE = ["datasets", "prepare", "mpdd", "--from"]
TRAIN = ["train", "anomalyclip", "--dataset", "synthetic", "--backbone", "test-tiny"]
DRY = ["--out", "{W}/new", "--dry-run"]
NOT_IMAGES = ["--from", "{W}/sources/not-images"]
PUBLISHED_EMPTY = ["leaderboard", "--published", "--published-csv", "{W}/csv/empty.csv"]
CASES: list[tuple[str, tuple[str, ...], list[str]]] = [
    # -- detector options: refused before any work
    ("opt-size-text", ("image_size", "abc"), [*RUN, "-o", "image_size=abc", *NEW]),
    ("opt-size-7", ("image_size", "7"), [*RUN, "-o", "image_size=7", *NEW]),
    ("opt-size-negative", ("image_size", "-64"), [*RUN, "-o", "image_size=-64", *NEW]),
    ("opt-temperature-0", ("temperature", "0"), [*RUN, "-o", "temperature=0", *NEW]),
    ("opt-sigma-negative", ("sigma", "-1"), [*RUN, "-o", "sigma=-1", *NEW]),
    ("opt-interpolation", ("pos_interpolation", "foo"), [*RUN, "-o", "pos_interpolation=foo", *NEW]),
    ("opt-features-99", ("features", "99"), [*AC, "-o", "features=[6,99]", *NEW]),
    ("opt-backbone", ("'backbone'", "--backbone"), [*RUN, "-o", "backbone=nope", *NEW]),
    ("opt-device", ("'device'", "--device"), [*RUN, "-o", "device=cpu", *NEW]),
    ("opt-trained-on", ("'trained_on'",), [*RUN, "-o", "trained_on=visa", *NEW]),
    ("opt-unknown-key", ("'nokey'",), [*RUN, "-o", "nokey=1", *NEW]),
    ("opt-no-equals", ("'image_size'", "KEY=VALUE"), [*RUN, "-o", "image_size", *NEW]),
    ("opt-no-key", ("'=5'", "KEY=VALUE"), [*RUN, "-o", "=5", *NEW]),
    (
        "opt-one-model-lacks-it",
        ("'winclip'", "'sigma'"),
        [*RUN[:2], "clip,winclip", *RUN[3:], "-o", "sigma=2", *NEW],
    ),
    ("opt-train", ("sigma", "-1"), [*TRAIN, "-o", "sigma=-1", *NEW]),
    (
        "opt-reproduce",
        ("n_ctx", "'coop'"),
        ["reproduce", "anomalyclip-paper", "--models", "coop", "-o", "n_ctx=0", *DRY],
    ),
    # -- names
    ("model-unknown", ("model 'nope'",), ["run", "--model", "nope", "--dataset", "synthetic", *TINY, *NEW]),
    (
        "model-one-unknown",
        ("model 'nope'",),
        ["run", "--model", "clip,nope", "--dataset", "synthetic", *TINY, *NEW],
    ),
    ("model-one-unknown-kept-out", ("model 'nope'",), [*RUN[:2], "clip,nope", *RUN[3:], *KEPT]),
    ("model-empty", ("model",), ["run", "--model", ",", "--dataset", "synthetic", *TINY, *NEW]),
    ("dataset-unknown", ("dataset 'nope'",), ["run", "--model", "clip", "--dataset", "nope", *TINY, *NEW]),
    ("dataset-one-unknown", ("dataset 'nope'",), [*RUN[:4], "synthetic,nope", *RUN[5:], *KEPT]),
    ("dataset-not-prepared", ("'mpdd'", "prepare"), [*RUN[:4], "synthetic,mpdd", *RUN[5:], *KEPT]),
    ("protocol-unknown", ("protocol 'nope'",), [*RUN, "--protocol", "nope", *NEW]),
    (
        "backbone-unknown",
        ("'no-such'",),
        ["run", "--model", "clip", "--dataset", "synthetic", "--backbone", "no-such", *NEW],
    ),
    (
        "backbone-tiny-with-weights",
        ("test-tiny", "random"),
        [*RUN, "--backbone", "test-tiny:{W}/weights/list.pt", *NEW],
    ),
    ("backbone-no-weights-file", ("none.pt",), [*RUN, "--backbone", "ViT-B-16:{W}/weights/none.pt", *NEW]),
    # Weights are read after the output folder is claimed: the results already there stay as they were.
    (
        "backbone-weights-not-state-dict",
        ("list.pt", "state dict"),
        [*RUN, "--backbone", "ViT-B-16:{W}/weights/list.pt", *KEPT],
    ),
    (
        "backbone-weights-truncated",
        ("truncated.pt",),
        [*RUN, "--backbone", "ViT-B-16:{W}/weights/truncated.pt", *KEPT],
    ),
    (
        "weights-offline",
        ("offline",),
        ["run", "--model", "clip", "--dataset", "synthetic", "--eval-size", "32", *KEPT],
    ),
    ("models-download-offline", ("offline",), ["models", "download", "clip"]),
    ("models-info-unknown", ("'winclipp'",), ["models", "info", "winclipp"]),
    ("models-download-unknown", ("'nope'",), ["models", "download", "nope"]),
    ("datasets-info-unknown", ("dataset 'nope'",), ["datasets", "info", "nope"]),
    ("datasets-verify-unknown", ("dataset 'nope'",), ["datasets", "verify", "nope"]),
    ("datasets-verify-not-prepared", ("'mpdd'", "prepare"), ["datasets", "verify", "mpdd"]),
    ("datasets-export-not-prepared", ("'mpdd'", "prepare"), ["datasets", "export-meta", "mpdd"]),
    ("datasets-download-unknown", ("dataset 'nope'",), ["datasets", "download", "nope"]),
    ("command-unknown", ("'nonsense'",), ["nonsense"]),
    ("run-without-arguments", ("'--model'",), ["run"]),
    # -- run flags
    ("device-missing-gpu", ("cuda:7",), [*RUN, "--device", "cuda:7", *NEW]),
    ("device-nonsense", ("'banana'",), [*RUN, "--device", "banana", *NEW]),
    ("batch-size-0", ("--batch-size", "'0'"), [*RUN, "--batch-size", "0", *NEW]),
    ("batch-size-text", ("--batch-size", "'big'"), [*RUN, "--batch-size", "big", *NEW]),
    ("batch-size-negative", ("--batch-size", "'-2'"), [*RUN, "--batch-size", "-2", *NEW]),
    ("workers-negative", ("--num-workers", "'-1'"), [*RUN, "--num-workers", "-1", *NEW]),
    ("workers-text", ("--num-workers", "'many'"), [*RUN, "--num-workers", "many", *NEW]),
    ("eval-size-4", ("--eval-size",), [*RUN, "--eval-size", "4", *NEW]),
    ("seed-text", ("--seed",), [*RUN, "--seed", "abc", *NEW]),
    ("ci-replicates-5", ("--ci-replicates",), [*RUN, "--ci", "0.9", "--ci-replicates", "5", *NEW]),
    ("shots-for-zero-shot-model", ("'clip'", "--shots"), [*RUN, "--shots", "2", *NEW]),
    ("ci-above-one", ("--ci",), [*RUN, "--ci", "1.5", *NEW]),
    ("precision-fp64", ("--precision",), [*RUN, "--precision", "fp64", *NEW]),
    ("bins-1", ("--bins",), [*RUN, "--pixel-mode", "histogram", "--bins", "1", *NEW]),
    ("shots-negative", ("--shots",), [*RUN, "--shots", "-1", *NEW]),
    ("aupro-variant-unknown", ("--aupro-variant",), [*RUN, "--aupro-variant", "foo", *NEW]),
    # -- checkpoints
    ("ckpt-missing", ("ckpt/none",), [*AC, "--checkpoint", "{W}/ckpt/none", *NEW]),
    ("ckpt-empty-folder", ("ckpt/empty", "config.json"), [*AC, "--checkpoint", "{W}/ckpt/empty", *NEW]),
    (
        "ckpt-truncated-config",
        ("truncated-config/config.json",),
        [*AC, "--checkpoint", "{W}/ckpt/truncated-config", *NEW],
    ),
    ("ckpt-list-config", ("list-config/config.json",), [*AC, "--checkpoint", "{W}/ckpt/list-config", *NEW]),
    ("ckpt-empty-pth", ("empty.pth",), [*AC, "--checkpoint", "{W}/ckpt/empty.pth", *NEW]),
    ("ckpt-garbage-pth", ("garbage.pth",), [*AC, "--checkpoint", "{W}/ckpt/garbage.pth", *NEW]),
    ("ckpt-list-pth", ("list.pth",), [*AC, "--checkpoint", "{W}/ckpt/list.pth", *NEW]),
    ("ckpt-nested-list-pth", ("nested-list.pth",), [*AC, "--checkpoint", "{W}/ckpt/nested-list.pth", *NEW]),
    ("ckpt-for-untrainable", ("'clip'", "checkpoint"), [*RUN, "--checkpoint", "{W}/ckpt/empty", *NEW]),
    (
        "ckpt-of-another-model",
        ("ckpt/coop", "'coop'", "'anomalyclip'"),
        [*AC, "--checkpoint", "{W}/ckpt/coop", *NEW],
    ),
    (
        "ckpt-trained-on-target",
        ("'coop'", "synthetic"),
        [*COOP, "--checkpoint", "{W}/ckpt/coop-on-synthetic", *NEW],
    ),
    (
        "ckpt-for-a-model-not-run",
        ("'coop'", "--checkpoint"),
        [*AC, "--checkpoint", "coop={W}/ckpt/coop", *NEW],
    ),
    (
        "ckpt-for-an-unknown-model",
        ("'nope'", "--checkpoint"),
        [*AC, "--checkpoint", "nope={W}/ckpt/coop", *NEW],
    ),
    # -- output places
    ("out-is-a-file", ("a-file", "file"), [*RUN, "--out", "{W}/a-file"]),
    ("out-under-a-file", ("a-file/sub",), [*RUN, "--out", "{W}/a-file/sub"]),
    ("train-out-is-a-file", ("a-file",), [*TRAIN, "--epochs", "1", "--out", "{W}/a-file"]),
    # -- result files, read by leaderboard, score and plot
    ("leaderboard-missing-folder", ("none",), ["leaderboard", "{W}/none"]),
    ("leaderboard-no-results", ("empty", "no result files"), ["leaderboard", "{W}/empty"]),
    ("leaderboard-a-file", ("a-file",), ["leaderboard", "{W}/a-file"]),
    ("leaderboard-no-folder", ("RESULTS_DIR",), ["leaderboard"]),
    ("leaderboard-truncated", ("truncated/clip__synthetic.json",), ["leaderboard", "{W}/bad/truncated"]),
    ("leaderboard-not-json", ("not-json/clip__synthetic.json",), ["leaderboard", "{W}/bad/not-json"]),
    ("leaderboard-a-list", ("a-list/clip__synthetic.json",), ["leaderboard", "{W}/bad/a-list"]),
    (
        "leaderboard-no-per-class",
        ("no-per-class/clip__synthetic.json",),
        ["leaderboard", "{W}/bad/no-per-class"],
    ),
    (
        "leaderboard-null-mean",
        ("null-mean/clip__synthetic.json", "'mean'"),
        ["leaderboard", "{W}/bad/null-mean"],
    ),
    (
        "leaderboard-above-one",
        ("above-one/clip__synthetic.json", "image_auroc", "1.5"),
        ["leaderboard", "{W}/bad/above-one"],
    ),
    (
        "leaderboard-negative",
        ("negative/clip__synthetic.json", "image_auroc", "-0.2"),
        ["leaderboard", "{W}/bad/negative"],
    ),
    (
        "leaderboard-text-metric",
        ("text-metric/clip__synthetic.json", "image_auroc"),
        ["leaderboard", "{W}/bad/text-metric"],
    ),
    ("leaderboard-no-model", ("no-model/clip__synthetic.json",), ["leaderboard", "{W}/bad/no-model"]),
    ("leaderboard-format", ("--format",), ["leaderboard", "{W}/results", "--format", "xlsx"]),
    ("leaderboard-compare-unknown", ("--compare",), ["leaderboard", "{W}/results", "--compare", "paper"]),
    ("leaderboard-out-is-a-folder", ("empty",), ["leaderboard", "{W}/results", "--out", "{W}/empty"]),
    ("leaderboard-out-under-a-file", ("a-file",), ["leaderboard", "{W}/results", "--out", "{W}/a-file/t.md"]),
    ("score-out-is-a-file", ("a-file",), ["score", "{W}/results", "--out", "{W}/a-file"]),
    ("plot-out-is-a-file", ("a-file",), ["plot", "{W}/results", "--kind", "heatmap", "--out", "{W}/a-file"]),
    ("published-out-is-a-file", ("a-file",), ["leaderboard", "--published", "--out", "{W}/a-file"]),
    ("published-csv-empty", ("empty.csv", "not a readable CSV"), PUBLISHED_EMPTY),
    (
        "prepare-two-from",
        ("sources/empty + ", "not-images"),
        [*PREPARE, "{W}/sources/empty", *NOT_IMAGES, "-q"],
    ),
    (
        "leaderboard-per-class-compare",
        ("--compare published", "per-class"),
        ["leaderboard", "{W}/results", "--per-class", "--compare", "published"],
    ),
    ("published-with-results", ("--published",), ["leaderboard", "{W}/results", "--published"]),
    (
        "published-csv-missing",
        ("none.csv",),
        ["leaderboard", "--published", "--published-csv", "{W}/csv/none.csv"],
    ),
    (
        "published-csv-no-column",
        ("missing-column.csv", "level"),
        ["leaderboard", "--published", "--published-csv", "{W}/csv/missing-column.csv"],
    ),
    (
        "published-csv-bad-value",
        ("bad-value.csv", "'high'"),
        ["leaderboard", "--published", "--published-csv", "{W}/csv/bad-value.csv"],
    ),
    ("score-missing-folder", ("none",), ["score", "{W}/none"]),
    ("score-no-results", ("empty", "no result files"), ["score", "{W}/empty"]),
    ("score-truncated", ("truncated/clip__synthetic.json",), ["score", "{W}/bad/truncated"]),
    ("score-above-one", ("above-one/clip__synthetic.json", "image_auroc"), ["score", "{W}/bad/above-one"]),
    (
        "score-no-cache",
        ("no-cache", "cache"),
        ["score", "{W}/bad/no-cache", "--aupro-variant", "anomalyclip-200"],
    ),
    ("score-new-eval-size", ("64", "zsad run"), ["score", "{W}/results", "--eval-size", "64"]),
    ("score-fpr-limit-0", ("--fpr-limit",), ["score", "{W}/results", "--fpr-limit", "0"]),
    ("score-pixel-mode", ("--pixel-mode",), ["score", "{W}/results", "--pixel-mode", "nope"]),
    ("score-missing-gpu", ("cuda:3",), ["score", "{W}/results", "--device", "cuda:3"]),
    ("plot-missing-folder", ("none",), ["plot", "{W}/none", *NEW]),
    ("plot-no-results", ("empty", "no result files"), ["plot", "{W}/empty", *NEW]),
    (
        "plot-metric-unknown",
        ("metric 'nope'",),
        ["plot", "{W}/results", "--kind", "heatmap", "--metric", "nope", *NEW],
    ),
    ("plot-format-unknown", ("bmp",), ["plot", "{W}/results", "--kind", "heatmap", "--format", "bmp", *NEW]),
    ("plot-truncated", ("truncated/clip__synthetic.json",), ["plot", "{W}/bad/truncated", *NEW]),
    (
        "plot-samples-0",
        ("--samples",),
        ["plot", "{W}/results", "--kind", "qualitative", "--samples", "0", *NEW],
    ),
    # -- datasets and --from paths
    ("prepare-unknown", ("dataset 'nope'",), ["datasets", "prepare", "nope", "--from", "{W}/sources/empty"]),
    ("prepare-from-missing", ("sources/none",), [*PREPARE, "{W}/sources/none"]),
    ("prepare-from-empty", ("sources/empty",), [*PREPARE, "{W}/sources/empty"]),
    ("prepare-from-no-images", ("sources/not-images",), [*PREPARE, "{W}/sources/not-images"]),
    ("prepare-from-plain-file", ("plain.txt",), [*PREPARE, "{W}/sources/plain.txt"]),
    ("prepare-from-garbage-zip", ("garbage.zip",), [*PREPARE, "{W}/sources/garbage.zip"]),
    ("prepare-from-truncated-zip", ("truncated.zip",), [*PREPARE, "{W}/sources/truncated.zip"]),
    ("prepare-from-broken-meta", ("meta-broken.json",), [*PREPARE, "{W}/sources/meta-broken.json"]),
    ("prepare-from-list-meta", ("meta-list.json",), [*PREPARE, "{W}/sources/meta-list.json"]),
    ("prepare-link-an-archive", ("--link", "garbage.zip"), [*PREPARE, "{W}/sources/garbage.zip", "--link"]),
    ("export-meta-unknown", ("dataset 'nope'",), ["datasets", "export-meta", "nope"]),
    (
        "prepare-synthetic",
        ("'synthetic'", "--force"),
        ["datasets", "prepare", "synthetic", "--from", "{W}/sources/empty"],
    ),
    # -- training and reproduction
    (
        "train-untrainable",
        ("'clip'", "training-free"),
        ["train", "clip", "--dataset", "synthetic", "--backbone", "test-tiny", *NEW],
    ),
    ("train-unknown-model", ("model 'nope'",), ["train", "nope", "--dataset", "synthetic", *NEW]),
    ("train-unknown-dataset", ("dataset 'nope'",), ["train", "anomalyclip", "--dataset", "nope", *NEW]),
    ("train-unknown-split", ("split 'nope'",), [*TRAIN, "--split", "nope", *NEW]),
    ("train-epochs-0", ("--epochs",), [*TRAIN, "--epochs", "0", *NEW]),
    ("train-batch-size-0", ("--batch-size",), [*TRAIN, "--batch-size", "0", *NEW]),
    (
        "train-into-a-checkpoint",
        ("truncated-config", "checkpoint"),
        [*TRAIN, "--out", "{W}/ckpt/truncated-config"],
    ),
    ("reproduce-unknown-protocol", ("protocol 'nope'",), ["reproduce", "nope", *DRY]),
    (
        "reproduce-unknown-model",
        ("model 'nope'",),
        ["reproduce", "anomalyclip-paper", "--models", "nope", *DRY],
    ),
    ("reproduce-epochs-0", ("--epochs",), ["reproduce", "anomalyclip-paper", "--epochs", "0", *DRY]),
    (
        "reproduce-backbone-unknown",
        ("'no-such'",),
        ["reproduce", "anomalyclip-paper", "--backbone", "no-such", *DRY],
    ),
]


@pytest.mark.parametrize(("names", "args"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(names, args, world, session_data_root, monkeypatch):
    monkeypatch.chdir(world)  # a relative default (--out reproduction, ...) would land in the world too
    argv = [a.replace("{W}", str(world)) for a in args]
    before = _snapshot(world, session_data_root)
    result = CliRunner().invoke(main, argv)
    after = _snapshot(world, session_data_root)

    text = result.stdout + result.stderr
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed and "Traceback" not in text, f"crashed: {result.exception!r}\n{text}"
    assert result.exit_code == 2, f"exit {result.exit_code}: {text}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, result.stderr
    assert lines[-1].lower().startswith("error"), result.stderr
    assert all(name in lines[-1] for name in names), f"{lines[-1]!r} should name {names}"
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"changed: {changed}"


def test_the_table_is_large_enough():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)

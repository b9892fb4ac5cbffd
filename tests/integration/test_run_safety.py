"""``zsad run`` when things go wrong: unreadable images in loader workers, output folders that cannot take
the results, a second run on the same folder, Ctrl-C, a replayed unit's timings, names checked before the
first unit. Each case asserts the one line the user sees, the exit code and the files left behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from zsad_bench.cli import main

TINY = ["--backbone", "test-tiny", "-o", "image_size=64", "--eval-size", "32", "-q"]


def run(*args: str, out: Path) -> click.testing.Result:
    command = ["run", "--model", "clip", "--dataset", "synthetic", *TINY, *args, "--out", str(out)]
    return CliRunner().invoke(main, command)


def one_line(result: click.testing.Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the run lock (which holds the pid of its last holder)."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".zsad-run.lock"]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


@pytest.fixture
def synthetic_copy(tmp_path, monkeypatch) -> Path:
    """A private data root holding a copy of the synthetic dataset, free to damage."""
    from zsad_bench._factory import get_dataset_spec
    from zsad_bench.data import ensure_prepared

    source = ensure_prepared(get_dataset_spec("synthetic"))
    root = tmp_path / "data"
    shutil.copytree(source, root / "synthetic")
    monkeypatch.setenv("ZSAD_DATA", str(root))
    return root / "synthetic"


@pytest.fixture
def done(tmp_path) -> Path:
    """An output folder holding one finished result (with its prediction cache)."""
    out = tmp_path / "results"
    result = run(out=out)
    assert result.exit_code == 0, result.output
    return out


# -- errors from loader workers -----------------------------------------------------------------------


def test_truncated_image_is_the_same_line_with_and_without_workers(synthetic_copy, tmp_path):
    from zsad_bench.data import read_manifest

    victim = sorted(read_manifest(synthetic_copy).query("split == 'test'")["image_path"])[0]
    path = synthetic_copy / victim
    path.write_bytes(path.read_bytes()[:60])
    lines = {}
    for workers in ("0", "1"):
        out = tmp_path / f"out{workers}"
        result = run("--num-workers", workers, "--no-cache", out=out)
        assert result.exit_code == 2, result.output
        lines[workers] = one_line(result)
        assert not list(out.glob("*.json"))
    assert lines["0"] == lines["1"]
    assert lines["1"].startswith(f"error: cannot decode image {path} (")


# -- output places ------------------------------------------------------------------------------------


def test_out_that_is_a_file_is_refused(tmp_path):
    out = tmp_path / "results"
    out.write_text("not a folder\n")
    result = run(out=out)
    assert result.exit_code == 2
    assert (
        one_line(result)
        == f"error: output folder {out} is a file; give a folder (new, or one holding results)"
    )
    assert out.read_text() == "not a folder\n"


def test_out_under_a_file_is_refused(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run(out=blocker / "results")
    assert result.exit_code == 2
    line = one_line(result)
    target = blocker / "results"
    assert line == f"error: cannot create output folder {target} (Not a directory); choose another folder"
    assert blocker.read_text() == "x"


def test_unwritable_out_is_refused(done, monkeypatch):
    from zsad_bench.engine import output

    def refuse(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    before = snapshot(done)
    monkeypatch.setattr(output, "open_lock_file", refuse)
    result = run(out=done)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"error: cannot write into output folder {done} (Permission denied); choose another folder"
    )
    assert snapshot(done) == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_out_is_refused(tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = run(out=out)
    finally:
        out.chmod(0o755)
    assert result.exit_code == 2 and "cannot write into output folder" in one_line(result)
    assert not list(out.iterdir())


def full_disk_after(real, limit: int = 100):
    """A stand-in for ``atomic_file`` whose writes fail with ENOSPC after ``limit`` bytes, the way a full
    disk fails: part of the data is already in the temporary file when the error comes."""

    @contextlib.contextmanager
    def atomic_file(path, mode="wb", **kwargs):
        with real(path, mode, **kwargs) as handle:
            write = handle.write

            def failing(data):
                write(data[:limit])
                raise OSError(errno.ENOSPC, "No space left on device")

            handle.write = failing
            yield handle

    return atomic_file


def test_full_disk_while_writing_the_result_keeps_the_earlier_one(done, monkeypatch):
    from zsad_bench.results import schema

    before = snapshot(done)
    monkeypatch.setattr(schema, "atomic_file", full_disk_after(schema.atomic_file))
    result = run("--no-cache", out=done)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"error: cannot write {done} (No space left on device); free some space and rerun: result files "
        "already written are intact"
    )
    assert snapshot(done) == before  # the old result, no half-written file, no temporary left


def test_full_disk_while_caching_predictions(tmp_path, monkeypatch):
    from zsad_bench.results import cache

    def full(path, data, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    out = tmp_path / "results"
    monkeypatch.setattr(cache, "atomic_write", full)
    result = run(out=out)
    assert result.exit_code == 2
    line = one_line(result)
    assert line.startswith(f"error: cannot write {out / 'predictions'}") and "No space left on device" in line
    assert not list(out.glob("*.json")) and not list(out.rglob("*.safetensors"))


# -- one run per output folder ------------------------------------------------------------------------


def test_second_run_on_a_locked_folder_refuses_naming_the_holder(done):
    from zsad_bench.engine.output import LOCK_NAME

    before = snapshot(done)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from zsad_bench.engine.output import claim_output; "
            "claim_output(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(done),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run(out=done)
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 2
    assert one_line(result) == (
        f"error: output folder {done} is in use by another zsad run (pid {holder.pid}, lock "
        f"{done / LOCK_NAME}); wait for it to finish or choose another --out"
    )
    assert snapshot(done) == before
    # the holder is gone, and with it the lock: the next run proceeds
    assert run(out=done).exit_code == 0


def test_lock_is_released_when_the_run_fails(done, monkeypatch):
    from zsad_bench.engine import loop
    from zsad_bench.engine.output import claim_output

    def boom(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(loop, "run_detector", boom)
    assert isinstance(run(out=done).exception, RuntimeError)
    claim_output(done).release()  # would refuse if the failed run still held it


# -- re-running a finished unit -----------------------------------------------------------------------


def test_replayed_unit_keeps_the_measured_timings(done):
    first = json.loads((done / "clip__synthetic.json").read_text())
    assert first["timings"]["replayed"] is False and first["timings"]["images"] == 64
    time.sleep(0.01)
    assert run(out=done).exit_code == 0
    second = json.loads((done / "clip__synthetic.json").read_text())
    assert second["timings"] == {**first["timings"], "replayed": True}
    assert second["per_class"] == first["per_class"]
    assert run(out=done).exit_code == 0  # replaying a replay still keeps the first measurement
    third = json.loads((done / "clip__synthetic.json").read_text())
    assert third["timings"] == second["timings"]


# -- everything checked before the first unit ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--model", "clip,nope"], "error: unknown model 'nope'"),
        (["--dataset", "synthetic,mvtec-ad"], "error: dataset 'mvtec-ad' is not prepared under "),
        (["--backbone", "ViT-nope"], "error: backbone 'ViT-nope' needs its weights named"),
    ],
)
def test_bad_names_fail_before_the_first_unit(tmp_path, change, message):
    out = tmp_path / "results"
    args = ["run", "--model", "clip", "--dataset", "synthetic", *TINY, "--out", str(out)]
    for flag, value in zip(change[::2], change[1::2], strict=True):
        args[args.index(flag) + 1] = value
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert one_line(result).startswith(message)
    assert not out.exists()  # nothing ran, nothing was written, not even the folder


def trained_checkpoint(folder: Path, trained_on: str) -> Path:
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"name": "anomalyclip", "trained_on": trained_on}))
    return folder


def test_trained_on_refusal_names_the_training_data_and_a_target(tmp_path):
    ckpt = trained_checkpoint(tmp_path / "ckpt", "synthetic")
    out = tmp_path / "results"
    args = ["run", "--model", "anomalyclip", "--checkpoint", str(ckpt), "--dataset", "synthetic"]
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 2
    assert one_line(result) == (
        "error: model 'anomalyclip' was trained on synthetic; a zero-shot protocol never evaluates a model "
        "on its training data: evaluate it on any dataset but synthetic ('zsad datasets list')"
    )
    assert not out.exists()


def test_trained_on_refusal_points_at_the_protocols_target():
    from zsad_bench.protocols import anomalyclip_paper

    assert anomalyclip_paper.refusal("anomalyclip", "visa").endswith(
        "evaluate it on mvtec-ad (the targets of visa in protocol 'anomalyclip-paper')"
    )
    assert "evaluate it on visa, mpdd, btad ... (the targets of mvtec-ad" in anomalyclip_paper.refusal(
        "anomalyclip", "mvtec-ad"
    )


# -- messages -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("cache", [True, False])
def test_ctrl_c_says_rerunning_resumes(tmp_path, monkeypatch, cache):
    from zsad_bench.engine import loop

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "run_detector", interrupted)
    out = tmp_path / "results"
    result = run(*([] if cache else ["--no-cache"]), out=out)
    assert result.exit_code == 130
    kept = f"classes already finished are cached under {out / 'predictions'}" if cache else "results written"
    line = one_line(result)
    assert (
        line.startswith("interrupted: stopped by Ctrl-C; rerun the same command to resume (") and kept in line
    )
    assert not list(out.glob("*.json"))


def commands(group: click.Group, path: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_takes_quiet_as_the_readme_says():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "Every command takes\n`--quiet`" in readme or "Every command takes `--quiet`" in readme
    runner = CliRunner()
    for path, _ in commands(main):
        shown = runner.invoke(main, [*path, "--help"])
        assert shown.exit_code == 0 and "-q, --quiet" in shown.stdout, path
    listing = runner.invoke(main, ["models", "list", "-q"])
    assert listing.exit_code == 0 and listing.stdout == runner.invoke(main, ["models", "list"]).stdout

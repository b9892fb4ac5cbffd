"""The output folder's lock and the one line for a refused write (``engine.output``)."""

from __future__ import annotations

import errno
import os

import pytest

from zsad_bench.engine.output import LOCK_NAME, claim_output, write_failure
from zsad_bench.errors import ZsadError


def test_a_second_claim_refuses_until_the_first_is_released(tmp_path):
    out = tmp_path / "results"
    first = claim_output(out)  # creates the folder
    assert (out / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    with pytest.raises(
        ZsadError, match=rf"in use by another zsad run \(pid {os.getpid()}, lock .*{LOCK_NAME}\)"
    ):
        claim_output(out)
    first.release()
    first.release()  # twice is harmless
    claim_output(out).release()


def test_lock_file_mode_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        claim_output(tmp_path / "results").release()
    finally:
        os.umask(old)
    assert (tmp_path / "results" / LOCK_NAME).stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "results").stat().st_mode & 0o777 == 0o755


def test_write_failure_only_names_refused_writes(tmp_path):
    out = tmp_path / "results"
    full = write_failure(OSError(errno.ENOSPC, "No space left on device"), out)
    assert str(full) == (
        f"cannot write {out} (No space left on device); free some space and rerun: result files already "
        "written are intact"
    )
    inside = write_failure(PermissionError(errno.EACCES, "Permission denied", str(out / "a.json")), out)
    assert str(inside).startswith(f"cannot write {out / 'a.json'} (Permission denied); choose another --out")
    # a refused read elsewhere (its reader reports it) and an error that is no refusal are not this line
    assert write_failure(PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x")), out) is None
    assert write_failure(OSError(errno.EIO, "I/O error"), out) is None

"""benchmarks/RESULTS.md: each script owns marked sections, ``<!-- KEY:begin -->`` … ``<!-- KEY:end -->``."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().with_name("RESULTS.md")
HEADER = (
    "# Benchmark results\n\nFigures written by the scripts in `benchmarks/`, each section with the "
    "machine it ran on. Rerunning a script replaces its section.\n"
)


def write_section(key: str, title: str, body: str, results: Path = RESULTS) -> None:
    """Replace the section ``key`` of ``results`` with ``title`` and ``body``, or append it if it is new."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    section = f"{begin}\n{title}\n\n{body}\n{end}"
    old = results.read_text() if results.exists() else HEADER
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + section + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + section + "\n"
    results.write_text(new)


def read_section(key: str, results: Path = RESULTS) -> str | None:
    """The body of section ``key`` (title line included), or None if the file or the section is missing."""
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    text = results.read_text() if results.exists() else ""
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")

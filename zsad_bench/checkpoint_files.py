"""Reading a checkpoint folder's files: ``config.json`` as a dict, or one line saying what it holds instead,
and the line for a weights file that is empty or not safetensors (``api.Detector``'s loaders use both)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from zsad_bench.errors import ZsadError

__all__ = ["corrupt_weights", "read_config"]


def read_config(config_file: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` as a dict, or one line saying what the file holds instead."""
    try:
        text = config_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ZsadError(
            f"checkpoint {config_file} holds binary data, not JSON; re-run 'zsad train'"
        ) from None
    if not text.strip():
        raise ZsadError(f"checkpoint {config_file} is empty; re-run 'zsad train'")
    try:
        stored = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ZsadError(
            f"checkpoint {config_file} is not JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}; "
            f"truncated or edited); re-run 'zsad train'"
        ) from None
    if not isinstance(stored, dict):
        raise ZsadError(
            f"checkpoint {config_file} holds a JSON {type(stored).__name__}, not a model's options; "
            f"re-run 'zsad train'"
        )
    return stored


def corrupt_weights(weights_file: Path, exc: Exception) -> str:
    what = "empty" if weights_file.stat().st_size == 0 else f"truncated or not safetensors ({exc})"
    return f"checkpoint {weights_file} is {what}; re-run 'zsad train'"

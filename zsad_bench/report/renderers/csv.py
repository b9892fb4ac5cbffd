"""CSV: the frame's numbers, two decimals, empty where missing; a comparison's ``<metric>_published`` and
``<metric>_delta`` stay columns of their own. Data only: no caption, no notes."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["render"]


def render(
    table: pd.DataFrame, decimals: int = 1, caption: str | None = None, notes: Sequence[str] = ()
) -> str:
    """The frame as CSV (``decimals``, ``caption`` and ``notes`` do not apply)."""
    return table.round(2).to_csv(na_rep="")

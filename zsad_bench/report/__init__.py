"""What is rendered from result files: leaderboard tables, their renderers, the papers' numbers, figures.

- ``tables``: result files -> pandas frames (dataset means, per class) and their cells;
- ``renderers``: a frame -> md, csv, latex or html, one module per format;
- ``published``: the papers' numbers, joined to a frame or rendered as the papers' tables;
- ``figures``: heatmap, per-class bars, ROC/PR/PRO curves and qualitative grids (``figures.plot``).

``read_results`` and ``RunResult`` belong to ``zsad_bench.results.schema``; they are re-exported here for
callers that read a folder and render it in one go.
"""

from zsad_bench.report.renderers import render
from zsad_bench.report.tables import leaderboard, per_class_leaderboard
from zsad_bench.results.schema import RunResult, read_results

__all__ = ["RunResult", "leaderboard", "per_class_leaderboard", "read_results", "render"]

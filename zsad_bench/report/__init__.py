"""Result files and what is rendered from them: leaderboards (and plots)."""

from zsad_bench.report.leaderboard import leaderboard, render
from zsad_bench.results.schema import METRICS, RunResult, read_results

__all__ = ["METRICS", "RunResult", "leaderboard", "read_results", "render"]

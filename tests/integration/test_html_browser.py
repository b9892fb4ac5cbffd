"""The HTML leaderboard in a real browser: clicking a header sorts the rows.

Drives Debian's ``chromium`` through Playwright's Python package (no ``playwright install``: the system
browser is used). Skipped where either is missing, except under ``ZSAD_REQUIRE_BROWSER=1``, which
``.ci/run`` sets after installing both: there a missing browser is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from zsad_bench.metrics.table import METRIC_KEYS
from zsad_bench.report import RunResult, leaderboard, render

# .ci/run sets ZSAD_REQUIRE_BROWSER=1: there a missing browser fails the test instead of skipping it unseen.
REQUIRED = os.environ.get("ZSAD_REQUIRE_BROWSER") == "1"


def _missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason}; ZSAD_REQUIRE_BROWSER=1 forbids skipping the browser test", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


try:
    from playwright import sync_api
except ImportError:
    _missing("the playwright package is not installed (pip install playwright)")
CHROMIUM = shutil.which("chromium") or next((p for p in ("/usr/bin/chromium",) if Path(p).exists()), None)
if CHROMIUM is None:
    _missing("no chromium on PATH (apt-get install chromium)")

# image AUROC per dataset; "c" lacks it (and so does every model's mean): both must sort last either way.
# 9.5 < 50.0 < 85.0 numerically but not as text, so a string sort would show up.
VALUES = {"a": 0.095, "b": 0.85, "c": None, "d": 0.5, "e": 1.0}


@pytest.fixture(scope="module")
def page_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = []
    for dataset, value in VALUES.items():
        mean = {m: None for m in METRIC_KEYS} | {"image_auroc": value, "image_ap": 0.5}
        results.append(RunResult(model="m", dataset=dataset, per_class={"x": mean}, mean=mean))
    path = tmp_path_factory.mktemp("html") / "leaderboard.html"
    path.write_text(render(leaderboard(results, ["image_auroc", "image_ap"]), "html", caption="results/"))
    return path


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        # Root (CI) cannot use chromium's sandbox.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def test_clicking_a_metric_header_sorts_numerically_with_missing_last(browser, page_path):
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_path.as_uri())

    def first_column() -> list[str]:
        return page.locator("#leaderboard tbody tr td:first-child").all_inner_texts()

    header = page.locator("#leaderboard thead th").nth(2)
    assert header.inner_text().startswith("I-AUROC ↑")
    assert first_column() == ["a", "b", "c", "d", "e", "mean"]

    header.click()  # first click: best first
    assert first_column() == ["e", "b", "d", "a", "c", "mean"]
    assert header.get_attribute("aria-sort") == "descending" and header.inner_text().endswith("▼")

    header.click()  # again: reversed, missing values still last
    assert first_column() == ["a", "d", "b", "e", "c", "mean"]
    assert header.get_attribute("aria-sort") == "ascending" and header.inner_text().endswith("▲")

    dataset = page.locator("#leaderboard thead th").first
    dataset.click()  # a text column sorts alphabetically; the metric header loses its arrow
    assert first_column() == ["a", "b", "c", "d", "e", "mean"]
    assert header.get_attribute("aria-sort") is None and header.inner_text() == "I-AUROC ↑"

    assert requests == [page_path.as_uri()]  # one static page: nothing else is fetched
    page.close()

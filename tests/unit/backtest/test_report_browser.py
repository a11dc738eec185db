"""Render the HTML report in headless Chromium: every plot decodes, every table and section is there.

A copy of the report gets a tiny inline script that, on the load event, writes what the browser
sees (natural sizes of the images, tables and their rows, section ids) as JSON into the DOM;
``--dump-dom`` reads it back. A ``--screenshot`` checks that the page paints something non-blank.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from report_expectations import FULL_PLOTS, FULL_SECTIONS, FULL_TABLES

from tradeforge.backtest import (
    ReportData,
    WalkForwardConfig,
    baseline_weights,
    cost_sensitivity,
    fold_test_window,
    make_folds,
    regime_table,
    run_backtest,
    run_walk_forward,
    sharpe_inference,
    significance_table,
    write_report,
)
from tradeforge.backtest.report import REPORT_FILE
from tradeforge.sim import CostConfig, SimConfig

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
PLOTS = set(FULL_PLOTS)
TABLES = set(FULL_TABLES)
SECTIONS = set(FULL_SECTIONS)
PROBE = """<script>
window.addEventListener("load", function () {
  var out = {imgs: [], tables: [], sections: []};
  document.querySelectorAll("img").forEach(function (i) {
    out.imgs.push({plot: i.dataset.plot, w: i.naturalWidth, h: i.naturalHeight,
                   complete: i.complete, shown: i.getBoundingClientRect().width});
  });
  document.querySelectorAll("table").forEach(function (t) {
    out.tables.push({name: t.dataset.table, rows: t.tBodies[0].rows.length,
                     cols: t.tHead.rows[0].cells.length});
  });
  document.querySelectorAll("[data-section]").forEach(function (s) { out.sections.push(s.id); });
  var pre = document.createElement("pre");
  pre.id = "tf-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


@pytest.fixture(scope="module")
def report_dir(sp500_panel: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); cannot render HTML")
    panel = sp500_panel
    cfg = SimConfig(costs=CostConfig(commission_bps=2.0))
    folds = make_folds(panel.index, WalkForwardConfig(train=3000, test=600, embargo=5))
    wf = run_walk_forward(
        folds,
        lambda fold, prev: 50,
        lambda fold, slow: run_backtest(
            panel,
            baseline_weights("ma_crossover", panel, fold.test.start, slow=slow),
            cfg,
            *fold_test_window(fold, panel.n_bars),
        ),
    )
    start = folds[0].test.start
    bh = run_backtest(panel, baseline_weights("buy_and_hold", panel, start), cfg, start)
    seeds = pd.DataFrame({"seed": [0, 1], "sharpe": [0.3, 0.5]})
    data = ReportData(
        strategy_returns=wf.returns,
        strategy_name="ma_crossover",
        baseline_equities={"buy_and_hold": bh.equity},
        weights=wf.stitched_frame("weights"),
        fold_table=wf.fold_table(panel.index),
        regime_table=regime_table(wf.returns, panel),
        significance_table=significance_table(wf.returns, {"buy_and_hold": bh.returns}, n_boot=200),
        cost_sensitivity=cost_sensitivity(
            panel,
            baseline_weights("ma_crossover", panel, start),
            cfg,
            multipliers=(0.0, 1.0, 2.0, 5.0),
            windows=[fold_test_window(f, panel.n_bars) for f in folds],
        ),
        sharpe_inference=sharpe_inference(wf.returns, trial_sharpes=np.array([0.3, 0.5])),
        seed_table=seeds,
        config={"note": "browser test"},
        notes=["Two seeds only"],
    )
    run_dir = tmp_path_factory.mktemp("browser_run")
    write_report(run_dir, data)
    return run_dir


def test_every_plot_decodes_and_every_table_renders(report_dir: Path, tmp_path: Path) -> None:
    html = (report_dir / REPORT_FILE).read_text(encoding="utf-8")
    assert "<script" not in html  # the report itself runs no code; only the probe copy does
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = _chromium(["--window-size=1280,2000", "--dump-dom", probe.as_uri()], tmp_path / "p1")
    match = re.search(r'<pre id="tf-probe">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"probe output missing; chromium rc={proc.returncode} stderr={proc.stderr[-800:]}"
    seen = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    imgs = {i["plot"]: i for i in seen["imgs"]}
    assert set(imgs) == PLOTS
    for name, img in imgs.items():
        with Image.open(report_dir / f"{name}.png") as png:
            assert (img["w"], img["h"]) == png.size, name  # decoded to the PNG's real size
        assert img["complete"], name
        assert img["shown"] > 300, name  # laid out at a readable width
    tables = {t["name"]: t for t in seen["tables"]}
    assert set(tables) == TABLES
    assert all(t["rows"] > 0 and t["cols"] > 1 for t in tables.values())
    assert (
        tables["cost_sensitivity"]["rows"] == 4 + 2
    )  # four cost multiples, then +1 and +2 bars of delay
    assert tables["significance"]["rows"] == 1
    assert set(seen["sections"]) == SECTIONS


def test_screenshot_paints_the_report(report_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    proc = _chromium(
        ["--window-size=1280,1600", f"--screenshot={shot}", (report_dir / REPORT_FILE).as_uri()],
        tmp_path / "p2",
    )
    assert shot.is_file(), f"no screenshot; chromium rc={proc.returncode} {proc.stderr[-800:]}"
    with Image.open(shot) as im:
        assert im.size == (1280, 1600)
        pixels = np.asarray(im.convert("RGB"), dtype=np.int32)
    # the header band is the dark-blue gradient, the body is light grey with white cards
    assert pixels[20, 40, 2] > pixels[20, 40, 0] + 60
    assert pixels[:80].std() > 5
    packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    assert len(np.unique(packed)) > 500  # plots and text, not a blank page

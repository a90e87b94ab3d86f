"""The HTML report: the pipeline's report asset writes reports/<as_of>/index.html for the
demo run; headless Chromium opens it from disk under its own Content-Security-Policy and
decodes every chart; the page holds no customer key and no contact detail; a missing mart
becomes a note, not a failure; `crm-pipeline report` explains bad dates.

Chromium is Debian's (`make test` installs it when missing). It runs with the flags this
machine needs (no sandbox as root, no background networking: the network is closed) and a
fresh profile. The rendering check injects a probe script into a copy of the page, whose
policy additionally allows inline script: images stay limited to data: URIs, so an image
that needed the network would be blocked and counted as broken.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.report import CSP, SECTIONS, render, report_dates, write_report
from pipelines.warehouse import Warehouse
from quality.pii import scrub_text
from tests.conftest import DEMO_DAYS, DEMO_START

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAST_DAY = DEMO_START + dt.timedelta(days=DEMO_DAYS - 1)
PROBE = (
    "<script>addEventListener('load', () => { const imgs = [...document.images];"
    " document.body.setAttribute('data-probe', JSON.stringify({n: imgs.length,"
    " ok: imgs.filter(i => i.complete && i.naturalWidth > 0).length})); });</script>"
)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is not installed: `make test` installs Debian's chromium (apt-get install chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture(scope="module")
def report(demo_pipeline) -> Path:
    assert demo_pipeline.result.success
    path = demo_pipeline.settings.report_root / LAST_DAY.isoformat() / "index.html"
    assert path.exists(), "the report asset wrote no report for the run's last day"
    return path


def test_the_report_is_one_self_contained_file(report):
    text = report.read_text(encoding="utf-8")
    assert f'content="{CSP}"' in text
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:image/png;base64,|#)""", text), "links outside the page"
    images = re.findall(r'<img src="data:image/png;base64,', text)
    # every section's charts (the 45-day demo has no CLV holdout yet, nor every wave) + quality
    assert len(images) >= 9
    assert oct(report.stat().st_mode & 0o777) == oct(0o640)


def test_chromium_renders_the_report_with_every_image(report, tmp_path):
    text = report.read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    probed.write_text(
        text.replace(f'content="{CSP}"', f"content=\"{CSP}; script-src 'unsafe-inline'\"").replace(
            "</body>", PROBE + "</body>"
        ),
        encoding="utf-8",
    )
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), profile=tmp_path / "p1").stdout
    found = re.search(r"data-probe=\"([^\"]+)\"", dom)
    assert found, f"the page did not finish loading:\n{dom[:500]}"
    probe = json.loads(found.group(1).replace("&quot;", '"'))
    assert probe["n"] == text.count("<img ") and probe["ok"] == probe["n"], probe
    # and a screenshot of the untouched page is a picture, not a blank page
    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,3000", f"--screenshot={shot}", report.as_uri(), profile=tmp_path / "p2")
    from matplotlib.image import imread

    pixels = imread(shot)
    colours = {tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3)}
    assert len(colours) > 50, "the screenshot is (nearly) blank"


def test_the_report_holds_no_customer_key_or_contact_detail(report, demo_pipeline):
    text = report.read_text(encoding="utf-8")
    visible = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert scrub_text(visible) == visible
    with Warehouse(demo_pipeline.settings.warehouse_path).connect(read_only=True) as con:
        keys = Warehouse.sql_df(con, "SELECT DISTINCT customer_key FROM marts.customer_360").customer_key
    assert len(keys) and not any(k in visible for k in keys)


def test_a_mart_without_the_snapshot_becomes_a_note(tmp_path):
    day = dt.date(2025, 3, 1)
    with Warehouse(tmp_path / "w.duckdb").connect() as con:
        raw = Warehouse._raw(con)
        raw.execute("CREATE SCHEMA marts")
        raw.execute("CREATE TABLE marts.customer_360 (as_of_date DATE, customer_key VARCHAR, net_monetary_12m DOUBLE)")
        raw.execute("INSERT INTO marts.customer_360 VALUES (?, 'k1', 10.0), (?, 'k2', 5.5)", [day, day])
        assert report_dates(con) == [day]
        page, drawn, missing = render(con, day)
        assert drawn == 0 and len(missing) == sum(len(s.figures) for s in SECTIONS)
        assert "marts.pareto: no snapshot on this date" in page and "No rows quarantined" in page
        assert "<dd>2</dd>" in page and "<dd>16</dd>" in page  # customers, revenue (15.5 rounds to 16)
        refused = "no snapshot of marts.customer_360 on 2025-03-02; latest as-of dates: 2025-03-01"
        with pytest.raises(ValueError, match=re.escape(refused)):
            write_report(con, day + dt.timedelta(days=1), tmp_path / "reports")
        out = write_report(con, day, tmp_path / "reports")
    assert out.path == tmp_path / "reports" / "2025-03-01" / "index.html" and out.charts == 0
    assert [p.name for p in out.path.parent.iterdir()] == ["index.html"], "no temporary file left behind"


def test_cli_report_writes_the_newest_date_and_refuses_unknown_ones(demo_pipeline, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRM_WAREHOUSE", demo_pipeline.settings.warehouse_path)
    monkeypatch.setenv("CRM_REPORTS", str(tmp_path / "r"))
    assert main(["report", "--as-of", "2024-01-01"]) == 2
    assert "No mart snapshot on 2024-01-01. Snapshots kept (latest): " in capsys.readouterr().err
    assert main(["report"]) == 0
    assert (tmp_path / "r" / LAST_DAY.isoformat() / "index.html").exists()
    assert str(LAST_DAY) in capsys.readouterr().out
    monkeypatch.setenv("CRM_WAREHOUSE", str(tmp_path / "none.duckdb"))
    assert main(["report"]) == 2
    assert "run the pipeline first" in capsys.readouterr().err


def test_the_quarantine_chart_is_none_without_rows_and_a_png_with_some():
    from analytics import charts

    empty_quarantine = pd.DataFrame(columns=["_partition_date", "reason_code", "rows"])
    assert charts.quarantine_over_time(empty_quarantine) is None
    counts = pd.DataFrame(
        {"_partition_date": [dt.date(2025, 1, d) for d in (1, 1, 2)], "reason_code": ["A", "B", "A"], "rows": [3, 1, 2]}
    )
    chart = charts.quarantine_over_time(counts)
    assert chart is not None and chart.png.startswith(b"\x89PNG") and chart.title == "Quarantine by reason"


def test_figures_of_per_customer_marts_read_only_the_columns_they_draw():
    """A snapshot per customer has millions of rows at scale: reading all its columns for one
    chart took the report to 19 GB at 100M order lines."""
    from assets.snapshots import ENTITY_KEYS
    from pipelines.definitions import ALL_ASSETS

    grain = {
        ".".join(spec.key.path): spec.metadata.get("grain", "")
        for asset in ALL_ASSETS
        if hasattr(asset, "specs")
        for spec in asset.specs
    }
    figures = [f for s in SECTIONS for f in s.figures]
    per_customer = [f.table for f in figures if any(k in grain[f.table] for k in ENTITY_KEYS)]
    assert {"marts.rfm_segments", "marts.lifecycle", "marts.clv"} <= set(per_customer)
    assert [f.table for f in figures if f.table in per_customer and not f.columns] == []

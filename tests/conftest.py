from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported lazily at run time: the environment below must be set first
    import pandas as pd

    from tests.backfill_kit import Site

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture
def con():
    """An in-memory warehouse connection (Ibis over DuckDB, with the DuckDB 2.0 shim)."""
    from pipelines.warehouse import Warehouse

    with Warehouse(":memory:").connect() as connection:
        yield connection


DEMO_START = dt.date(2025, 1, 1)
DEMO_DAYS = 45


@dataclass
class DemoPipeline:
    """Every real Dagster asset (ingestion, marts, exports, report) run over a small demo with
    planted defects, as one single-run backfill."""

    result: object
    settings: object
    landing: Path
    defects: dict


@pytest.fixture(scope="session")
def demo_pipeline(tmp_path_factory) -> DemoPipeline:
    """Shared by the modules that check the run's output (test_demo_defects, test_report): the
    run takes a minute, so it runs once per session."""
    import dagster as dg

    from analytics import synth
    from pipelines.definitions import ALL_ASSETS
    from pipelines.resources import build_resources
    from pipelines.settings import Settings

    root = tmp_path_factory.mktemp("demo")
    landing = root / "landing"
    synth.generate(landing, customers=400, days=DEMO_DAYS, seed=11, defects=0.04, start=DEMO_START)
    defects = json.loads((landing / "defects.json").read_text(encoding="utf-8"))
    settings = Settings(
        warehouse_path=str(root / "wh" / "crm.duckdb"), landing_path=str(landing), quarantine_ceiling=0.5
    )
    end = DEMO_START + dt.timedelta(days=DEMO_DAYS - 1)
    result = dg.materialize(
        ALL_ASSETS,
        resources=build_resources(settings),
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": DEMO_START.isoformat(),
            "dagster/asset_partition_range_end": end.isoformat(),
        },
    )
    return DemoPipeline(result, settings, landing, defects)


@dataclass
class CliBackfill:
    """A small landing folder (no planted defects) and one `crm-pipeline backfill` over it, run
    alone as a real process on a persistent instance: the reference the backfill and
    robustness tests compare against."""

    landing: Path
    site: Site
    output: str
    tables: dict[str, pd.DataFrame]


@pytest.fixture(scope="session")
def cli_backfill(tmp_path_factory) -> CliBackfill:
    from analytics import synth
    from tests import backfill_kit as bk

    root = tmp_path_factory.mktemp("backfill")
    # no planted defects: at this size they would trip the quarantine ceiling (the routing of
    # bad rows in batches vs days is proven in test_batch_equivalence)
    synth.generate(root / "landing", customers=150, days=bk.DAYS, seed=9, defects=0.0, start=bk.START)
    site = bk.Site(root, root / "landing", "reference")
    output = site.run("backfill", *bk.RANGE)
    return CliBackfill(root / "landing", site, output, bk.tables(site.warehouse))


#: Modules that share a session fixture: each group runs on one xdist worker, so the fixture
#: (a minute of pipeline) is built once per test run rather than once per worker.
_SHARED_FIXTURE_GROUPS = {
    "test_demo_defects": "demo_pipeline",
    "test_report": "demo_pipeline",
    "test_nightly_360_asset": "demo_pipeline",
    "test_backfill": "cli_backfill",
    "test_robustness": "cli_backfill",
}


#: Scopes (modules or the groups above) by how long they take, longest first: xdist hands
#: scopes out in collection order, so a long module collected last (test_spark_parity sorts
#: late) would run alone at the end while the other worker idles. Scopes not named keep their
#: order after these. Refresh from `pytest --durations=0` when a module's cost changes a lot.
_LONGEST_FIRST = ("test_spark_parity", "demo_pipeline", "cli_backfill", "test_bench")


def _scope(nodeid: str) -> str:
    module = nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
    return _SHARED_FIXTURE_GROUPS.get(module, module)


def pytest_collection_modifyitems(items) -> None:
    rank = {scope: i for i, scope in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_scope(item.nodeid), len(rank)))  # stable: order kept within


def pytest_xdist_make_scheduler(config, log):
    """Hand whole modules (or groups of modules sharing a session fixture) to the xdist workers,
    never single tests: most modules build module-scoped fixtures that would otherwise be built
    on both workers. (`--dist loadgroup` would do this from marks, but xdist 3.8 cannot rename
    test ids under pytest 9.2, so the marks are ignored; a scheduler keyed on the path is not.)"""
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            return _scope(nodeid)

    return ModuleGroups(config, log)

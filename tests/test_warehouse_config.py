"""DuckDB settings that come from the pipeline settings: the memory limit (how a big run is
kept within a memory budget: DuckDB spills beyond it)."""

import pytest

from pipelines import warehouse as wh
from pipelines.resources import build_resources
from pipelines.settings import Settings, load_settings
from pipelines.warehouse import Warehouse, open_warehouse


def _limit(warehouse) -> str:
    with warehouse.connect() as con:
        return Warehouse._raw(con).execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


def test_the_memory_limit_reaches_duckdb_from_settings_resource_and_environment(tmp_path, monkeypatch):
    path = str(tmp_path / "crm.duckdb")
    default = _limit(Warehouse(path))
    settings = Settings(warehouse_path=path, duckdb_memory_limit="512MB")
    assert _limit(open_warehouse(settings)) == _limit(build_resources(settings)["warehouse"].warehouse) != default
    assert _limit(open_warehouse(settings)) in ("488.2 MiB", "512.0 MB", "488.2MiB")
    monkeypatch.setenv("CRM_DUCKDB_MEMORY_LIMIT", "1GB")
    assert load_settings(None).duckdb_memory_limit == "1GB"
    # where the rows are computed, not what they are: the settings version does not move
    assert Settings(duckdb_memory_limit="1GB").version == Settings().version


def _now(con) -> str:
    return Warehouse._raw(con).execute("SELECT current_setting('memory_limit')").fetchall()[0][0]


@pytest.mark.parametrize("configured", ["2GB", ""])
def test_memory_is_lent_to_pandas_and_the_configured_budget_comes_back(tmp_path, configured):
    """While a step works in pandas DuckDB's budget is LENT_MEMORY_LIMIT; afterwards, even
    after an error, it is the configured one again (or DuckDB's default)."""
    warehouse = Warehouse(str(tmp_path / "crm.duckdb"), memory_limit=configured)
    with warehouse.connect() as con:
        before = _now(con)
        with pytest.raises(RuntimeError), wh.memory_lent(con, configured):
            assert _now(con) in ("488.2 MiB", "488.2MiB")
            raise RuntimeError("the pandas work failed")
        assert _now(con) == before

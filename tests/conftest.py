import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")


@pytest.fixture
def con():
    """An in-memory warehouse connection (Ibis over DuckDB, with the DuckDB 2.0 shim)."""
    from pipelines.warehouse import Warehouse

    with Warehouse(":memory:").connect() as connection:
        yield connection

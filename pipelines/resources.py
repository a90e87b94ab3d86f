"""Dagster resources: the warehouse and the pipeline settings, defined once.

`WarehouseResource` opens the DuckDB file through `pipelines.warehouse` and always
closes it (the file lock must never outlive a failed step). Every asset that
writes to it runs in the `warehouse` pool, limited to one at a time by
dagster.yaml, because DuckDB allows a single writer process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import ibis

from pipelines.settings import Settings, load_settings, settings_from_json, settings_to_json
from pipelines.warehouse import Warehouse, is_lock_error

WAREHOUSE_POOL = "warehouse"
#: Step retries when the warehouse stays locked (after Warehouse's own backoff), and the wait between them.
LOCK_RETRIES = 3
LOCK_RETRY_WAIT_S = 60


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse (staging, quarantine, marts, meta): the DuckDB file at `path`, or, with
    engine "spark", Parquet tables in a Spark catalog at `spark_location`."""

    path: str
    engine: str = "duckdb"
    memory_limit: str = ""
    spark_master: str = "local[*]"
    spark_location: str = ""
    spark_conf: dict[str, str] = {}  # noqa: RUF012 (a Dagster config field, copied per instance)

    @property
    def warehouse(self) -> Warehouse:
        if self.engine == "spark":
            from pipelines.spark_warehouse import SparkWarehouse

            return SparkWarehouse(self.spark_location, self.spark_master, self.spark_conf)
        return Warehouse(self.path, memory_limit=self.memory_limit)

    @property
    def docs_dir(self) -> Path:
        return Path(self.path).parent / "data_docs"

    @contextlib.contextmanager
    def connect(self) -> Iterator[ibis.BaseBackend]:
        """The connection; a lock still held by another process after the warehouse's own
        wait (Warehouse.lock_timeout_s) becomes a step retry with backoff, not a failure."""
        with contextlib.ExitStack() as stack:
            try:
                con = stack.enter_context(self.warehouse.connect())
            except duckdb.IOException as exc:
                if not is_lock_error(exc):
                    raise
                raise dg.RetryRequested(max_retries=LOCK_RETRIES, seconds_to_wait=LOCK_RETRY_WAIT_S) from exc
            yield con


class PipelineSettings(dg.ConfigurableResource):
    """Run-time parameters: the whole `Settings` object as JSON (see pipelines/settings.py
    for every field, its meaning and default). Override per run in the launchpad."""

    values_json: str

    @property
    def value(self) -> Settings:
        return settings_from_json(self.values_json)

    @property
    def version(self) -> str:
        return self.value.version

    @classmethod
    def from_settings(cls, s: Settings) -> PipelineSettings:
        return cls(values_json=settings_to_json(s))


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    settings = settings or load_settings()
    return {
        "warehouse": WarehouseResource(
            path=settings.warehouse_path,
            engine=settings.engine,
            memory_limit=settings.duckdb_memory_limit,
            spark_master=settings.spark_master,
            spark_location=settings.spark_location,
            spark_conf=dict(settings.spark_conf),
        ),
        "settings": PipelineSettings.from_settings(settings),
    }

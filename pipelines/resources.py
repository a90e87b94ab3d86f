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
import ibis

from pipelines.settings import Settings, load_settings
from pipelines.warehouse import Warehouse

WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (staging, quarantine, marts, meta)."""

    path: str

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.path)

    @property
    def docs_dir(self) -> Path:
        return Path(self.path).parent / "data_docs"

    @contextlib.contextmanager
    def connect(self) -> Iterator[ibis.BaseBackend]:
        with self.warehouse.connect() as con:
            yield con


class PipelineSettings(dg.ConfigurableResource):
    """Run-time parameters (see pipelines/settings.py for meaning and defaults)."""

    landing_path: str
    business_timezone: str
    min_valid_date: str
    quarantine_ceiling: float
    speeder_seconds: int
    attention_check_answer: int
    source_timezones: dict[str, str] = {}  # noqa: RUF012 (pydantic copies defaults)
    version: str = ""

    @classmethod
    def from_settings(cls, s: Settings) -> PipelineSettings:
        return cls(
            landing_path=s.landing_path,
            business_timezone=s.business_timezone,
            min_valid_date=s.min_valid_date,
            quarantine_ceiling=s.quarantine_ceiling,
            speeder_seconds=s.speeder_seconds,
            attention_check_answer=s.attention_check_answer,
            source_timezones=dict(s.source_timezones),
            version=s.version,
        )


def build_resources(settings: Settings | None = None) -> dict[str, dg.ConfigurableResource]:
    settings = settings or load_settings()
    return {
        "warehouse": WarehouseResource(path=settings.warehouse_path),
        "settings": PipelineSettings.from_settings(settings),
    }

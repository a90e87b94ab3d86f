"""Pipeline settings: one typed object, documented defaults, overridable by YAML and
environment.

Precedence (last wins): the defaults below, the YAML file named by
`CRM_SETTINGS` (if set), then the `CRM_*` environment variables for paths. Every
table row records `settings_version`, a short hash of the effective settings, so a
number can always be traced back to the parameters it was built with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Settings:
    #: DuckDB file that holds staging, quarantine and marts.
    warehouse_path: str = "warehouse/crm.duckdb"
    #: Folder the feeds land in (see quality/landing.py for the layout).
    landing_path: str = "landing"
    #: Time zone in which a business day starts and ends; partition keys are days here.
    business_timezone: str = "Asia/Shanghai"
    #: First partition (business date). The demo generator starts here too.
    partitions_start: str = "2025-01-01"
    #: Dates before this are DATE_OUT_OF_RANGE (catches 1970-01-01 and 1900 defaults).
    min_valid_date: str = "2000-01-01"
    #: Source time zone per feed for timestamps that carry no UTC offset. A feed not
    #: listed here must send offsets; naive timestamps are then NAIVE_TIMESTAMP.
    source_timezones: dict[str, str] = field(default_factory=dict)
    #: Blocking check: share of a partition's rows that may be quarantined.
    quarantine_ceiling: float = 0.05
    #: Survey responses completed faster than this are flagged as speeders.
    speeder_seconds: int = 90
    #: Expected answer of the survey's attention-check item.
    attention_check_answer: int = 7

    @property
    def version(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    @property
    def start_date(self) -> dt.date:
        return dt.date.fromisoformat(self.partitions_start)

    @property
    def min_date(self) -> dt.date:
        return dt.date.fromisoformat(self.min_valid_date)


_ENV_PATHS = {"CRM_WAREHOUSE": "warehouse_path", "CRM_LANDING": "landing_path"}


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Defaults, then the YAML file (`path` or $CRM_SETTINGS), then CRM_* variables."""
    values: dict[str, object] = {}
    path = path or os.environ.get("CRM_SETTINGS")
    if path:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        known = {f.name for f in dataclasses.fields(Settings)}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise ValueError(f"{path}: unknown settings {unknown}; known: {sorted(known)}")
        values.update(loaded)
    for env, name in _ENV_PATHS.items():
        if os.environ.get(env):
            values[name] = os.environ[env]
    settings = Settings(**values)  # type: ignore[arg-type]
    dt.date.fromisoformat(settings.partitions_start)
    dt.date.fromisoformat(settings.min_valid_date)
    if not 0 <= settings.quarantine_ceiling <= 1:
        raise ValueError("quarantine_ceiling must be a share between 0 and 1")
    return settings

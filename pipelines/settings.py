"""Pipeline settings: one typed object, documented defaults, overridable by YAML and
environment.

Precedence (last wins): the defaults below, the YAML file named by
`CRM_SETTINGS` (if set), then the `CRM_*` environment variables (paths and the engine). Every
table row records `settings_version`, a short hash of the effective settings, so a
number can always be traced back to the parameters it was built with.

The mart parameters are the `*Params` dataclasses of the analytics modules (each
defined next to the maths it tunes); here they are only gathered, one YAML section
each (`rfm:`, `value:`, ...). The identity secret is deliberately *not* a setting:
it comes from the environment (`CRM_IDENTITY_SECRET`) and never enters the version
hash or any file.
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

from analytics.clv_marts import ClvParams
from analytics.customer360 import Customer360Params
from analytics.identity import IdentityParams
from analytics.lifecycle import LifecycleParams
from analytics.loyalty import LoyaltyParams
from analytics.migration import MigrationParams
from analytics.prospects import ProspectParams
from analytics.rfm import RFMParams
from analytics.satisfaction.marts import SatisfactionParams
from analytics.shopping import ShoppingListParams
from analytics.tiers import TierMatrixParams
from analytics.value import ValueParams
from quality.contracts import FEEDS


@dataclass(frozen=True)
class Settings:
    #: DuckDB file that holds staging, quarantine and marts.
    warehouse_path: str = "warehouse/crm.duckdb"
    #: Engine that stores the tables and runs the marts: "duckdb" (the file above) or "spark"
    #: (partitioned Parquet in a Spark catalog; see README "Spark" and pipelines/spark_warehouse.py).
    engine: str = "duckdb"
    #: DuckDB's memory limit (e.g. "6GB"; empty: DuckDB's default, 80 % of RAM). Beyond it DuckDB
    #: spills to a temp folder beside the warehouse, so a big backfill stays within the budget.
    duckdb_memory_limit: str = ""
    #: Rows (as the manifests declare them) that ingestion routes together in memory, about 2 GB
    #: per million order lines: a batch of days ends before it, and a bigger day is routed in key
    #: chunks of about this size. The rows loaded do not depend on it (tests/test_batch_equivalence.py).
    ingest_batch_rows: int = 1_000_000
    #: Spark master URL (engine spark): "local[*]" on one machine, "spark://host:7077", "yarn", "k8s://…".
    spark_master: str = "local[*]"
    #: Where Spark keeps the tables (and, unless spark_conf names a metastore, its catalog): a path or
    #: an hdfs:// / s3a:// URI. Empty: <warehouse folder>/spark.
    spark_warehouse: str = ""
    #: Extra Spark configuration, e.g. {"spark.hadoop.hive.metastore.uris": "thrift://…"}.
    spark_conf: dict[str, str] = field(default_factory=dict)
    #: Folder the feeds land in (see quality/landing.py for the layout).
    landing_path: str = "landing"
    #: Parquet exports, <export_path>/<table>/as_of_date=<YYYY-MM-DD>/data.parquet; empty: beside the warehouse.
    export_path: str = ""
    #: The database file BI tools open (pseudonymised marts only); empty: <export folder>/bi.duckdb.
    bi_path: str = ""
    #: HTML reports, <report_path>/<as_of>/index.html; empty: <warehouse folder>/reports.
    report_path: str = ""
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
    #: Mart snapshots a multi-day run builds: "all" (every day), or "retained" (the last
    #: `snapshot_recent_days` days of the range plus every month-end), see pipelines/cli.
    snapshot_recent_days: int = 35
    #: Build a one-day run's customer 360 from the day before's snapshot (only the customers
    #: whose facts changed are recomputed; analytics/customer360.customer_360_nightly). The rows
    #: are the same either way; false always rebuilds from the whole history.
    nightly_incremental: bool = True
    # -- automation (pipelines/schedules.py, pipelines/sensors.py) -----------------------
    #: Local time (business time zone, HH:MM) of the nightly run of yesterday's partition.
    nightly_at: str = "02:30"
    #: Seconds between two looks of the landing sensor for complete days.
    sensor_interval_s: int = 60
    #: Feeds whose manifest makes a landing day complete; empty = every feed in the contracts.
    required_feeds: tuple[str, ...] = ()
    #: Whether the schedule and sensors start switched on (else: turn them on in the UI).
    automation_running: bool = False
    #: URL that receives a JSON POST when a run fails (empty: log only).
    alert_webhook_url: str = ""
    # -- mart parameters (each documented in its analytics module) ----------------------
    identity: IdentityParams = field(default_factory=IdentityParams)
    customer360: Customer360Params = field(default_factory=Customer360Params)
    rfm: RFMParams = field(default_factory=RFMParams)
    value: ValueParams = field(default_factory=ValueParams)
    loyalty: LoyaltyParams = field(default_factory=LoyaltyParams)
    tiers: TierMatrixParams = field(default_factory=TierMatrixParams)
    lifecycle: LifecycleParams = field(default_factory=LifecycleParams)
    migration: MigrationParams = field(default_factory=MigrationParams)
    shopping: ShoppingListParams = field(default_factory=ShoppingListParams)
    prospects: ProspectParams = field(default_factory=ProspectParams)
    clv: ClvParams = field(default_factory=ClvParams)
    satisfaction: SatisfactionParams = field(default_factory=SatisfactionParams)

    @property
    def version(self) -> str:
        """Hash of what decides the rows: every setting except where files live and how runs
        are triggered (`UNVERSIONED`), so the same data built in another folder, or by the
        sensor instead of the schedule, carries the same version."""
        values = {k: v for k, v in dataclasses.asdict(self).items() if k not in UNVERSIONED}
        return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]

    @property
    def spark_location(self) -> str:
        return self.spark_warehouse or str(Path(self.warehouse_path).parent / "spark")

    @property
    def export_root(self) -> Path:
        return Path(self.export_path) if self.export_path else Path(self.warehouse_path).parent / "exports"

    @property
    def report_root(self) -> Path:
        return Path(self.report_path) if self.report_path else Path(self.warehouse_path).parent / "reports"

    @property
    def fit_cache_root(self) -> Path:
        """Satisfaction model fits kept between runs (analytics/satisfaction/fit_cache.py)."""
        return Path(self.warehouse_path).parent / "cache" / "satisfaction_fits"

    @property
    def bi_file(self) -> Path:
        return Path(self.bi_path) if self.bi_path else self.export_root / "bi.duckdb"

    @property
    def start_date(self) -> dt.date:
        return dt.date.fromisoformat(self.partitions_start)

    @property
    def min_date(self) -> dt.date:
        return dt.date.fromisoformat(self.min_valid_date)


ENGINES = ("duckdb", "spark")

#: Settings that do not change any row: paths, automation and alerting.
UNVERSIONED = frozenset(
    {
        "warehouse_path",
        "engine",
        "duckdb_memory_limit",
        "ingest_batch_rows",
        "spark_master",
        "spark_warehouse",
        "spark_conf",
        "landing_path",
        "export_path",
        "bi_path",
        "report_path",
        "nightly_at",
        "sensor_interval_s",
        "required_feeds",
        "automation_running",
        "alert_webhook_url",
        "nightly_incremental",
    }
)

_ENV = {
    "CRM_WAREHOUSE": "warehouse_path",
    "CRM_ENGINE": "engine",
    "CRM_DUCKDB_MEMORY_LIMIT": "duckdb_memory_limit",
    "CRM_SPARK_MASTER": "spark_master",
    "CRM_SPARK_WAREHOUSE": "spark_warehouse",
    "CRM_LANDING": "landing_path",
    "CRM_EXPORTS": "export_path",
    "CRM_BI": "bi_path",
    "CRM_REPORTS": "report_path",
}


def _tuples(value: object) -> object:
    if isinstance(value, list | tuple):
        return tuple(_tuples(v) for v in value)
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return value


def build(cls: type, data: dict, where: str = "settings") -> object:
    """A (nested) settings dataclass from plain data: YAML lists become tuples, a dict
    for a dataclass-typed field becomes that dataclass; unknown keys are an error."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown settings {unknown}; known: {sorted(fields)}")
    values: dict[str, object] = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and isinstance(value, dict):
            values[name] = build(type(default), value, f"{where}.{name}")
        elif dataclasses.is_dataclass(default) and dataclasses.is_dataclass(value):
            values[name] = value
        elif isinstance(default, dt.date) and isinstance(value, str):
            try:
                values[name] = dt.date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"{where}.{name}: not a date (YYYY-MM-DD): {value!r}") from exc
        else:
            values[name] = _tuples(value)
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def settings_from_json(text: str) -> Settings:
    return build(Settings, json.loads(text))  # type: ignore[return-value]


def settings_to_json(settings: Settings) -> str:
    return json.dumps(dataclasses.asdict(settings), sort_keys=True, default=str)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Defaults, then the YAML file (`path` or $CRM_SETTINGS), then CRM_* variables."""
    values: dict[str, object] = {}
    path = path or os.environ.get("CRM_SETTINGS")
    if path:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        values.update(loaded)
    for env, name in _ENV.items():
        if os.environ.get(env):
            values[name] = os.environ[env]
    settings: Settings = build(Settings, values, str(path or "settings"))  # type: ignore[assignment]
    dt.date.fromisoformat(settings.partitions_start)
    dt.date.fromisoformat(settings.min_valid_date)
    if settings.engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {settings.engine!r}")
    if not (isinstance(settings.ingest_batch_rows, int) and settings.ingest_batch_rows >= 1):
        raise ValueError(f"ingest_batch_rows must be a whole number of rows, got {settings.ingest_batch_rows!r}")
    if not 0 <= settings.quarantine_ceiling <= 1:
        raise ValueError("quarantine_ceiling must be a share between 0 and 1")
    try:
        dt.time.fromisoformat(settings.nightly_at)
    except ValueError:
        raise ValueError(f"nightly_at must be HH:MM, got {settings.nightly_at!r}") from None
    if unknown := sorted(set(settings.required_feeds) - set(FEEDS)):
        raise ValueError(f"required_feeds: unknown feeds {unknown}; known: {sorted(FEEDS)}")
    return settings


#: Used when CRM_IDENTITY_SECRET is not set: fine for demo data, never for real customers.
DEV_IDENTITY_SECRET = "crm-pipeline-dev-secret-do-not-use-in-production"


def identity_secret(warn=None) -> bytes:
    """The HMAC secret for customer keys, from $CRM_IDENTITY_SECRET. Without it the dev
    default is used and `warn` (a logging function) is told so: keys made with a known
    secret can be recomputed by anyone who has the raw identifiers."""
    secret = os.environ.get("CRM_IDENTITY_SECRET", "")
    if not secret:
        if warn is not None:
            warn(
                "CRM_IDENTITY_SECRET is not set: customer keys use the development secret. "
                "Set it (and keep it stable) before loading real customer data."
            )
        secret = DEV_IDENTITY_SECRET
    return secret.encode("utf-8")

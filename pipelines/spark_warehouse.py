"""The warehouse on Spark: the same tables and the same operations as `pipelines.warehouse`
(DuckDB), for data that outgrows one machine. Selected with `engine: spark` in the settings.

The mart code does not change: it is Ibis, and Ibis compiles it to Spark SQL. What differs
is the table store and the few operations Ibis does not cover, implemented here:

- Tables are Parquet, partitioned by their slice column (`as_of_date` for marts,
  `_partition_date` (and `feed`) for staging, quarantine and meta), registered in the
  session's catalog. Locally that is an embedded Hive metastore (Derby) beside the Parquet
  files under `spark_warehouse`; on a cluster, point `spark_conf` at the cluster's metastore
  or catalog and `spark_warehouse` at shared storage (hdfs://, s3a://). A partition column is
  stored last in a Spark table; every read and insert goes by column name.
- Replacing a slice (`replace_rows`): the new rows are computed once (checkpointed), audited
  like on DuckDB (inside the slice, unique key), then each slice's partitions are dropped and
  the new rows appended. Without a transactional table format (Delta, Iceberg: neither is
  available offline here) this is atomic per partition, not across tables: a job killed
  between two tables leaves one slice new and one old until the partition is rerun (reruns
  are idempotent).
- Temporary tables (`Scratch`, and the audit's staging) are checkpointed DataFrames behind
  temporary views: Ibis 12's PySpark backend has no `create_table(temp=True)`, and the
  identity resolution's label propagation needs each round materialised with its lineage cut.
- The session time zone is UTC (day differences of timestamps would drift otherwise), like
  the DuckDB connection.

One SparkSession per process (starting one takes seconds); `connect()` reuses it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import sys
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
from ibis.backends.pyspark import Backend as _IbisPySpark
from ibis.backends.sql.compilers.base import NULL
from ibis.backends.sql.compilers.pyspark import PySparkCompiler

from pipelines.warehouse import AuditFailed, ColumnDef, Replace, Warehouse

_log = logging.getLogger(__name__)

#: Spark settings every session gets; `spark_conf` in the settings adds to or overrides them.
BASE_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.catalogImplementation": "hive",
    "spark.sql.legacy.createHiveTableByDefault": "false",
    "spark.sql.hive.metastorePartitionPruningFallbackOnException": "true",
}
#: Local mode on this machine: few shuffle partitions (the default 200 is for clusters).
LOCAL_CONF: dict[str, str] = {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4"}

_TYPES = {"VARCHAR": "STRING", "HUGEINT": "DECIMAL(38,0)", "TIMESTAMPTZ": "TIMESTAMP"}

_session_lock = threading.Lock()
#: The (master, location, conf) the process's session was started with.
_started: dict[str, tuple] = {}


def spark_type(sql_type: str) -> str:
    """The Spark SQL type of a column declared with a DuckDB type (analytics/schema.py)."""
    return _TYPES.get(sql_type.upper(), sql_type)


def partition_columns(columns: Sequence[ColumnDef]) -> list[str]:
    """A table's slice columns, which `replace_rows` replaces by: a mart's snapshot date, or a
    feed's business day (and the feed, for the meta tables shared by the feeds)."""
    names = [c.name for c in columns]
    if "as_of_date" in names:
        return ["as_of_date"]
    return [c for c in ("feed", "_partition_date") if c in names]


def spark_session(master: str, location: str, conf: Mapping[str, str] | None = None):
    """The process's SparkSession (created on first use). `location` holds the tables (and,
    unless `conf` names another metastore, the embedded one)."""
    from pyspark.sql import SparkSession

    with _session_lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            started = _started.get("key")
            if started is not None and started != (master, location, dict(conf or {})):
                raise RuntimeError(
                    f"this process already runs Spark with {started[:2]}; one process serves one "
                    "warehouse (start another process for another location)"
                )
            return active
        _started["key"] = (master, location, dict(conf or {}))
        local = master.startswith("local")
        settings = dict(BASE_CONF) | (LOCAL_CONF if local else {})
        if "://" not in location:
            root = Path(location).resolve()
            root.mkdir(parents=True, exist_ok=True)
            location = str(root)
            settings |= {
                "spark.sql.warehouse.dir": str(root / "tables"),
                "spark.hadoop.javax.jdo.option.ConnectionURL": (
                    f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
                ),
                "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
                # the embedded metastore cannot filter DATE partitions; Spark prunes them itself
                "spark.sql.hive.metastorePartitionPruning": "false",
            }
        else:
            settings["spark.sql.warehouse.dir"] = location.rstrip("/") + "/tables"
        settings |= dict(conf or {})
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.master(master).appName("crm-pipeline")
        for key, value in settings.items():
            builder = builder.config(key, value)
        _log.info("starting Spark (%s), tables in %s", master, location)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel("ERROR")
        return session


class _Compiler(PySparkCompiler):
    """Ibis 12's PySpark compiler, where it disagrees with DuckDB's."""

    def visit_CountStar(self, op, *, arg, where):
        # Ibis compiles count(where=c) to SUM(CAST(c AS BIGINT)): NULL, not 0, when c is NULL on
        # every row of a group (e.g. no response has an exclusion reason).
        if where is not None:
            return self.f.count(self.if_(where, 1, NULL))
        return super().visit_CountStar(op, arg=arg, where=where)


class SparkBackend(_IbisPySpark):
    """Ibis' PySpark backend plus temporary tables: a checkpointed DataFrame behind a
    temporary view (Ibis 12 raises on `create_table(temp=True)`), and the compiler fixes above."""

    compiler = _Compiler()

    def do_connect(self, session, mode: str = "batch", **kwargs) -> None:
        super().do_connect(session, mode, **kwargs)
        self._temp: dict[str, object] = {}

    def to_spark(self, expr: ir.Table):
        """The Spark DataFrame of an Ibis expression (its memtables registered)."""
        self._run_pre_execute_hooks(expr)
        return self._session.sql(self.compile(expr))

    def create_table(self, name, /, obj=None, *, schema=None, database=None, temp=None, overwrite=False, **kw):
        if not temp:
            return super().create_table(
                name, obj, schema=schema, database=database, temp=temp, overwrite=overwrite, **kw
            )
        if obj is None:
            raise ValueError("a temporary table needs its rows (obj)")
        frame = self.to_spark(obj if isinstance(obj, ir.Expr) else ibis.memtable(obj))
        self.keep_frame(name, frame)
        return self.table(name)

    def keep_frame(self, name: str, frame) -> None:
        """Materialise a DataFrame (lineage cut) as the temporary view `name`."""
        kept = frame.localCheckpoint(eager=True)
        kept.createOrReplaceTempView(name)
        self._temp[name] = kept

    def drop_table(self, name, /, *, database=None, force=False) -> None:
        kept = self._temp.pop(name, None)
        if kept is None:
            return super().drop_table(name, database=database, force=force)
        self._session.catalog.dropTempView(name)
        kept.unpersist()


def _literal(value: object) -> str:
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    raise TypeError(f"no Spark SQL literal for {type(value).__name__}")


class SparkWarehouse(Warehouse):
    """Tables as partitioned Parquet in a Spark catalog; the `Warehouse` operations on Spark."""

    def __init__(self, location: str, master: str = "local[*]", conf: Mapping[str, str] | None = None) -> None:
        self.location = location
        self.master = master
        self.conf = dict(conf or {})
        self.path = Path(location) if "://" not in location else Path(location.split("://", 1)[1])

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[SparkBackend]:
        session = spark_session(self.master, self.location, self.conf)
        # Loading the backend through `ibis.pyspark` registers `ibis.options.pyspark`, which
        # its compiler reads; a subclass instantiated directly would skip that.
        getattr(ibis, "pyspark")  # noqa: B009
        con = SparkBackend().connect(session)
        try:
            yield con
        finally:
            for name in list(con._temp):
                con.drop_table(name)

    @staticmethod
    def _session(con: SparkBackend):
        return con._session

    @classmethod
    def sql_df(cls, con: SparkBackend, sql: str, params: Sequence[object] = (), **frames: pd.DataFrame) -> pd.DataFrame:
        """Spark SQL (`?` markers bound to `params`) with pandas frames visible under the given
        names; return pandas (dates as datetime.date, like DuckDB)."""
        session = cls._session(con)
        for name, frame in frames.items():
            _to_spark(session, frame).createOrReplaceTempView(name)
        try:
            # Spark binds positional markers only when given arguments.
            result = session.sql(sql, args=list(params)) if params else session.sql(sql)
            return _dates_as_dates(result.toPandas(), result.schema)
        finally:
            for name in frames:
                session.catalog.dropTempView(name)

    @staticmethod
    def quote(identifier: str) -> str:
        return _bq(identifier)

    @classmethod
    def exists(cls, con: SparkBackend, table: str) -> bool:
        return bool(cls._session(con).catalog.tableExists(table))

    @classmethod
    def ensure_table(cls, con: SparkBackend, table: str, columns: Sequence[ColumnDef], comment: str = "") -> None:
        """Create the partitioned Parquet table if missing (with comments); fail clearly if it drifted."""
        session = cls._session(con)
        schema, _, _ = table.partition(".")
        session.sql(f"CREATE DATABASE IF NOT EXISTS {_bq(schema)}")
        parts = partition_columns(columns)
        want = [c.name for c in columns if c.name not in parts] + parts
        if cls.exists(con, table):
            have = session.table(table).columns
            if have != want:
                raise RuntimeError(
                    f"{table} exists with columns {have}, but this version writes {want}. "
                    "Drop the table and rerun the affected partitions."
                )
            return
        cols = ", ".join(f"{_bq(c.name)} {spark_type(c.sql_type)}{_comment(c.comment)}" for c in columns)
        partitioned = f" PARTITIONED BY ({', '.join(_bq(p) for p in parts)})" if parts else ""
        session.sql(f"CREATE TABLE {_bqt(table)} ({cols}) USING parquet{partitioned}{_comment(comment)}")

    @classmethod
    def replace_rows(cls, con: SparkBackend, writes: Iterable[Replace]) -> None:
        """Replace slices of tables after an audit (see `Warehouse.replace_rows`): stage and
        audit every write first; only then, per table, drop the slice's partitions and append
        the new rows. Atomic per partition on plain Parquet (module docstring)."""
        session = cls._session(con)
        writes = list(writes)
        staged: dict[int, str] = {}
        try:
            for i, w in enumerate(writes):
                parts = partition_columns(w.columns)
                if not set(w.where) <= set(parts):
                    raise ValueError(
                        f"{w.table}: can only replace by its partition columns {parts}, not {list(w.where)}"
                    )
                if isinstance(w.frame, pd.DataFrame) and w.frame.empty:
                    continue
                name = f"_replace_{uuid.uuid4().hex[:12]}"
                frame = con.to_spark(w.frame) if isinstance(w.frame, ir.Table) else _to_spark(session, w.frame)
                con.keep_frame(name, frame)
                staged[i] = name
            problems = [p for i, name in staged.items() for p in cls._spark_audit(session, writes[i], name)]
            if problems:
                raise AuditFailed("nothing published; " + "; ".join(problems))
            for i, w in enumerate(writes):
                cls._drop_slice(session, w)
                if i in staged:
                    order = session.table(w.table).columns
                    types = {c.name: spark_type(c.sql_type) for c in w.columns}
                    select = ", ".join(f"CAST({_bq(c)} AS {types[c]}) AS {_bq(c)}" for c in order)
                    session.sql(f"INSERT INTO {_bqt(w.table)} SELECT {select} FROM {_bq(staged[i])}")
        finally:
            for name in staged.values():
                con.drop_table(name)

    @staticmethod
    def _drop_slice(session, w: Replace) -> None:
        """Drop every partition matching `where` (one value per column, every combination)."""
        specs = [{}]
        for col, value in w.where.items():
            values = list(value) if isinstance(value, list | tuple) else [value]
            specs = [spec | {col: v} for spec in specs for v in values]
        for chunk in range(0, len(specs), 200):
            parts = ", ".join(
                "PARTITION (" + ", ".join(f"{_bq(k)} = {_literal(v)}" for k, v in spec.items()) + ")"
                for spec in specs[chunk : chunk + 200]
            )
            session.sql(f"ALTER TABLE {_bqt(w.table)} DROP IF EXISTS {parts}")

    @staticmethod
    def _spark_audit(session, w: Replace, staged: str) -> list[str]:
        """The DuckDB audit's rules (Warehouse._audit) in Spark SQL: rows outside the slice, and
        duplicates on where + key with nulls compared equal (GROUP BY does that)."""
        conds = []
        for col, value in w.where.items():
            values = list(value) if isinstance(value, list | tuple) else [value]
            conds.append(f"{_bq(col)} IN ({', '.join(_literal(v) for v in values)})")
        where = " AND ".join(conds) or "TRUE"
        ((outside,),) = session.sql(f"SELECT count_if(NOT coalesce({where}, false)) FROM {_bq(staged)}").collect()
        problems = [f"{w.table}: {outside} rows outside the slice {w.where}"] if outside else []
        if w.key:
            key = [*w.where, *(k for k in w.key if k not in w.where)]
            ((dupes,),) = session.sql(
                f"SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM {_bq(staged)} "
                f"GROUP BY {', '.join(_bq(k) for k in key)})"
            ).collect()
            if dupes:
                problems.append(f"{w.table}: {dupes} duplicate rows on ({', '.join(key)})")
        return problems

    @classmethod
    def table_counts(cls, con: SparkBackend, schemas: Sequence[str]) -> list[tuple[str, int]]:
        session = cls._session(con)
        out = []
        for schema in schemas:
            if not session.catalog.databaseExists(schema):
                continue
            for t in sorted(session.catalog.listTables(schema), key=lambda t: t.name):
                if t.isTemporary:
                    continue
                out.append((f"{schema}.{t.name}", session.table(f"{schema}.{t.name}").count()))
        return out


def _bq(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _bqt(table: str) -> str:
    schema, _, name = table.partition(".")
    return f"{_bq(schema)}.{_bq(name)}" if name else _bq(schema)


def _comment(text: str) -> str:
    return f" COMMENT {_literal(text)}" if text else ""


def _to_spark(session, frame: pd.DataFrame):
    """A pandas frame as a Spark DataFrame (through Arrow). pandas' string dtype becomes plain
    objects first: Arrow's large_string is not a type Spark 4.0 reads back."""
    plain = frame.copy()
    for name, dtype in plain.dtypes.items():
        if isinstance(dtype, pd.StringDtype) or str(dtype) == "str":
            plain[name] = plain[name].astype(object).where(plain[name].notna(), None)
    return session.createDataFrame(plain)


def _dates_as_dates(frame: pd.DataFrame, schema) -> pd.DataFrame:
    """Spark's DATE columns come back as datetime64; DuckDB (and the code) hand out dates."""
    for field in schema.fields:
        if field.dataType.typeName() == "date" and field.name in frame.columns:
            col = pd.to_datetime(frame[field.name])
            frame[field.name] = [None if pd.isna(v) else v.date() for v in col]
    return frame

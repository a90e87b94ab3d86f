"""The warehouse: the only module that knows which engine stores the tables.

Everything else talks to an Ibis backend (mart logic) or to the few operations below
(transactional partition replace, table DDL with comments, small SQL look-ups), through
the module functions at the end (`exists`, `ensure_table`, `replace_rows`, `sql_df`,
`table_counts`, `open_warehouse`), which dispatch on the connection: `Warehouse` here
for DuckDB, `SparkWarehouse` (pipelines/spark_warehouse.py) for Spark. SQL passed to
`sql_df` must read the same on both (no QUALIFY, STRING not VARCHAR). Keep engine
calls out of assets/ and analytics/.

DuckDB facts this module encodes (see shared/docs/DESIGN.md):
- one writer process per file; every writing asset is in the `warehouse` pool;
- a connection is always closed in `finally` (a leaked one keeps the file lock);
- no extension auto-install or auto-load: the machine has no network;
- partition replace is write, audit, publish: the new rows are computed into
  temporary tables, audited (inside the slice being replaced; key unique), and only
  then `BEGIN; DELETE …; INSERT … BY NAME; COMMIT`, so readers see the
  old rows until commit, a failed audit or a killed process leaves them in place, and a
  rerun leaves identical rows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis
import pandas as pd

from analytics.schema import Col

_log = logging.getLogger(__name__)

#: How long opening the warehouse waits for another process's lock before failing.
LOCK_TIMEOUT_S = 60.0


def is_lock_error(exc: BaseException) -> bool:
    """DuckDB's "Could not set lock on file" (another process has the file open)."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


_DUCKDB_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}


class _DuckDB2Compat:
    """Ibis 12 calls result methods that DuckDB 2.0 renamed (`fetch_arrow_table`,
    `fetch_record_batch`); without this, `con.sql`, `list_tables` and batch reads
    fail and leave the connection with an unfinished result. Remove once Ibis
    supports DuckDB 2.0 natively."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def execute(self, *args, **kwargs):
        self._con.execute(*args, **kwargs)
        return self

    def cursor(self):
        return _DuckDB2Compat(self._con.cursor())

    def fetch_arrow_table(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return self._con.to_arrow_table()

    def fetch_record_batch(self, rows_per_batch: int = 1_000_000):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return self._con.to_arrow_reader(rows_per_batch)


def _needs_compat() -> bool:
    return int(duckdb.__version__.split(".")[0]) >= 2


#: A column of a table this module creates (name, storage type, comment).
ColumnDef = Col


@dataclass(frozen=True)
class Replace:
    """Replace the rows of `table` matching `where` (column = value, or column IN
    list) with `frame`."""

    table: str
    columns: Sequence[ColumnDef]
    frame: pd.DataFrame | ibis.Table  # an Ibis expression is inserted without leaving the engine
    where: dict[str, object]
    #: columns that identify a row (with the `where` columns): audited unique.
    key: tuple[str, ...] = ()


#: Which write last replaced each mart snapshot (table, as_of_date): replace_rows records it in
#: the same transaction, so pipelines/exports.py can republish bi.duckdb from the snapshots
#: written since its last build instead of copying the whole history every night.
WRITES_TABLE = "meta.snapshot_writes"
WRITES_COLUMNS = (
    ColumnDef("table_name", "VARCHAR", "Mart table (schema.table)."),
    ColumnDef("as_of_date", "DATE", "Snapshot date."),
    ColumnDef("write_id", "VARCHAR", "Random id of the replace_rows call that last wrote the snapshot."),
)


def _logged_days(w: Replace) -> list[object]:
    """The snapshot dates a write replaces, when it replaces mart snapshots (else [])."""
    if not w.table.startswith("marts.") or set(w.where) != {"as_of_date"}:
        return []
    value = w.where["as_of_date"]
    return list(value) if isinstance(value, (list, tuple)) else [value]


class AuditFailed(RuntimeError):
    """New rows failed their audit; nothing was published and the old rows stand."""


def _q(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def qualified(table: str) -> str:
    """'schema.table' -> quoted identifier."""
    schema, _, name = table.partition(".")
    return f"{_q(schema)}.{_q(name)}" if name else _q(schema)


class Warehouse:
    """A DuckDB file opened through Ibis. Use `with wh.connect() as con:`."""

    def __init__(
        self, path: str | os.PathLike[str], lock_timeout_s: float = LOCK_TIMEOUT_S, memory_limit: str = ""
    ) -> None:
        self.path = Path(path)
        self.lock_timeout_s = lock_timeout_s
        self.memory_limit = memory_limit

    @contextlib.contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[ibis.BaseBackend]:
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = self._open(read_only)
        try:
            # Timestamps are stored as UTC instants; date arithmetic on them must not
            # depend on the machine's zone (business dates are computed explicitly).
            raw.execute("SET TimeZone = 'UTC'")
            yield ibis.duckdb.from_connection(_DuckDB2Compat(raw) if _needs_compat() else raw)
        finally:
            raw.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting (exponential backoff up to lock_timeout_s) while another
        process holds its lock: DuckDB allows one writer process, and a second one fails at
        once. A short overlap (a reader finishing, the previous run closing) is transient;
        anything else, and a lock held beyond the timeout, raises."""
        waited, delay = 0.0, 0.25
        while True:
            try:
                config = dict(_DUCKDB_CONFIG)
                if self.memory_limit:
                    config["memory_limit"] = self.memory_limit
                return duckdb.connect(str(self.path), read_only=read_only, config=config)
            except duckdb.IOException as exc:
                if not is_lock_error(exc) or waited >= self.lock_timeout_s:
                    raise
                step = min(delay, self.lock_timeout_s - waited)
                _log.warning("warehouse %s is locked by another process; retrying in %.1fs", self.path, step)
                time.sleep(step)
                waited, delay = waited + step, min(delay * 2, 8.0)

    # --- small SQL helpers (engine-specific by nature) --------------------------------

    @staticmethod
    def _raw(con: ibis.BaseBackend) -> duckdb.DuckDBPyConnection:
        raw = con.con
        return raw._con if isinstance(raw, _DuckDB2Compat) else raw

    @classmethod
    def sql_df(
        cls, con: ibis.BaseBackend, sql: str, params: Sequence[object] = (), **frames: pd.DataFrame
    ) -> pd.DataFrame:
        """Run SQL with pandas frames visible under the given names; return pandas."""
        raw = cls._raw(con)
        for name, frame in frames.items():
            raw.register(name, frame)
        try:
            return raw.execute(sql, list(params)).df()
        finally:
            for name in frames:
                raw.unregister(name)

    @staticmethod
    def quote(identifier: str) -> str:
        """A column name quoted for this engine's SQL."""
        return _q(identifier)

    @classmethod
    def exists(cls, con: ibis.BaseBackend, table: str) -> bool:
        schema, _, name = table.partition(".")
        # fetchall, not fetchone: DuckDB 2.0 refuses further work on a connection whose
        # last result was not read to the end.
        rows = (
            cls._raw(con)
            .execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                [schema, name],
            )
            .fetchall()
        )
        return bool(rows and rows[0][0])

    @classmethod
    def ensure_table(cls, con: ibis.BaseBackend, table: str, columns: Sequence[ColumnDef], comment: str = "") -> None:
        """Create the table if missing (with comments); fail clearly if it drifted."""
        raw = cls._raw(con)
        schema, _, _ = table.partition(".")
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(schema)}")
        if cls.exists(con, table):
            have = [r[0] for r in raw.execute(f"DESCRIBE {qualified(table)}").fetchall()]
            want = [c.name for c in columns]
            if have != want:
                raise RuntimeError(
                    f"{table} exists with columns {have}, but this version writes {want}. "
                    f"Drop the table (or the warehouse file) and rerun the affected partitions."
                )
            return
        cols = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in columns)
        raw.execute("BEGIN")
        try:
            raw.execute(f"CREATE TABLE {qualified(table)} ({cols})")
            if comment:
                raw.execute(f"COMMENT ON TABLE {qualified(table)} IS {_lit(comment)}")
            for c in columns:
                if c.comment:
                    raw.execute(f"COMMENT ON COLUMN {qualified(table)}.{_q(c.name)} IS {_lit(c.comment)}")
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise

    @classmethod
    def replace_rows(cls, con: ibis.BaseBackend, writes: Iterable[Replace]) -> None:
        """Atomically replace slices of several tables (one transaction), after an audit.

        Write: every `Replace`'s new rows go into a temporary table. Audit: they must lie in
        the slice being replaced (its `where`: a row outside it would survive the DELETE
        beside an older copy) and, with `key`, be unique on where + key;
        a failure raises AuditFailed naming every problem, before anything is published.
        Publish: one transaction deletes the rows matching each `where` and inserts the new
        ones, so a reader, a crash or a killed process sees all the old slices or all the
        new ones. Columns are inserted by name and cast to the declared types.
        """
        raw = cls._raw(con)
        writes = list(writes)
        staged: dict[int, str] = {}
        try:
            for i, w in enumerate(writes):
                if isinstance(w.frame, pd.DataFrame) and w.frame.empty:
                    continue  # nothing to write or audit: the slice is only deleted
                staged[i] = f"_replace_{uuid.uuid4().hex[:12]}"
                if isinstance(w.frame, ibis.Table):
                    con.create_table(staged[i], w.frame, temp=True)
                else:
                    raw.register(f"{staged[i]}_frame", w.frame)
                    try:
                        raw.execute(f"CREATE TEMP TABLE {_q(staged[i])} AS SELECT * FROM {_q(staged[i] + '_frame')}")
                    finally:
                        raw.unregister(f"{staged[i]}_frame")
            problems = [p for i, name in staged.items() for p in cls._audit(raw, writes[i], name)]
            if problems:
                raise AuditFailed("nothing published; " + "; ".join(problems))
            logged = [(w.table, days) for w in writes if (days := _logged_days(w))]
            if logged:
                cls.ensure_table(con, WRITES_TABLE, WRITES_COLUMNS, "Which write last replaced each mart snapshot.")
            write_id = uuid.uuid4().hex
            raw.execute("BEGIN")
            try:
                for i, w in enumerate(writes):
                    where, params = cls._where(w)
                    raw.execute(f"DELETE FROM {qualified(w.table)} WHERE {where}", params)
                    if i in staged:
                        select = ", ".join(f"CAST({_q(c.name)} AS {c.sql_type}) AS {_q(c.name)}" for c in w.columns)
                        raw.execute(f"INSERT INTO {qualified(w.table)} BY NAME SELECT {select} FROM {_q(staged[i])}")
                for table, days in logged:
                    marks = ", ".join("?" for _ in days)
                    raw.execute(
                        f"DELETE FROM {qualified(WRITES_TABLE)} WHERE table_name = ? AND as_of_date IN ({marks})",
                        [table, *days],
                    )
                    rows = ", ".join("(?, CAST(? AS DATE), ?)" for _ in days)
                    raw.execute(
                        f"INSERT INTO {qualified(WRITES_TABLE)} VALUES {rows}",
                        [v for d in days for v in (table, d, write_id)],
                    )
                raw.execute("COMMIT")
            except BaseException:
                raw.execute("ROLLBACK")
                raise
        finally:
            for name in staged.values():
                raw.execute(f"DROP TABLE IF EXISTS {_q(name)}")

    @staticmethod
    def _where(w: Replace) -> tuple[str, list]:
        conds, params = [], []
        for col, value in w.where.items():
            values = list(value) if isinstance(value, (list, tuple)) else [value]
            conds.append(f"{_q(col)} IN ({', '.join('?' for _ in values)})")
            params += values
        return " AND ".join(conds) or "TRUE", params

    @classmethod
    def _audit(cls, raw, w: Replace, staged: str) -> list[str]:
        """What is wrong with the staged rows of one write (empty: publishable). Key columns
        may be null by design (a per-block measure has no target), so uniqueness compares
        nulls as equal and only the slice columns must be set."""
        where, params = cls._where(w)
        checks = [f"count(*) FILTER (WHERE NOT coalesce({where}, false))"]
        key = [*w.where, *(k for k in w.key if k not in w.where)]
        if w.key:
            checks.append(f"count(*) - count(DISTINCT ({', '.join(_q(k) for k in key)}))")
        outside, *duplicates = raw.execute(f"SELECT {', '.join(checks)} FROM {_q(staged)}", params).fetchone()
        problems = [f"{w.table}: {outside} rows outside the slice {w.where}"] if outside else []
        if duplicates and duplicates[0]:
            problems.append(f"{w.table}: {duplicates[0]} duplicate rows on ({', '.join(key)})")
        return problems

    @classmethod
    def table_counts(cls, con: ibis.BaseBackend, schemas: Sequence[str]) -> list[tuple[str, int]]:
        raw = cls._raw(con)
        rows = raw.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema IN ({', '.join('?' for _ in schemas)}) ORDER BY 1, 2",
            list(schemas),
        ).fetchall()
        out = []
        for schema, name in rows:
            ((n,),) = raw.execute(f"SELECT count(*) FROM {qualified(schema + '.' + name)}").fetchall()
            out.append((f"{schema}.{name}", int(n)))
        return out


class Spool:
    """Rows handed over in pieces for one `Replace`, when the whole is more than memory should
    hold: each piece goes into a temporary DuckDB table (typed as declared; DuckDB spills it to
    disk past its memory limit), and `rows()` is the whole, ordered by `order_by`, as an Ibis
    table for `Replace.frame`. DuckDB only (`can_spool`). Use as a context manager."""

    def __init__(self, con: ibis.BaseBackend, columns: Sequence[ColumnDef], order_by: Sequence[str]) -> None:
        self.con, self.columns, self.order_by = con, list(columns), list(order_by)
        self.name = f"_spool_{uuid.uuid4().hex[:12]}"
        self.rows_held = 0

    def append(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        raw = Warehouse._raw(self.con)
        select = ", ".join(f"CAST({_q(c.name)} AS {c.sql_type}) AS {_q(c.name)}" for c in self.columns)
        view = self.name + "_piece"
        raw.register(view, frame)
        try:
            if self.rows_held:
                raw.execute(f"INSERT INTO {_q(self.name)} SELECT {select} FROM {_q(view)}")
            else:
                raw.execute(f"CREATE TEMP TABLE {_q(self.name)} AS SELECT {select} FROM {_q(view)}")
        finally:
            raw.unregister(view)
        self.rows_held += len(frame)

    def rows(self) -> pd.DataFrame | ibis.Table:
        if not self.rows_held:
            return pd.DataFrame(columns=[c.name for c in self.columns])
        order = ", ".join(_q(c) for c in self.order_by)
        return self.con.sql(f"SELECT * FROM {_q(self.name)} ORDER BY {order}")

    def __enter__(self) -> Spool:
        return self

    def close(self) -> None:
        """Drop the temporary table."""
        Warehouse._raw(self.con).execute(f"DROP TABLE IF EXISTS {_q(self.name)}")

    def __exit__(self, *exc) -> None:
        self.close()


def can_spool(con: ibis.BaseBackend) -> bool:
    """Whether `Spool` works on this connection (DuckDB; on Spark the driver holds the rows)."""
    return engine(con) is Warehouse


# --- the engine of a connection -----------------------------------------------------------
# Callers that may run on either engine use these functions; each dispatches to the DuckDB
# operations above or to Spark's (pipelines/spark_warehouse.py), by the connection's backend.


def engine(con: ibis.BaseBackend) -> type[Warehouse]:
    """The operations class for a connection: `Warehouse` (DuckDB) or `SparkWarehouse`."""
    if getattr(con, "name", "") == "pyspark":
        from pipelines.spark_warehouse import SparkWarehouse

        return SparkWarehouse
    return Warehouse


#: DuckDB's budget while a step works in pandas (`memory_lent`).
LENT_MEMORY_LIMIT = "512MB"


@contextlib.contextmanager
def memory_lent(con: ibis.BaseBackend, restore: str = "") -> Iterator[None]:
    """Shrink DuckDB's memory budget while the caller works in pandas, then set it back to
    `restore` (the configured `duckdb_memory_limit`; empty: DuckDB's default). DuckDB keeps
    its buffer pool full up to the budget; a lower limit evicts cached pages (temporary tables
    spill) and hands the memory back: at 100M order lines the satisfaction step's PLS fits
    peaked at 8.7 GB under a 4 GB budget, 7.1 GB with it lent. A no-op on Spark."""
    if engine(con) is not Warehouse:
        yield
        return
    con.raw_sql(f"SET memory_limit = '{LENT_MEMORY_LIMIT}'")
    try:
        yield
    finally:
        con.raw_sql(f"SET memory_limit = '{restore}'" if restore else "RESET memory_limit")


def snapshot_df(con: ibis.BaseBackend, table: str, day: dt.date, columns: Sequence[str] = ()) -> pd.DataFrame:
    """One as-of date of a mart, only `columns` when given (all when empty): a snapshot per
    customer has millions of rows at scale, and every column of it costs gigabytes."""
    cols = ", ".join(quote(con, c) for c in columns) or "*"
    return sql_df(con, f"SELECT {cols} FROM {table} WHERE as_of_date = ?", [day])


def quote(con: ibis.BaseBackend, identifier: str) -> str:
    return engine(con).quote(identifier)


def exists(con: ibis.BaseBackend, table: str) -> bool:
    return engine(con).exists(con, table)


def ensure_table(con: ibis.BaseBackend, table: str, columns: Sequence[ColumnDef], comment: str = "") -> None:
    engine(con).ensure_table(con, table, columns, comment)


def replace_rows(con: ibis.BaseBackend, writes: Iterable[Replace]) -> None:
    engine(con).replace_rows(con, writes)


def sql_df(con: ibis.BaseBackend, sql: str, params: Sequence[object] = (), **frames: pd.DataFrame) -> pd.DataFrame:
    """SQL (`?` markers) that both engines read the same way; pandas frames visible by name."""
    return engine(con).sql_df(con, sql, params, **frames)


def table_counts(con: ibis.BaseBackend, schemas: Sequence[str]) -> list[tuple[str, int]]:
    return engine(con).table_counts(con, schemas)


def open_warehouse(settings) -> Warehouse:
    """The warehouse the settings name (`engine`): the DuckDB file, or Spark's table store."""
    if settings.engine == "spark":
        from pipelines.spark_warehouse import SparkWarehouse

        return SparkWarehouse(settings.spark_location, settings.spark_master, settings.spark_conf)
    return Warehouse(settings.warehouse_path, memory_limit=settings.duckdb_memory_limit)

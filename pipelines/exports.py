"""Exports: the marts as Parquet files per table and as-of date, and `bi.duckdb`, the one
database file BI tools open. Dagster-free (assets/exports.py is the thin asset around it).

What leaves the warehouse, and why:
- Only pseudonymised marts. Every mart is listed once, in `pipelines.docs.SECTIONS` (the
  generated reference and its test keep that list complete); the exported marts are that
  list minus `INTERNAL_MARTS`. `marts.customer_identity` is internal: it is the crosswalk
  from source record ids (`customer_ref`) to customer keys, the one table that undoes the
  pseudonymisation. As a second guard, a mart with a source-id column (`customer_ref`, or
  any `*_ref`) is refused even when passed explicitly, so a future mart that carries one
  fails loudly instead of leaking.

Parquet, `<root>/<table>/as_of_date=<YYYY-MM-DD>/data.parquet`:
- Hive layout: DuckDB, Spark and pyarrow read the date from the folder name, so the file
  does not repeat the column (as their own partitioned writers do).
- One file per table and date, written under a temporary name in its folder and renamed
  over `data.parquet`: a reader sees the old file or the new one, never half of one.
  `COPY ... PARTITION_BY` is not used: OVERWRITE_OR_IGNORE leaves stale files and
  OVERWRITE wipes the sibling dates (DESIGN.md). The temporary name is `.tmp-<uuid>.part`,
  not `*.parquet`: DuckDB's `*.parquet` glob matches dot-files, and would read (and fail
  on) a file being written.
- After the rename, everything else in that date's folder is removed (part-files of an
  older writer, temp files of a crashed run), so a rerun leaves exactly one file per date
  whatever ran before. Dates not being exported are never touched.
- A date with no rows gets an empty file that still carries the schema, not a missing
  folder: "exported, and empty" stays distinguishable from "never exported", and the
  Dagster asset does not report a skipped partition as failed (DESIGN.md).
- Rows are sorted by the mart's key, so rerunning a date on unchanged rows gives the same
  rows in the same order.

bi.duckdb:
- BI must never open the warehouse: DuckDB allows one writer process and even a
  read-only reader holds a lock that makes the pipeline fail. So the pipeline copies the
  exported marts, through its own writer connection (ATTACH), into a new file beside the
  target (`<name>.tmp-<pid>-<hex>`), adds the comments of the contracts and a
  `<table>_latest` view per mart, syncs it to disk and swaps it in with `os.replace`.
  Readers that have the old file open keep reading it (its inode lives until they close);
  the next reader opens the new one; nobody waits for anybody.
- Views and comments are added through a connection to the new file itself, so the
  views' SQL names only that file's tables (`marts.x`), whatever a reader attaches it as.
- Nightly cost: every mart write records its snapshots in meta.snapshot_writes (one id per
  write, warehouse.replace_rows), and bi.duckdb keeps the ids it copied
  (`pipeline.snapshot_writes`). A publication copies the previous file and replaces only
  the snapshots whose id differs (and removes those the warehouse dropped), so a nightly run
  copies one day, not the whole history; a file of another layout is rebuilt in full.
- `<table>_latest` holds the rows of the newest as_of_date *of that table*; a mart whose
  newest snapshot is empty (no survey wave yet) shows its last non-empty one, with its
  as_of_date.

Permissions: files 0640 and the folders this module creates 0750 (owner writes, the
BI group reads, nobody else), set explicitly because the process umask decides otherwise.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import duckdb
import ibis

from analytics.schema import MartSchema
from pipelines import warehouse as wh
from pipelines.warehouse import Warehouse, qualified

#: Marts that never leave the warehouse (they hold source identifiers).
INTERNAL_MARTS: frozenset[str] = frozenset({"marts.customer_identity"})
#: In bi.duckdb: the warehouse write (meta.snapshot_writes) each snapshot was copied from.
BI_WRITES = "pipeline.snapshot_writes"
BI_WRITES_COMMENT = (
    "Bookkeeping of the pipeline: which warehouse write each snapshot of the marts was copied from "
    "(a publication copies only the snapshots written since). Not for analysis."
)
#: Name of the Parquet file of one table and date.
PARQUET_NAME = "data.parquet"
FILE_MODE = 0o640
DIR_MODE = 0o750


def all_marts() -> tuple[MartSchema, ...]:
    """Every mart schema, from the one list of them (pipelines.docs.SECTIONS)."""
    from pipelines.docs import SECTIONS

    return tuple(getattr(importlib.import_module(module), name) for module, _, names in SECTIONS for name in names)


@cache
def exported_marts() -> tuple[MartSchema, ...]:
    """The marts that may leave the warehouse: all of them except INTERNAL_MARTS."""
    marts = tuple(s for s in all_marts() if s.table not in INTERNAL_MARTS)
    check_exportable(marts)
    return marts


def _source_id_columns(schema: MartSchema) -> list[str]:
    return [c.name for c in schema.columns if c.name == "customer_ref" or c.name.endswith("_ref")]


def check_exportable(schemas: Iterable[MartSchema]) -> None:
    """Refuse internal marts and marts with source-id columns (ValueError)."""
    for schema in schemas:
        if schema.table in INTERNAL_MARTS:
            raise ValueError(f"{schema.table} is internal (it maps source record ids to keys): never exported")
        refs = _source_id_columns(schema)
        if refs:
            raise ValueError(f"{schema.table} holds source identifiers {refs}: only pseudonymised marts are exported")


# --- small file-system helpers -------------------------------------------------------


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: the directory entry is data of the directory."""
    _fsync_file(path)


def _make_dirs(path: Path) -> None:
    """mkdir -p with DIR_MODE on each folder created (not on folders that existed)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        os.chmod(d, DIR_MODE)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.iterdir():
            _remove(child)
        path.rmdir()
    else:
        path.unlink(missing_ok=True)


def _raw(con: ibis.BaseBackend) -> duckdb.DuckDBPyConnection:
    # COPY and ATTACH are DuckDB statements with no Ibis equivalent; the warehouse module
    # is the one that knows how to reach the DuckDB connection behind Ibis.
    return Warehouse._raw(con)


def _require_tables(con: ibis.BaseBackend, schemas: Sequence[MartSchema]) -> None:
    missing = [s.table for s in schemas if not wh.exists(con, s.table)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} do(es) not exist yet: materialize the marts before exporting them")


# --- Parquet -------------------------------------------------------------------------


@dataclass(frozen=True)
class ParquetFile:
    """One file written: which table and date, where, how many rows and bytes."""

    table: str
    as_of_date: dt.date
    path: Path
    rows: int
    bytes: int


def _check_days(days: Iterable[object]) -> list[dt.date]:
    days = list(days)
    bad = [d for d in days if not isinstance(d, dt.date) or isinstance(d, dt.datetime)]
    if bad:
        raise ValueError(f"days must be datetime.date values, got {bad[:3]!r}")
    return sorted(set(days))


def parquet_path(root: str | os.PathLike[str], table: str, day: dt.date) -> Path:
    """Where the file of `table` (e.g. marts.rfm_segments) and `day` goes."""
    name = table.partition(".")[2] or table
    return Path(root) / name / f"as_of_date={day.isoformat()}" / PARQUET_NAME


def export_parquet(
    con: ibis.BaseBackend, schemas: Sequence[MartSchema], days: Iterable[dt.date], root: str | os.PathLike[str]
) -> list[ParquetFile]:
    """Write one Parquet file per table in `schemas` and date in `days` under `root`
    (see the module docstring for the layout and the rules); return what was written."""
    check_exportable(schemas)
    days = _check_days(days)
    _require_tables(con, schemas)
    raw = _raw(con)
    written = []
    for schema in schemas:
        columns = [c.name for c in schema.columns if c.name != "as_of_date"]
        select = ", ".join(f'"{c}"' for c in columns)
        order = ", ".join(f'"{c}"' for c in schema.key) or "ALL"
        sql = f"SELECT {select} FROM {qualified(schema.table)} WHERE as_of_date = ? ORDER BY {order}"
        for day in days:
            written.append(_write_parquet(raw, schema.table, sql, day, parquet_path(root, schema.table, day)))
    return written


def _write_parquet(raw: duckdb.DuckDBPyConnection, table: str, sql: str, day: dt.date, final: Path) -> ParquetFile:
    folder = final.parent
    _make_dirs(folder)
    tmp = folder / f".tmp-{uuid.uuid4().hex}.part"
    try:
        ((rows,),) = raw.execute(
            f"COPY ({sql}) TO {_sql_text(str(tmp))} (FORMAT parquet, COMPRESSION zstd)", [day]
        ).fetchall()
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    for entry in folder.iterdir():
        if entry.name != final.name:
            _remove(entry)
    _fsync_dir(folder)
    return ParquetFile(table, day, final, int(rows), final.stat().st_size)


# --- bi.duckdb -----------------------------------------------------------------------


@dataclass(frozen=True)
class BiFile:
    """The published BI database: where, its size, and each table's latest as_of_date."""

    path: Path
    bytes: int
    latest: dict[str, dt.date | None]
    #: "full" (every snapshot copied) or "incremental" (the previous file, updated).
    mode: str = "full"
    #: Snapshots (table, date) copied or removed by this publication.
    snapshots_changed: int = 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_dead_builds(target: Path) -> None:
    """Temp files of publishers that died (`<name>.tmp-<pid>-<hex>`, and their WAL). A live
    publisher is left alone, though the warehouse pool means there is only ever one."""
    for path in target.parent.glob(f"{target.name}.tmp-*"):
        pid = path.name[len(target.name) + len(".tmp-") :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            path.unlink(missing_ok=True)


def publish_bi(con: ibis.BaseBackend, schemas: Sequence[MartSchema], bi_path: str | os.PathLike[str]) -> BiFile:
    """Build the BI database from the warehouse connection `con` beside `bi_path` and swap
    it in atomically (see the module docstring); return what was published."""
    check_exportable(schemas)
    if not schemas:
        raise ValueError("publish_bi needs at least one mart schema")
    _require_tables(con, schemas)
    target = Path(bi_path)
    _make_dirs(target.parent)
    _remove_dead_builds(target)
    tmp = target.parent / f"{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    raw = _raw(con)
    try:
        changed = None
        with_log = wh.exists(con, wh.WRITES_TABLE)
        if target.exists() and with_log:
            shutil.copyfile(target, tmp)
            changed = _update_tables(raw, schemas, tmp)
            if changed is None:
                tmp.unlink()
        if changed is None:
            _copy_tables(raw, schemas, tmp, with_log)
        latest = _describe(schemas, tmp)
        _fsync_file(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
    except BaseException:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    mode = "full" if changed is None else "incremental"
    return BiFile(target, target.stat().st_size, latest, mode, changed or 0)


def _columns(raw: duckdb.DuckDBPyConnection, catalog: str, table: str) -> list[tuple[str, str]]:
    schema_name, name = table.split(".")
    return raw.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [catalog, schema_name, name],
    ).fetchall()


def _update_tables(raw: duckdb.DuckDBPyConnection, schemas: Sequence[MartSchema], tmp: Path) -> int | None:
    """Bring a copy of the last bi.duckdb (`tmp`) up to date: the snapshots whose write
    (meta.snapshot_writes) differs from the one the copy holds are replaced, the snapshots the
    warehouse no longer has are removed. Returns how many snapshots changed, or None when the
    copy cannot be updated (built by an older version, or a table's columns changed): then it
    is rebuilt in full."""
    alias = f"bi_update_{uuid.uuid4().hex[:12]}"
    ((here,),) = raw.execute("SELECT current_database()").fetchall()
    raw.execute(f"ATTACH {_sql_text(str(tmp))} AS {alias}")
    try:
        if not _columns(raw, alias, BI_WRITES):
            return None
        for s in schemas:
            if _columns(raw, alias, s.table) != _columns(raw, here, s.table):
                return None
        names = [s.table for s in schemas]
        marks = ", ".join("?" for _ in names)
        changed = 0
        raw.execute("BEGIN")
        try:
            for s in schemas:
                table, copy = qualified(s.table), f"{alias}.{qualified(s.table)}"
                stale = [
                    d
                    for (d,) in raw.execute(
                        f"SELECT w.as_of_date FROM {qualified(wh.WRITES_TABLE)} AS w "
                        f"LEFT JOIN {alias}.{BI_WRITES} AS b ON b.table_name = w.table_name "
                        "AND b.as_of_date = w.as_of_date AND b.write_id = w.write_id "
                        "WHERE w.table_name = ? AND b.write_id IS NULL",
                        [s.table],
                    ).fetchall()
                ]
                gone = [
                    d
                    for (d,) in raw.execute(
                        f"SELECT DISTINCT as_of_date FROM {copy} EXCEPT SELECT DISTINCT as_of_date FROM {table}"
                    ).fetchall()
                ]
                days = sorted(set(stale) | set(gone))
                if not days:
                    continue
                changed += len(days)
                day_marks = ", ".join("?" for _ in days)
                raw.execute(f"DELETE FROM {copy} WHERE as_of_date IN ({day_marks})", days)
                if stale:
                    cols = ", ".join(f'"{c}"' for c in s.names)
                    raw.execute(
                        f"INSERT INTO {copy} SELECT {cols} FROM {table} "
                        f"WHERE as_of_date IN ({', '.join('?' for _ in stale)}) ORDER BY as_of_date",
                        stale,
                    )
            raw.execute(f"DELETE FROM {alias}.{BI_WRITES}")
            raw.execute(
                f"INSERT INTO {alias}.{BI_WRITES} SELECT table_name, as_of_date, write_id "
                f"FROM {qualified(wh.WRITES_TABLE)} WHERE table_name IN ({marks})",
                names,
            )
            raw.execute("COMMIT")
        except BaseException:
            raw.execute("ROLLBACK")
            raise
        return changed
    finally:
        raw.execute(f"DETACH {alias}")


def _copy_tables(raw: duckdb.DuckDBPyConnection, schemas: Sequence[MartSchema], tmp: Path, with_log: bool) -> None:
    """Copy the marts into `tmp` through the writer's connection (no second process ever
    opens the warehouse), with the write log of their snapshots (`with_log`: the warehouse
    has one). DETACH checkpoints: the file is complete, without a WAL."""
    alias = f"bi_build_{uuid.uuid4().hex[:12]}"
    raw.execute(f"ATTACH {_sql_text(str(tmp))} AS {alias}")
    try:
        for schema_name in sorted({s.table.partition(".")[0] for s in schemas}):
            raw.execute(f'CREATE SCHEMA IF NOT EXISTS {alias}."{schema_name}"')
        for s in schemas:
            cols = ", ".join(f'"{c}"' for c in s.names)
            raw.execute(
                f"CREATE TABLE {alias}.{qualified(s.table)} AS "
                f"SELECT {cols} FROM {qualified(s.table)} ORDER BY as_of_date"
            ).fetchall()
        raw.execute(f"CREATE SCHEMA IF NOT EXISTS {alias}.{BI_WRITES.split('.')[0]}")
        raw.execute(f"CREATE TABLE {alias}.{BI_WRITES} (table_name VARCHAR, as_of_date DATE, write_id VARCHAR)")
        raw.execute(f"COMMENT ON TABLE {alias}.{BI_WRITES} IS {_sql_text(BI_WRITES_COMMENT)}")
        if with_log:
            marks = ", ".join("?" for _ in schemas)
            raw.execute(
                f"INSERT INTO {alias}.{BI_WRITES} SELECT table_name, as_of_date, write_id "
                f"FROM {qualified(wh.WRITES_TABLE)} WHERE table_name IN ({marks})",
                [s.table for s in schemas],
            )
    finally:
        raw.execute(f"DETACH {alias}")


def _describe(schemas: Sequence[MartSchema], tmp: Path) -> dict[str, dt.date | None]:
    """Comments from the contracts and the `_latest` views, written by a connection to
    the new file itself; returns each table's newest as_of_date."""
    latest: dict[str, dt.date | None] = {}
    bi = duckdb.connect(str(tmp), config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:
        for s in schemas:
            table = qualified(s.table)
            view = qualified(s.table + "_latest")
            bi.execute(
                f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {table} "
                f"WHERE as_of_date = (SELECT max(as_of_date) FROM {table})"
            )
            bi.execute(f"COMMENT ON TABLE {table} IS {_sql_text(s.description)}")
            bi.execute(
                f"COMMENT ON VIEW {view} IS "
                f"{_sql_text(f'Newest snapshot of {s.table} (its latest as_of_date). {s.description}')}"
            )
            for c in s.columns:
                if c.comment:
                    for relation in (table, view):
                        bi.execute(f'COMMENT ON COLUMN {relation}."{c.name}" IS {_sql_text(c.comment)}')
            ((day,),) = bi.execute(f"SELECT max(as_of_date) FROM {table}").fetchall()
            latest[s.table] = day
        bi.execute("CHECKPOINT")
    finally:
        bi.close()
    return latest

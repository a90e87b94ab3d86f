"""Exports: Parquet per table and as-of date (temp name then rename, one file per date,
reruns leave nothing stale, other dates untouched, 0640/0750), and bi.duckdb (only the
pseudonymised marts, `_latest` views, the contracts' comments, swapped in so that a BI
reader holding the old file never blocks the pipeline and keeps its snapshot).

The fixture warehouse, by hand:

marts.x_customers (key customer_key)
    2025-03-01: k1 spend 10.50 'gold'/'金牌', k2 spend 3.00 'lead'/'铅牌'
    2025-03-02: k1 spend 12.00 'gold'/'金牌'
marts.x_groups (key value_group)
    2025-03-01: 'top' 2 customers
    (no rows on 2025-03-02: its newest snapshot is 2025-03-01)
marts.customer_identity (the real schema): one record, WEB-1 -> k1, on 2025-03-01
"""

import datetime as dt
import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import dagster as dg
import duckdb
import pandas as pd
import pytest

from analytics.identity import CUSTOMER_IDENTITY
from analytics.schema import Col, MartSchema, as_of_col, version_col
from pipelines.exports import (
    BI_WRITES_COMMENT,
    INTERNAL_MARTS,
    all_marts,
    check_exportable,
    export_parquet,
    exported_marts,
    parquet_path,
    publish_bi,
)
from pipelines.warehouse import Replace, Warehouse

D1, D2, D3 = dt.date(2025, 3, 1), dt.date(2025, 3, 2), dt.date(2025, 3, 3)

CUSTOMERS = MartSchema(
    table="marts.x_customers",
    description="Test mart: spend per customer.",
    key=("customer_key",),
    columns=(
        as_of_col(),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key."),
        Col("spend", "DECIMAL(18,2)", "Net spend, CNY."),
        Col("tier", "VARCHAR", "Value tier."),
        Col("tier_zh", "VARCHAR", "价值层级."),
        version_col(),
    ),
)
GROUPS = MartSchema(
    table="marts.x_groups",
    description="Test mart: customers per value group.",
    key=("value_group",),
    columns=(as_of_col(), Col("value_group", "VARCHAR", "Value group."), Col("customers", "BIGINT", "")),
)
SCHEMAS = (CUSTOMERS, GROUPS)


def _customers(*rows):
    return pd.DataFrame(rows, columns=["as_of_date", "customer_key", "spend", "tier", "tier_zh", "settings_version"])


CUSTOMER_ROWS = _customers(
    (D1, "k1", Decimal("10.50"), "gold", "金牌", "v1"),
    (D1, "k2", Decimal("3.00"), "lead", "铅牌", "v1"),
    (D2, "k1", Decimal("12.00"), "gold", "金牌", "v1"),
)
GROUP_ROWS = pd.DataFrame({"as_of_date": [D1], "value_group": ["top"], "customers": [2]})


def _fill(con):
    for s in (*SCHEMAS, CUSTOMER_IDENTITY):
        Warehouse.ensure_table(con, s.table, s.columns, s.description)
    identity = pd.DataFrame([{c: None for c in CUSTOMER_IDENTITY.names}])
    identity = identity.assign(as_of_date=D1, customer_ref="WEB-1", customer_key="k1", records_in_customer=1)
    Warehouse.replace_rows(
        con,
        [
            Replace(CUSTOMERS.table, CUSTOMERS.columns, CUSTOMER_ROWS, {"as_of_date": [D1, D2]}),
            Replace(GROUPS.table, GROUPS.columns, GROUP_ROWS, {"as_of_date": [D1, D2]}),
            Replace(CUSTOMER_IDENTITY.table, CUSTOMER_IDENTITY.columns, identity, {"as_of_date": [D1]}),
        ],
    )


@pytest.fixture
def wh(tmp_path):
    warehouse = Warehouse(tmp_path / "wh" / "crm.duckdb")
    with warehouse.connect() as con:
        _fill(con)
    return warehouse


@pytest.fixture
def umask_zero():
    """Without the explicit chmod, files would come out 0644 and folders 0755 under umask 0."""
    old = os.umask(0)
    yield
    os.umask(old)


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _read(path):
    """The file itself (DuckDB would otherwise add as_of_date from the folder name)."""
    return duckdb.connect().execute(f"SELECT * FROM read_parquet('{path}', hive_partitioning = false)").df()


# --- the registry --------------------------------------------------------------------


def test_every_mart_but_the_identity_crosswalk_is_exported():
    everything = {s.table for s in all_marts()}
    exported = {s.table for s in exported_marts()}
    assert {"marts.customer_identity"} == INTERNAL_MARTS
    assert exported == everything - {"marts.customer_identity"}
    # every mart in pipelines/docs.SECTIONS, one of them internal
    assert len(everything) >= 30 and len(exported) == len(everything) - 1
    assert not [c for s in exported_marts() for c in s.names if c.endswith("_ref")]


def test_internal_marts_and_source_id_columns_are_refused(wh, tmp_path):
    with pytest.raises(ValueError, match="customer_identity is internal"):
        check_exportable([CUSTOMER_IDENTITY])
    leaky = MartSchema("marts.leaky", "x", (as_of_col(), Col("customer_ref", "VARCHAR")))
    with pytest.raises(ValueError, match=r"marts.leaky holds source identifiers \['customer_ref'\]"):
        check_exportable([leaky])
    with wh.connect() as con:
        with pytest.raises(ValueError, match="internal"):
            export_parquet(con, [CUSTOMERS, CUSTOMER_IDENTITY], [D1], tmp_path / "out")
        with pytest.raises(ValueError, match="internal"):
            publish_bi(con, [CUSTOMER_IDENTITY], tmp_path / "bi.duckdb")
    assert not (tmp_path / "out").exists() and not (tmp_path / "bi.duckdb").exists()


def test_bad_inputs_are_clear_errors(wh, tmp_path):
    missing = MartSchema("marts.not_built", "x", (as_of_col(), Col("k", "VARCHAR")), key=("k",))
    with wh.connect() as con:
        with pytest.raises(ValueError, match=r"days must be datetime\.date values"):
            export_parquet(con, SCHEMAS, ["2025-03-01"], tmp_path / "out")
        with pytest.raises(RuntimeError, match=r"marts\.not_built do\(es\) not exist yet"):
            export_parquet(con, [missing], [D1], tmp_path / "out")
        with pytest.raises(ValueError, match="at least one mart"):
            publish_bi(con, [], tmp_path / "bi.duckdb")


# --- Parquet -------------------------------------------------------------------------


def test_one_parquet_file_per_table_and_date_in_hive_layout(wh, tmp_path, umask_zero):
    root = tmp_path / "out"
    with wh.connect() as con:
        files = export_parquet(con, SCHEMAS, [D2, D1], root)
    assert _files(root) == [
        "x_customers/as_of_date=2025-03-01/data.parquet",
        "x_customers/as_of_date=2025-03-02/data.parquet",
        "x_groups/as_of_date=2025-03-01/data.parquet",
        "x_groups/as_of_date=2025-03-02/data.parquet",
    ]
    # x_groups has no row on D2: an empty file that still carries the schema
    assert [(f.table, f.as_of_date, f.rows) for f in files] == [
        ("marts.x_customers", D1, 2),
        ("marts.x_customers", D2, 1),
        ("marts.x_groups", D1, 1),
        ("marts.x_groups", D2, 0),
    ]
    assert all(f.bytes == f.path.stat().st_size > 0 for f in files)
    empty = _read(parquet_path(root, GROUPS.table, D2))
    assert list(empty.columns) == ["value_group", "customers"] and empty.empty

    # the date lives in the folder name; readers get it back as a DATE, the decimals stay decimals
    got = (
        duckdb.connect()
        .execute(
            f"SELECT as_of_date, customer_key, spend, tier_zh FROM read_parquet('{root}/x_customers/*/*.parquet', "
            "hive_partitioning = true) ORDER BY ALL"
        )
        .fetchall()
    )
    assert got == [
        (D1, "k1", Decimal("10.50"), "金牌"),
        (D1, "k2", Decimal("3.00"), "铅牌"),
        (D2, "k1", Decimal("12.00"), "金牌"),
    ]

    for f in files:
        assert f.path.stat().st_mode & 0o777 == 0o640
    for d in [root, root / "x_customers", parquet_path(root, CUSTOMERS.table, D1).parent]:
        assert d.stat().st_mode & 0o777 == 0o750


def test_a_smaller_rerun_leaves_one_file_for_its_date_and_other_dates_alone(wh, tmp_path):
    root = tmp_path / "out"
    with wh.connect() as con:
        export_parquet(con, [CUSTOMERS], [D1, D2], root)
    d1 = parquet_path(root, CUSTOMERS.table, D1).parent
    d2_file = parquet_path(root, CUSTOMERS.table, D2)
    d2_before = (d2_file.read_bytes(), d2_file.stat().st_mtime_ns)
    # what an older writer (COPY PARTITION_BY part-files) and a crashed run leave behind
    (d1 / "data_0.parquet").write_bytes(b"old part")
    (d1 / ".tmp-0123.part").write_bytes(b"half a file")

    with wh.connect() as con:  # k2 left the D1 snapshot: D1 now has 1 row instead of 2
        Warehouse.replace_rows(
            con, [Replace(CUSTOMERS.table, CUSTOMERS.columns, CUSTOMER_ROWS[:1], {"as_of_date": D1})]
        )
        (again,) = export_parquet(con, [CUSTOMERS], [D1], root)

    assert again.rows == 1
    assert sorted(p.name for p in d1.iterdir()) == ["data.parquet"]
    assert _read(again.path)["customer_key"].tolist() == ["k1"]
    assert (d2_file.read_bytes(), d2_file.stat().st_mtime_ns) == d2_before


def test_a_failed_write_leaves_the_previous_file_and_no_temp_file(wh, tmp_path):
    root = tmp_path / "out"
    with wh.connect() as con:
        export_parquet(con, [CUSTOMERS], [D1], root)
        before = parquet_path(root, CUSTOMERS.table, D1).read_bytes()
        # the contract says a column the table no longer has: the COPY fails mid-export
        drifted = MartSchema(CUSTOMERS.table, "x", (*CUSTOMERS.columns, Col("gone", "BIGINT")), key=("customer_key",))
        with pytest.raises(duckdb.BinderException):
            export_parquet(con, [drifted], [D1], root)
    assert _files(root) == ["x_customers/as_of_date=2025-03-01/data.parquet"]
    assert parquet_path(root, CUSTOMERS.table, D1).read_bytes() == before


# --- bi.duckdb -----------------------------------------------------------------------


def test_bi_holds_the_exported_marts_their_latest_views_and_comments(wh, tmp_path, umask_zero):
    bi_path = tmp_path / "bi" / "bi.duckdb"
    with wh.connect() as con:
        bi = publish_bi(con, SCHEMAS, bi_path)
    assert bi.latest == {"marts.x_customers": D2, "marts.x_groups": D1}
    assert bi_path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in bi_path.parent.iterdir()) == ["bi.duckdb"]  # no temp file, no WAL

    with duckdb.connect(str(bi_path), read_only=True) as c:
        relations = c.execute(
            "SELECT schema_name || '.' || table_name, 'table' FROM duckdb_tables() "
            "UNION ALL SELECT schema_name || '.' || view_name, 'view' FROM duckdb_views() WHERE NOT internal ORDER BY 1"
        ).fetchall()
        assert relations == [
            ("marts.x_customers", "table"),
            ("marts.x_customers_latest", "view"),
            ("marts.x_groups", "table"),
            ("marts.x_groups_latest", "view"),
            ("pipeline.snapshot_writes", "table"),
        ]  # and so no customer_identity
        # every row, all columns, in the contract's order and types
        assert c.execute("SELECT count(*) FROM marts.x_customers").fetchall() == [(3,)]
        assert [r[:2] for r in c.execute("DESCRIBE marts.x_customers").fetchall()] == [
            (col.name, col.sql_type) for col in CUSTOMERS.columns
        ]
        # latest: x_customers' newest date is D2 (k1 only); x_groups' is D1 (it has no D2 rows)
        assert c.execute("SELECT as_of_date, customer_key, spend FROM marts.x_customers_latest").fetchall() == [
            (D2, "k1", Decimal("12.00"))
        ]
        assert c.execute("SELECT as_of_date, value_group FROM marts.x_groups_latest").fetchall() == [(D1, "top")]

        tables = dict(c.execute("SELECT table_name, comment FROM duckdb_tables()").fetchall())
        assert tables == {
            "x_customers": CUSTOMERS.description,
            "x_groups": GROUPS.description,
            "snapshot_writes": BI_WRITES_COMMENT,
        }
        views = dict(c.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall())
        assert views["x_customers_latest"].startswith("Newest snapshot of marts.x_customers")
        comments = c.execute(
            "SELECT table_name, column_name, comment FROM duckdb_columns() WHERE table_name LIKE 'x_customers%'"
        ).fetchall()
        want = {col.name: col.comment for col in CUSTOMERS.columns}
        assert {(t, n): m for t, n, m in comments} == {
            (t, n): m for t in ("x_customers", "x_customers_latest") for n, m in want.items()
        }
        # a column without a comment in the contract has none here either
        assert c.execute(
            "SELECT comment FROM duckdb_columns() WHERE table_name = 'x_groups' AND column_name = 'customers'"
        ).fetchall() == [(None,)]


def _bi_rows(path, schemas=SCHEMAS):
    with duckdb.connect(str(path), read_only=True) as c:
        return {s.table: c.execute(f"SELECT * FROM {s.table} ORDER BY ALL").df() for s in schemas}


def test_a_later_publication_updates_only_the_snapshots_written_since(wh, tmp_path):
    """The nightly case: the previous bi.duckdb is copied and only the snapshots whose write
    changed are replaced (or removed when the warehouse dropped them); the result equals a
    publication from scratch."""
    bi_path = tmp_path / "bi" / "bi.duckdb"
    with wh.connect() as con:
        first = publish_bi(con, SCHEMAS, bi_path)
        again = publish_bi(con, SCHEMAS, bi_path)
        # D2 rewritten with other rows, D3 new, D1 of x_groups deleted the way retention does
        Warehouse.replace_rows(
            con,
            [
                Replace(
                    CUSTOMERS.table,
                    CUSTOMERS.columns,
                    _customers(
                        (D2, "k1", Decimal("13.00"), "gold", "金牌", "v2"),
                        (D3, "k2", Decimal("1.00"), "lead", "铅牌", "v2"),
                    ),
                    {"as_of_date": [D2, D3]},
                )
            ],
        )
        Warehouse._raw(con).execute("DELETE FROM marts.x_groups WHERE as_of_date = ?", [D1])
        updated = publish_bi(con, SCHEMAS, bi_path)
        scratch = publish_bi(con, SCHEMAS, tmp_path / "scratch" / "bi.duckdb")
    assert (first.mode, again.mode, updated.mode, scratch.mode) == ("full", "incremental", "incremental", "full")
    assert (again.snapshots_changed, updated.snapshots_changed) == (0, 3)
    assert updated.latest == {"marts.x_customers": D3, "marts.x_groups": None}
    got, want = _bi_rows(bi_path), _bi_rows(tmp_path / "scratch" / "bi.duckdb")
    for table in want:
        pd.testing.assert_frame_equal(got[table], want[table])
    assert got["marts.x_customers"].spend.tolist() == [
        Decimal("10.50"),
        Decimal("3.00"),
        Decimal("13.00"),
        Decimal("1.00"),
    ]
    assert sorted(p.name for p in bi_path.parent.iterdir()) == ["bi.duckdb"]


def test_a_bi_file_of_another_layout_is_rebuilt_in_full(wh, tmp_path):
    bi_path = tmp_path / "bi" / "bi.duckdb"
    with wh.connect() as con:
        publish_bi(con, SCHEMAS, bi_path)
        with duckdb.connect(str(bi_path)) as c:
            c.execute("ALTER TABLE marts.x_groups ADD COLUMN extra INTEGER")
        assert publish_bi(con, SCHEMAS, bi_path).mode == "full"
        with duckdb.connect(str(bi_path)) as c:
            c.execute("DROP TABLE pipeline.snapshot_writes")
        assert publish_bi(con, SCHEMAS, bi_path).mode == "full"
        assert publish_bi(con, SCHEMAS, bi_path).mode == "incremental"


READER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    count = lambda: con.execute("SELECT count(*) FROM marts.x_customers").fetchall()[0][0]
    print(count(), flush=True)
    sys.stdin.readline()  # the test publishes again meanwhile
    print(count(), flush=True)
    """
)


def _count_in_new_process(path):
    code = "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
    code += "print(c.execute('SELECT count(*) FROM marts.x_customers').fetchall()[0][0])"
    return int(
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, check=True, text=True).stdout
    )


def test_a_reader_of_the_old_bi_file_keeps_it_and_does_not_block_publishing(wh, tmp_path):
    """A BI process holds bi.duckdb open (3 rows of x_customers) while the pipeline adds a
    D3 snapshot (1 row) and publishes again: publishing does not wait or fail, the open
    reader still counts 3, a reader started afterwards counts 4.

    Readers are separate processes, as BI tools are: within one process DuckDB caches the
    database instance by path, and a second connect() to bi.duckdb would get the old file."""
    bi_path = tmp_path / "bi.duckdb"
    with wh.connect() as con:
        publish_bi(con, SCHEMAS, bi_path)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(bi_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert reader.stdout.readline().strip() == "3"
        with wh.connect() as con:
            d3 = _customers((D3, "k3", Decimal("1.00"), "iron", "铁牌", "v1"))
            Warehouse.replace_rows(con, [Replace(CUSTOMERS.table, CUSTOMERS.columns, d3, {"as_of_date": D3})])
            published = publish_bi(con, SCHEMAS, bi_path)
        assert published.latest["marts.x_customers"] == D3
        out, _ = reader.communicate("go\n", timeout=30)
        assert out.strip() == "3"
    finally:
        reader.kill()
        reader.wait()
    assert _count_in_new_process(bi_path) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("bi.duckdb")) == ["bi.duckdb"]


# --- the Dagster asset ---------------------------------------------------------------


def test_the_asset_exports_its_partition_and_publishes_bi(tmp_path, monkeypatch):
    """Every mart table exists, empty: the asset writes one (empty) file per exported mart
    for its day and a bi.duckdb with a table and a view per exported mart; customer_identity stays home."""
    from assets.exports import EXPORTED, export_paths, exports_asset
    from pipelines.resources import build_resources
    from pipelines.settings import Settings

    monkeypatch.chdir(tmp_path)  # the export paths default to relative paths, like warehouse_path
    settings = Settings(warehouse_path=str(tmp_path / "wh" / "crm.duckdb"))
    with Warehouse(settings.warehouse_path).connect() as con:
        for s in (*EXPORTED, CUSTOMER_IDENTITY):
            Warehouse.ensure_table(con, s.table, s.columns, s.description)
    result = dg.materialize([exports_asset], partition_key=D1.isoformat(), resources=build_resources(settings))
    assert result.success
    (mat,) = result.asset_materializations_for_node(exports_asset.op.name)
    meta = {k: v.value for k, v in mat.metadata.items()}
    n = len(EXPORTED)
    assert (meta["files_written"], meta["rows_written"], meta["tables"], meta["days"]) == (n, 0, n, 1)

    root, bi_path = export_paths(settings)
    assert len(list((tmp_path / root).rglob("*.parquet"))) == n
    assert not (tmp_path / root / "customer_identity").exists()
    with duckdb.connect(str(tmp_path / bi_path), read_only=True) as c:
        names = {
            r[0] for r in c.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'marts'").fetchall()
        }
        views = c.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchall()
    assert names == {s.table.split(".")[1] for s in EXPORTED} and views == [(n,)]

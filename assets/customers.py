"""Customer marts: identity resolution and the customer 360 view, the base every value
mart reads (analytics/identity.py, analytics/customer360.py)."""

import datetime as dt
import hashlib

import ibis.expr.types as ir
import pandas as pd

from analytics.customer360 import CUSTOMER_360, customer_360, customer_360_nightly
from analytics.identity import CUSTOMER_IDENTITY, current_records, customer_identity
from analytics.schema import Col, MartSchema, as_of_col, version_col
from assets.reporting import markdown
from assets.snapshots import Batch, Report, mart_asset
from pipelines import warehouse as wh
from quality.ingest import LOG_TABLE

FEED_DEPS = ["staging/customers", "staging/orders", "staging/payments", "staging/interactions", "staging/surveys"]


def _identity(b: Batch):
    records = b.scratch.keep(current_records(b.staging("customers"), b.as_of))
    return customer_identity(b.scratch, records, b.settings.identity, b.secret, settings_version=b.version)


def _merge_summary(last) -> dict:
    merged = last[last.records_in_customer > 1]
    return {
        "records": len(last),
        "customers": int(last.customer_key.nunique()),
        "records_merged": len(merged),
        "match_rules": markdown(
            last.match_rules.replace("", "(none)").value_counts().rename_axis("rules").reset_index()
        ),
    }


customer_identity_asset = mart_asset(
    name="customer_identity",
    tables=[
        (
            CUSTOMER_IDENTITY,
            Report(
                order_by=("-records_in_customer", "customer_key"),
                extra=_merge_summary,
                columns=("records_in_customer", "customer_key", "match_rules"),
            ),
        )
    ],
    deps=["staging/customers"],
    group="customers",
    compute=lambda b: {CUSTOMER_IDENTITY.table: _identity(b)},
    description="Every customer record → one stable pseudonymous customer_key, with the evidence of each merge.",
)


#: What each customer 360 snapshot was built from, so a nightly run can tell whether the day
#: before's snapshot still describes the staging tables it would be carried forward from.
CUSTOMER_360_INPUTS = MartSchema(
    table="meta.customer_360_inputs",
    description="Per customer 360 snapshot: a fingerprint of the ingested feed days it was built from.",
    columns=(
        as_of_col(),
        Col(
            "ingest_fingerprint",
            "VARCHAR",
            "Hash of meta.ingest_log up to as_of_date (feed, day, status, counts, run): any re-ingest changes it.",
        ),
        version_col(),
    ),
)


def ingest_fingerprints(con, days: list[dt.date]) -> dict[dt.date, str]:
    """Per day, a hash of every ingest-log row up to it: staging rows known by a day change
    only through an ingest run, which rewrites its log rows (with its run id)."""
    if not wh.exists(con, LOG_TABLE):
        return dict.fromkeys(days, "")
    log = wh.sql_df(
        con,
        f"SELECT feed, _partition_date, status, clean, quarantined, deduplicated, run_id FROM {LOG_TABLE} "
        "WHERE _partition_date <= ?",
        [max(days)],
    )
    log["_partition_date"] = pd.to_datetime(log["_partition_date"]).dt.date
    log = log.sort_values(["_partition_date", "feed", "run_id"]).astype(str)
    out = {}
    for day in days:
        part = log[log["_partition_date"] <= str(day)]
        out[day] = hashlib.sha1(part.to_csv(index=False).encode()).hexdigest()
    return out


def _previous(b: Batch, day: dt.date) -> tuple[ir.Table, ir.Table] | None:
    """The day before's customer 360 and identity when a one-day run can be built from them:
    built with these settings from the same ingested days; else None (a full build)."""
    before = day - dt.timedelta(days=1)
    if not b.settings.nightly_incremental or not wh.exists(b.con, CUSTOMER_360_INPUTS.table):
        return None
    if not wh.exists(b.con, CUSTOMER_360.table):
        return None
    have = wh.sql_df(
        b.con,
        f"SELECT ingest_fingerprint, settings_version FROM {CUSTOMER_360_INPUTS.table} WHERE as_of_date = ?",
        [before],
    )
    if len(have) != 1:
        return None
    if have["settings_version"].iloc[0] != b.version:
        b.log(f"customer_360: the {before} snapshot has other settings; rebuilding {day} from the whole history")
        return None
    if have["ingest_fingerprint"].iloc[0] != ingest_fingerprints(b.con, [before])[before]:
        b.log(f"customer_360: feed days up to {before} were ingested again; rebuilding {day} from the whole history")
        return None
    c360, identity = b.con.table("customer_360", database="marts"), b.con.table("customer_identity", database="marts")
    previous = c360.filter(c360.as_of_date == before)
    if int(previous.count().execute()) == 0:
        return None
    return previous, identity.filter(identity.as_of_date == before)


def _c360(b: Batch):
    records = b.scratch.keep(current_records(b.staging("customers"), b.as_of))
    identity = b.mart(CUSTOMER_IDENTITY)
    prints = ingest_fingerprints(b.con, b.days)
    inputs = pd.DataFrame(
        {"as_of_date": b.days, "ingest_fingerprint": [prints[d] for d in b.days], "settings_version": b.version}
    )
    feeds = {f: b.staging(f) for f in ("orders", "payments", "interactions", "surveys")}
    previous = _previous(b, b.days[0]) if len(b.days) == 1 else None
    if previous is None:
        expr = customer_360(
            records=records,
            identity=identity,
            **feeds,
            as_of=b.as_of,
            params=b.settings.customer360,
            settings_version=b.version,
        )
        return {CUSTOMER_360.table: expr, CUSTOMER_360_INPUTS.table: inputs}
    day = b.days[0]
    expr, carried = customer_360_nightly(
        day=day,
        previous=previous[0],
        previous_identity=previous[1],
        records=records,
        identity=identity,
        customers=b.staging("customers"),
        **feeds,
        params=b.settings.customer360,
        settings_version=b.version,
        keep=b.scratch.keep,
    )
    total = int(identity.select("customer_key").distinct().count().execute())
    kept = int(carried.count().execute())
    b.log(
        f"customer_360: {day} from the {day - dt.timedelta(days=1)} snapshot: {total - kept:,} of {total:,} "
        "customers recomputed, the rest carried forward"
    )
    return {CUSTOMER_360.table: expr, CUSTOMER_360_INPUTS.table: inputs}


def _c360_summary(last) -> dict:
    buyers = last[last.has_purchased]
    return {
        "customers": len(last),
        "buyers": len(buyers),
        "revenue_12m": float(buyers.net_monetary_12m.sum()),
        "profit_12m": float(buyers.profit_12m.sum()),
        "outstanding_balance": float(last.outstanding_balance.sum()),
    }


customer_360_asset = mart_asset(
    name="customer_360",
    tables=[
        (
            CUSTOMER_360,
            Report(
                order_by=("-net_monetary", "customer_key"),
                extra=_c360_summary,
                columns=("has_purchased", "net_monetary_12m", "profit_12m", "outstanding_balance"),
            ),
        )
    ],
    deps=[CUSTOMER_IDENTITY, *FEED_DEPS],
    group="customers",
    compute=_c360,
    description="Customer 360: transaction, payment, service and survey facts per customer and as-of date.",
    bookkeeping=[CUSTOMER_360_INPUTS],
)

customer_assets = [customer_identity_asset, customer_360_asset]

"""One feed, one business day: landing files → staging, quarantine, rejected.

This is the ingestion use case without Dagster: the assets call `ingest_day` per
partition and report what it returns. Its promise, checked again by the blocking
asset checks: for every feed and day, rows read = clean + quarantined +
deduplicated, and a rerun of the day leaves identical rows (the day's staging,
quarantine and log rows are replaced in one transaction).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from pipelines import warehouse as wh
from pipelines.warehouse import ColumnDef, Replace
from quality import landing, reasons
from quality.contracts import FeedContract
from quality.reader import FileRejected, read_file
from quality.router import Lookups, RouteContext, Routed, flag_survey_quality, route, text_isin

log = logging.getLogger(__name__)

SURVEY_FLAGS = ("is_speeder", "is_straightliner", "failed_attention", "is_duplicate_respondent")


# --- table layouts ---------------------------------------------------------------------


def staging_columns(contract: FeedContract) -> list[ColumnDef]:
    cols = [ColumnDef(c.name, c.sql_type, c.description) for c in contract.columns]
    cols += [
        ColumnDef("business_date", "DATE", f"Business date of {contract.event_column} in the business time zone."),
        ColumnDef("_partition_date", "DATE", "Business day whose landing folder delivered the row."),
        ColumnDef("_source_file", "VARCHAR", "Landing file (feed/day/name) the row came from."),
        ColumnDef("_source_line", "BIGINT", "Physical line in the file where the row starts (header = 1)."),
        ColumnDef("_row_hash", "BIGINT", "Hash of the row's canonical content; equal rows have equal hashes."),
    ]
    if contract.name == "surveys":
        cols += [
            ColumnDef("is_speeder", "BOOLEAN", "Completed faster than the speeder threshold (flagged, kept)."),
            ColumnDef("is_straightliner", "BOOLEAN", "Same answer on every ACSI grid item (flagged, kept)."),
            ColumnDef("failed_attention", "BOOLEAN", "Attention-check item answered wrongly (flagged, kept)."),
            ColumnDef(
                "is_duplicate_respondent", "BOOLEAN", "Same customer answered this survey wave before (flagged, kept)."
            ),
        ]
    return cols


QUARANTINE_COLUMNS = [
    ColumnDef("_partition_date", "DATE", "Business day whose landing folder delivered the row."),
    ColumnDef("reason_code", "VARCHAR", "Why the row is held back; see quality/reasons.py."),
    ColumnDef("reason_detail", "VARCHAR", "The failing column and value."),
    ColumnDef("reprocessable", "BOOLEAN", "True when a rerun may load it once what it refers to arrives."),
    ColumnDef("_source_file", "VARCHAR", "Landing file (feed/day/name)."),
    ColumnDef("_source_line", "BIGINT", "Physical line in the file (header = 1); Parquet: row number."),
    ColumnDef("raw_payload", "VARCHAR", "The row exactly as delivered. May hold personal data: never exported."),
    ColumnDef("run_id", "VARCHAR", "Dagster run that routed the row."),
]

LOG_TABLE = "meta.ingest_log"
LOG_COLUMNS = [
    ColumnDef("feed", "VARCHAR", "Feed name."),
    ColumnDef("_partition_date", "DATE", "Business day."),
    ColumnDef("status", "VARCHAR", "loaded | no_files | incomplete (files but no manifest: nothing loaded)."),
    ColumnDef("files_read", "BIGINT", "Files accepted."),
    ColumnDef("files_rejected", "BIGINT", "Files rejected whole (see meta.rejected_files)."),
    ColumnDef("rows_read", "BIGINT", "Data rows in accepted files."),
    ColumnDef("clean", "BIGINT", "Rows loaded into staging."),
    ColumnDef("quarantined", "BIGINT", "Rows in quarantine."),
    ColumnDef("deduplicated", "BIGINT", "Exact duplicates dropped (within the day or re-delivered)."),
    ColumnDef("run_id", "VARCHAR", "Dagster run."),
]

REJECTED_TABLE = "meta.rejected_files"
REJECTED_COLUMNS = [
    ColumnDef("feed", "VARCHAR", "Feed name."),
    ColumnDef("_partition_date", "DATE", "Business day."),
    ColumnDef("file_name", "VARCHAR", "File as delivered."),
    ColumnDef("reason_code", "VARCHAR", "Why the file was rejected; see quality/reasons.py."),
    ColumnDef("reason_detail", "VARCHAR", "What exactly did not match."),
    ColumnDef("moved_to", "VARCHAR", "Where the file now is (with a .reason.json sidecar)."),
    ColumnDef("run_id", "VARCHAR", "Dagster run."),
]


def staging_table(feed: str) -> str:
    return f"staging.{feed}"


def quarantine_table(feed: str) -> str:
    return f"quarantine.{feed}"


def ensure_tables(con, contract: FeedContract) -> None:
    wh.ensure_table(con, staging_table(contract.name), staging_columns(contract), contract.description)
    wh.ensure_table(
        con,
        quarantine_table(contract.name),
        QUARANTINE_COLUMNS,
        f"Rows of the {contract.name} feed held back, with the reason. Internal: holds raw personal data.",
    )
    wh.ensure_table(con, LOG_TABLE, LOG_COLUMNS, "One row per feed and business day: what was read.")
    wh.ensure_table(con, REJECTED_TABLE, REJECTED_COLUMNS, "Landing files rejected whole, with the reason.")


# --- look-ups into earlier partitions --------------------------------------------------


def _key_sql(contract: FeedContract) -> str:
    return " || chr(31) || ".join(f"coalesce(CAST({k} AS STRING), '')" for k in contract.key)


def make_lookups(con, contract: FeedContract, batch_start: dt.date) -> Lookups:
    """Warehouse-backed look-ups into partitions before `batch_start` (customers: on
    or before each row's own day), so a day routes the same way whether it runs
    alone, inside a backfill, or again after later days were loaded."""
    table = staging_table(contract.name)

    def known_customers(rows: pd.DataFrame) -> pd.Series:
        refs = pd.DataFrame({"ref": rows["customer_ref"].astype("str").drop_duplicates().to_numpy()})
        first = wh.sql_df(
            con,
            "SELECT customer_ref, min(_partition_date) AS first_day FROM staging.customers "
            "WHERE customer_ref IN (SELECT ref FROM q) GROUP BY 1",
            q=refs,
        )
        first_day = pd.to_datetime(first.set_index("customer_ref")["first_day"].reindex(rows["customer_ref"]))
        return pd.Series(first_day.to_numpy() <= pd.to_datetime(rows["_partition_date"]).to_numpy(), index=rows.index)

    def prior_versions(keys: pd.Series) -> pd.DataFrame:
        # Semi-join on the first key column first, so the composite key is only built
        # for candidate rows, not for the whole history.
        first = contract.key[0]
        frame = pd.DataFrame({"k": keys.astype("str").to_numpy()})
        frame["k0"] = frame["k"].str.replace("(?s)\x1f.*", "", regex=True)  # vectorised, unlike str.split
        # the newest version of each key (a subquery, not QUALIFY: Spark SQL has none)
        rank = (
            "1"
            if contract.immutable
            else (
                f"row_number() OVER (PARTITION BY {_key_sql(contract)} "
                "ORDER BY _partition_date DESC, _source_file DESC, _source_line DESC)"
            )
        )
        return wh.sql_df(
            con,
            f"SELECT _key, _row_hash FROM (SELECT {_key_sql(contract)} AS _key, _row_hash, {rank} AS _rank "
            f"FROM {table} WHERE _partition_date < ? AND CAST({first} AS STRING) IN (SELECT k0 FROM q) "
            f"AND {_key_sql(contract)} IN (SELECT k FROM q)) AS versions WHERE _rank = 1",
            [batch_start],
            q=frame,
        )

    def known_orders(ids: pd.Series) -> pd.Series:
        frame = pd.DataFrame({"id": ids.astype("str").drop_duplicates().to_numpy()})
        hits = wh.sql_df(
            con,
            "SELECT DISTINCT order_id FROM staging.orders WHERE _partition_date < ? "
            "AND status = 'completed' AND order_id IN (SELECT id FROM q)",
            [batch_start],
            q=frame,
        )
        return text_isin(ids, hits["order_id"])

    def prior_respondents(rows: pd.DataFrame) -> pd.Series:
        frame = rows.reset_index(drop=True).astype("str")
        frame["_i"] = range(len(frame))
        hits = wh.sql_df(
            con,
            "SELECT DISTINCT q._i FROM q JOIN staging.surveys s USING (customer_ref, survey_id, wave) "
            "WHERE s._partition_date < ?",
            [batch_start],
            q=frame,
        )
        return pd.Series(frame["_i"].isin(set(hits["_i"])).to_numpy(), index=rows.index)

    return Lookups(
        known_customers=known_customers,
        prior_versions=prior_versions,
        known_orders=known_orders,
        prior_respondents=prior_respondents,
    )


@dataclass
class RejectedFile:
    file_name: str
    reason_code: str
    reason_detail: str
    moved_to: str


@dataclass
class DayResult:
    feed: str
    day: dt.date
    status: str
    files_read: int = 0
    rejected: list[RejectedFile] = field(default_factory=list)
    rows_read: int = 0
    clean: int = 0
    quarantined: int = 0
    deduplicated: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.clean + self.quarantined + self.deduplicated


def reject_file(landing_root: Path, feed: str, day: str, path: Path, err: FileRejected, run_id: str) -> RejectedFile:
    """Move the file out of the landing day and leave a sidecar that says why."""
    target_dir = landing.rejected_dir(landing_root, feed, day)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    sidecar = {
        "feed": feed,
        "business_date": day,
        "file": path.name,
        "reason_code": err.reason,
        "reason": reasons.FILE_REASONS.get(err.reason, ""),
        "detail": err.detail,
        "sha256": landing.sha256_of(path),
        "bytes": path.stat().st_size,
        "run_id": run_id,
    }
    tmp = target_dir / (path.name + ".reason.json.tmp")
    tmp.write_text(json.dumps(sidecar, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, target_dir / (path.name + ".reason.json"))
    shutil.move(str(path), target)
    return RejectedFile(path.name, err.reason, err.detail, str(target))


def _previously_rejected(landing_root: Path, feed: str, day: str, name: str) -> RejectedFile | None:
    sidecar = landing.rejected_dir(landing_root, feed, day) / (name + ".reason.json")
    if not sidecar.exists():
        return None
    body = json.loads(sidecar.read_text(encoding="utf-8"))
    return RejectedFile(name, body["reason_code"], body.get("detail", ""), str(sidecar.parent / name))


def read_day(
    landing_root: Path, contract: FeedContract, day: str, run_id: str
) -> tuple[str, pd.DataFrame, pd.DataFrame, list[RejectedFile], int]:
    """(status, rows, malformed, rejected files, files read) for one landing day."""
    folder = landing.day_dir(landing_root, contract.name, day)
    files = landing.data_files(folder)
    manifest = landing.read_manifest(folder) if folder.exists() else None
    empty = pd.DataFrame()
    if manifest is None:
        if files:
            log.warning(
                "%s %s: %d file(s) but no %s yet: day incomplete, nothing loaded",
                contract.name,
                day,
                len(files),
                landing.MANIFEST_NAME,
            )
            return "incomplete", empty, empty, [], 0
        return "no_files", empty, empty, [], 0
    rejected: list[RejectedFile] = []
    frames, bad = [], []
    present = {p.name for p in files}
    for name in sorted(set(manifest) - present):
        earlier = _previously_rejected(landing_root, contract.name, day, name)
        rejected.append(
            earlier or RejectedFile(name, reasons.MISSING_FILE, "listed in the manifest, not in the folder", "")
        )
    for path in files:
        source = f"{contract.name}/{day}/{path.name}"
        try:
            rows = read_file(path, contract, manifest.get(path.name), source)
        except FileRejected as err:
            log.warning("%s: rejected %s (%s)", source, err.reason, err.detail)
            rejected.append(reject_file(landing_root, contract.name, day, path, err, run_id))
            continue
        frame = rows.frame
        frame["_source_file"] = source
        frames.append(frame)
        if rows.malformed:
            bad.append(
                pd.DataFrame(rows.malformed, columns=["_source_line", "_raw", "detail"]).assign(_source_file=source)
            )
    rows_frame = pd.concat(frames, ignore_index=True) if frames else empty
    bad_frame = pd.concat(bad, ignore_index=True) if bad else empty
    rejected.sort(key=lambda r: r.file_name)
    return "loaded", rows_frame, bad_frame, rejected, len(frames)


@dataclass
class DayInput:
    day: dt.date
    status: str
    rows: pd.DataFrame
    malformed: pd.DataFrame
    rejected: list[RejectedFile]
    files_read: int


def _empty_rows(contract: FeedContract) -> pd.DataFrame:
    cols = (*contract.column_names, "_source_file", "_source_line", "_raw")
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "_source_line" else "str") for c in cols})


def chunks(
    days: list[dt.date], max_days: int, rows: dict[dt.date, int] | None = None, max_rows: int | None = None
) -> list[list[dt.date]]:
    """Split sorted days into runs of consecutive days, at most `max_days` long: a
    batch may only look up partitions before its first day, so it must have no gap.
    With `rows` (rows per day, e.g. from the manifests) a batch also ends before it
    would pass `max_rows`: a batch is routed in memory, and at 100M order lines a
    month of orders is ~7M rows. A single day larger than `max_rows` is a batch alone."""
    out: list[list[dt.date]] = []
    size = 0
    for d in sorted(days):
        n = (rows or {}).get(d, 0)
        fits = max_rows is None or size + n <= max_rows
        if out and d == out[-1][-1] + dt.timedelta(days=1) and len(out[-1]) < max_days and fits:
            out[-1].append(d)
            size += n
        else:
            out.append([d])
            size = n
    return out


def ingest_batch(
    con,
    contract: FeedContract,
    days: list[dt.date],
    *,
    landing_root: Path,
    ctx: RouteContext,
    run_id: str,
    speeder_seconds: int = 90,
    attention_answer: int = 7,
) -> tuple[list[DayResult], pd.DataFrame]:
    """Route consecutive days of one feed together and replace their partitions in
    one transaction. Returns per-day results and the clean rows (for the GX suite)."""
    inputs = []
    for day in days:
        status, rows, malformed, rejected, files_read = read_day(Path(landing_root), contract, day.isoformat(), run_id)
        inputs.append(DayInput(day, status, rows, malformed, rejected, files_read))
    frames = [i.rows.assign(_partition_date=pd.Timestamp(i.day)) for i in inputs if len(i.rows)]
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(contract).assign(_partition_date=None)
    bad = [i.malformed.assign(_partition_date=pd.Timestamp(i.day)) for i in inputs if len(i.malformed)]
    lookups = make_lookups(con, contract, days[0])
    routed: Routed = route(rows, contract, ctx, lookups, pd.concat(bad, ignore_index=True) if bad else None)
    clean = routed.clean
    if contract.name == "surveys":
        clean = flag_survey_quality(
            clean,
            contract,
            speeder_seconds=speeder_seconds,
            attention_answer=attention_answer,
            prior_respondents=lookups.prior_respondents,
        )
    q = routed.quarantine.rename(columns={"_raw": "raw_payload"})
    q["run_id"] = run_id

    def per_day(frame: pd.DataFrame) -> dict:
        return {d.date(): n for d, n in frame["_partition_date"].value_counts().items()}

    n_clean, n_quarantined = per_day(clean), per_day(q)
    n_bad = {i.day: len(i.malformed) for i in inputs}
    dedup = {pd.Timestamp(k).date(): v for k, v in routed.deduplicated_by_day.items()}
    results = []
    for i in inputs:
        day_q = q[q["_partition_date"].dt.date == i.day] if len(q) else q
        results.append(
            DayResult(
                feed=contract.name,
                day=i.day,
                status=i.status,
                files_read=i.files_read,
                rejected=i.rejected,
                rows_read=len(i.rows) + n_bad[i.day],
                clean=int(n_clean.get(i.day, 0)),
                quarantined=int(n_quarantined.get(i.day, 0)),
                deduplicated=int(dedup.get(i.day, 0)),
                reasons={str(k): int(v) for k, v in day_q["reason_code"].value_counts().sort_index().items()},
            )
        )
    log_rows = pd.DataFrame(
        [
            {
                "feed": contract.name,
                "_partition_date": r.day,
                "status": r.status,
                "files_read": r.files_read,
                "files_rejected": len(r.rejected),
                "rows_read": r.rows_read,
                "clean": r.clean,
                "quarantined": r.quarantined,
                "deduplicated": r.deduplicated,
                "run_id": run_id,
            }
            for r in results
        ]
    )
    rej = pd.DataFrame(
        [
            {**asdict(f), "feed": contract.name, "_partition_date": r.day, "run_id": run_id}
            for r in results
            for f in r.rejected
        ],
        columns=[c.name for c in REJECTED_COLUMNS],
    )
    cols = staging_columns(contract)
    part = {"_partition_date": list(days)}
    wh.replace_rows(
        con,
        [
            Replace(staging_table(contract.name), cols, clean[[c.name for c in cols]], part),
            Replace(quarantine_table(contract.name), QUARANTINE_COLUMNS, q[[c.name for c in QUARANTINE_COLUMNS]], part),
            Replace(LOG_TABLE, LOG_COLUMNS, log_rows, {"feed": contract.name, **part}),
            Replace(REJECTED_TABLE, REJECTED_COLUMNS, rej, {"feed": contract.name, **part}),
        ],
    )
    return results, clean


def ingest_day(con, contract: FeedContract, day: dt.date, **kw) -> tuple[DayResult, pd.DataFrame]:
    """One day of one feed (a nightly run, or a test)."""
    results, clean = ingest_batch(con, contract, [day], **kw)
    return results[0], clean

"""One feed, a run of business days: landing files → staging, quarantine, rejected.

This is the ingestion use case without Dagster: the assets call `ingest_batch` per batch of
consecutive days (`chunks`) and report what it returns; a day too big for one batch is
routed in key chunks (`can_chunk`). Its promise, checked again by the blocking asset
checks: for every feed and day, rows read = clean + quarantined + deduplicated, and a rerun
of the day leaves identical rows (the days' staging, quarantine and log rows are replaced
in one transaction), however the days were batched or chunked.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import warehouse as wh
from pipelines.warehouse import ColumnDef, Replace
from quality import landing, reasons
from quality.contracts import FeedContract
from quality.reader import FileRejected, read_file
from quality.router import (
    Lookups,
    RouteContext,
    Routed,
    completed_orders,
    flag_survey_quality,
    normalise_column,
    route,
    text_isin,
)

log = logging.getLogger(__name__)

#: Rows of a Parquet file converted at a time when its day is spilled in key chunks.
SPILL_PIECE_ROWS = 250_000

#: The order rows are written in, whether a batch was routed whole or in chunks.
LINE_ORDER = ("_partition_date", "_source_file", "_source_line")

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
    landing_root: Path,
    contract: FeedContract,
    day: str,
    run_id: str,
    sink: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[str, pd.DataFrame, pd.DataFrame, list[RejectedFile], int]:
    """(status, rows, malformed, rejected files, files read) for one landing day. With `sink`,
    each file's rows go to it as they are read (a Parquet file's in slices of
    `SPILL_PIECE_ROWS`) and `rows` comes back empty: a day too big to hold is spilled."""
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
    frames, bad, files_read = [], [], 0
    present = {p.name for p in files}
    for name in sorted(set(manifest) - present):
        earlier = _previously_rejected(landing_root, contract.name, day, name)
        rejected.append(
            earlier or RejectedFile(name, reasons.MISSING_FILE, "listed in the manifest, not in the folder", "")
        )
    for path in files:
        source = f"{contract.name}/{day}/{path.name}"
        try:
            rows = read_file(path, contract, manifest.get(path.name), source, SPILL_PIECE_ROWS if sink else None)
        except FileRejected as err:
            log.warning("%s: rejected %s (%s)", source, err.reason, err.detail)
            rejected.append(reject_file(landing_root, contract.name, day, path, err, run_id))
            continue
        files_read += 1
        for frame in rows.frames():
            frame["_source_file"] = source
            if sink is None:
                frames.append(frame)
            else:
                sink(frame)
        if rows.malformed:
            bad.append(
                pd.DataFrame(rows.malformed, columns=["_source_line", "_raw", "detail"]).assign(_source_file=source)
            )
        rows = frame = None  # a spilled file's rows are not held while the next is read
    rows_frame = pd.concat(frames, ignore_index=True) if frames else empty
    bad_frame = pd.concat(bad, ignore_index=True) if bad else empty
    rejected.sort(key=lambda r: r.file_name)
    return "loaded", rows_frame, bad_frame, rejected, files_read


@dataclass
class DayInput:
    """What reading a landing day found, besides its rows."""

    day: dt.date
    status: str
    malformed: pd.DataFrame
    rejected: list[RejectedFile]
    files_read: int
    n_rows: int


def _empty_rows(contract: FeedContract) -> pd.DataFrame:
    cols = (*contract.column_names, "_source_file", "_source_line", "_raw")
    empty = pd.DataFrame({c: pd.Series([], dtype="int64" if c == "_source_line" else "str") for c in cols})
    return empty.assign(_partition_date=None)


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


def can_chunk(contract: FeedContract) -> bool:
    """Whether a day of this feed may be routed in key chunks (`chunk_of`). Every rule that
    compares rows compares the versions of one key, except two: a return names its original
    order (asked first, by `completed_orders`), and a survey's repeat-respondent flag
    compares a day's respondents across response ids, so a surveys day is routed whole."""
    return contract.name != "surveys" and contract.column(contract.key[0]).type in ("id", "text", "enum")


def chunk_of(rows: pd.DataFrame, contract: FeedContract, parts: int) -> np.ndarray:
    """The chunk (0..parts-1) each row is routed in: a hash of its key's first column as the
    router reads it, so every copy and version of a key, and every line of an order, meet."""
    c = contract.column(contract.key[0])
    key = normalise_column(rows[c.name], c).fillna("")
    return (pd.util.hash_array(key.to_numpy(dtype=object), categorize=False) % parts).astype(np.int64)


class _DaySpill:
    """A landing day's rows, sorted into key chunks as each file is read, in Parquet files
    of a temporary folder; orders also note the originals that the day's returns name."""

    def __init__(self, folder: Path, contract: FeedContract, parts: int) -> None:
        self.folder, self.contract, self.parts = folder, contract, parts
        self.files: list[list[Path]] = [[] for _ in range(parts)]
        self.rows = 0
        self._originals: list[pd.Series] = []

    def __call__(self, frame: pd.DataFrame) -> None:
        self.rows += len(frame)
        if "original_order_id" in frame:
            c = self.contract
            returned = normalise_column(frame["status"], c.column("status")) == "returned"
            orig = normalise_column(
                frame.loc[returned.fillna(False), "original_order_id"], c.column("original_order_id")
            )
            self._originals.append(orig.dropna().drop_duplicates())
        schema = pa.schema([(n, pa.int64() if n == "_source_line" else pa.string()) for n in frame.columns])
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        ids = chunk_of(frame, self.contract, self.parts)
        order = np.argsort(ids, kind="stable")
        bounds = np.searchsorted(ids[order], np.arange(self.parts + 1))
        for p in range(self.parts):
            if bounds[p] < bounds[p + 1]:
                path = self.folder / f"{p:05d}_{len(self.files[p]):05d}.parquet"
                pq.write_table(table.take(order[bounds[p] : bounds[p + 1]]), path)
                self.files[p].append(path)

    @property
    def originals(self) -> pd.Series:
        return pd.concat(self._originals).drop_duplicates() if self._originals else pd.Series([], dtype="str")

    def load(self, p: int) -> pd.DataFrame:
        if not self.files[p]:
            return pd.DataFrame()
        return pa.concat_tables([pq.read_table(f) for f in self.files[p]]).to_pandas()


def _day_in_chunks(
    landing_root: Path, contract: FeedContract, day: dt.date, parts: int, ctx: RouteContext, run_id: str, lookups
):
    """Read a day file by file into `parts` key chunks; yield [its DayInput], then each chunk
    as (rows, look-ups, malformed lines: with the first chunk). The look-ups know, beyond
    earlier days, the day's completed orders that its returns name, in whichever chunk."""
    with tempfile.TemporaryDirectory(prefix=f"crm-{contract.name}-{day}-") as tmp:
        spill = _DaySpill(Path(tmp), contract, parts)
        status, _, malformed, rejected, files_read = read_day(landing_root, contract, day.isoformat(), run_id, spill)
        yield [DayInput(day, status, malformed, rejected, files_read, spill.rows)]
        stamp = pd.Timestamp(day)
        bad = malformed.assign(_partition_date=stamp) if len(malformed) else None
        originals = spill.originals
        if len(originals):
            order_id = contract.column("order_id")
            found = []
            for p in range(parts):
                rows = spill.load(p)
                if len(rows):
                    named = text_isin(normalise_column(rows["order_id"], order_id), originals)
                    found.append(completed_orders(rows[named].assign(_partition_date=stamp), contract, ctx))
            same_day = pd.concat(found, ignore_index=True) if found else pd.Series([], dtype="str")
            earlier = lookups.known_orders
            lookups = dataclasses.replace(lookups, known_orders=lambda ids: earlier(ids) | text_isin(ids, same_day))
        for p in range(parts):
            rows = spill.load(p)
            rows = rows.assign(_partition_date=stamp) if len(rows) else _empty_rows(contract)
            yield rows, lookups, (bad if p == 0 else None)


def _batch_whole(landing_root: Path, contract: FeedContract, days: list[dt.date], run_id: str, lookups):
    """Read the days; yield the list of DayInputs, then the batch's rows as one piece
    (rows, look-ups, malformed lines)."""
    inputs, frames, bad = [], [], []
    for day in days:
        status, rows, malformed, rejected, files_read = read_day(landing_root, contract, day.isoformat(), run_id)
        inputs.append(DayInput(day, status, malformed, rejected, files_read, len(rows)))
        if len(rows):
            frames.append(rows.assign(_partition_date=pd.Timestamp(day)))
        if len(malformed):
            bad.append(malformed.assign(_partition_date=pd.Timestamp(day)))
        del rows
    yield inputs
    rows = pd.concat(frames, ignore_index=True) if frames else _empty_rows(contract)
    frames.clear()
    yield rows, lookups, (pd.concat(bad, ignore_index=True) if bad else None)


class _Outputs:
    """A batch's routed pieces as they come: per-day counts and reasons, and the clean and
    quarantined rows, held in memory (one piece) or spooled to temporary tables (a day routed
    in chunks), for one `replace_rows`."""

    def __init__(self, con, contract: FeedContract, *, spool: bool) -> None:
        self.columns = staging_columns(contract)
        self.spools = (
            (wh.Spool(con, self.columns, LINE_ORDER), wh.Spool(con, QUARANTINE_COLUMNS, LINE_ORDER)) if spool else None
        )
        self.kept: tuple[list[pd.DataFrame], list[pd.DataFrame]] = ([], [])
        self.counts = {"clean": Counter(), "quarantined": Counter(), "deduplicated": Counter()}
        self.reasons: dict[dt.date, Counter] = defaultdict(Counter)

    def add(self, clean: pd.DataFrame, quarantine: pd.DataFrame, deduplicated_by_day: dict, run_id: str) -> None:
        q = quarantine.rename(columns={"_raw": "raw_payload"}).assign(run_id=run_id)
        for name, frame in (("clean", clean), ("quarantined", q)):
            self.counts[name].update({d.date(): int(n) for d, n in frame["_partition_date"].value_counts().items()})
        self.counts["deduplicated"].update({pd.Timestamp(d).date(): int(n) for d, n in deduplicated_by_day.items()})
        for (d, code), n in q.groupby([q["_partition_date"].dt.date, "reason_code"]).size().items():
            self.reasons[d][str(code)] += int(n)
        frames = (clean[[c.name for c in self.columns]], q[[c.name for c in QUARANTINE_COLUMNS]])
        for i, frame in enumerate(frames):
            if self.spools:
                self.spools[i].append(frame)
            else:
                self.kept[i].append(frame)

    def result(self, feed: str, i: DayInput) -> DayResult:
        return DayResult(
            feed=feed,
            day=i.day,
            status=i.status,
            files_read=i.files_read,
            rejected=i.rejected,
            rows_read=i.n_rows + len(i.malformed),
            clean=self.counts["clean"][i.day],
            quarantined=self.counts["quarantined"][i.day],
            deduplicated=self.counts["deduplicated"][i.day],
            reasons=dict(sorted(self.reasons[i.day].items())),
        )

    def no_rows(self) -> pd.DataFrame:
        return pd.DataFrame(columns=[c.name for c in self.columns])

    def tables(self) -> tuple[pd.DataFrame | ibis.Table, pd.DataFrame | ibis.Table]:
        """(clean rows, quarantined rows) for `Replace.frame`, in `LINE_ORDER`."""
        if self.spools:
            return self.spools[0].rows(), self.spools[1].rows()
        return tuple(f[0] if len(f) == 1 else pd.concat(f, ignore_index=True) for f in self.kept)

    def close(self) -> None:
        for spool in self.spools or ():
            spool.close()


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
    max_rows: int | None = None,
    on_clean: Callable[[pd.DataFrame], None] | None = None,
) -> tuple[list[DayResult], pd.DataFrame]:
    """Route consecutive days of one feed together and replace their partitions in
    one transaction. Returns per-day results and the clean rows (for the GX suite); give
    `on_clean` to have them piece by piece instead (a day routed in chunks returns none).

    A single day that declares more than `max_rows` rows (a first load of a whole customer
    base, say) is routed in key chunks of about `max_rows` (`can_chunk`, `chunk_of`), its
    rows spilled to Parquet and its output to temporary tables, so memory is bounded by the
    chunk, not the day. The rows are the same as routing the day whole, in the same order."""
    landing_root = Path(landing_root)
    lookups = make_lookups(con, contract, days[0])
    declared = landing.declared_rows(landing_root, contract.name, days[0].isoformat()) if len(days) == 1 else 0
    parts = -(-declared // max_rows) if max_rows and declared > max_rows else 1
    if parts > 1 and not (can_chunk(contract) and wh.can_spool(con)):
        parts = 1
    if parts > 1:
        log.info("%s %s: %d declared rows, routed in %d key chunks", contract.name, days[0], declared, parts)
        pieces = _day_in_chunks(landing_root, contract, days[0], parts, ctx, run_id, lookups)
    else:
        pieces = _batch_whole(landing_root, contract, days, run_id, lookups)
    inputs: list[DayInput] = next(pieces)

    out = _Outputs(con, contract, spool=parts > 1)
    try:
        for rows, lk, bad in pieces:
            routed: Routed = route(rows, contract, ctx, lk, bad)
            del rows
            clean = routed.clean
            if contract.name == "surveys":
                clean = flag_survey_quality(
                    clean,
                    contract,
                    speeder_seconds=speeder_seconds,
                    attention_answer=attention_answer,
                    prior_respondents=lk.prior_respondents,
                )
            if on_clean is not None and len(clean):
                on_clean(clean)
            out.add(clean, routed.quarantine, routed.deduplicated_by_day, run_id)
            del clean, routed
        results = [out.result(contract.name, i) for i in inputs]
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
        staged, quarantined = out.tables()
        part = {"_partition_date": list(days)}
        wh.replace_rows(
            con,
            [
                Replace(staging_table(contract.name), out.columns, staged, part),
                Replace(quarantine_table(contract.name), QUARANTINE_COLUMNS, quarantined, part),
                Replace(LOG_TABLE, LOG_COLUMNS, log_rows, {"feed": contract.name, **part}),
                Replace(REJECTED_TABLE, REJECTED_COLUMNS, rej, {"feed": contract.name, **part}),
            ],
        )
    finally:
        pieces.close()
        out.close()
    return results, (staged if on_clean is None and isinstance(staged, pd.DataFrame) else out.no_rows())


def ingest_day(con, contract: FeedContract, day: dt.date, **kw) -> tuple[DayResult, pd.DataFrame]:
    """One day of one feed (a nightly run, or a test)."""
    results, clean = ingest_batch(con, contract, [day], **kw)
    return results[0], clean

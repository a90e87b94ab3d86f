"""The row router: every row read ends clean, quarantined (with a reason) or
deduplicated (counted). Nothing else can happen to it.

Rules run in a fixed precedence and a row takes the first reason that applies,
so a row's reason never depends on row order or on which other rows share the
file. Each step is vectorised over a whole batch of days (pandas): per-day
pandas calls cost more than the work on a small day, and a backfill has hundreds.

Precedence: MALFORMED_ROW > MISSING_REQUIRED > CAST_ERROR / NAIVE_TIMESTAMP /
NONEXISTENT_LOCAL_TIME > domain (allowed set, range: INVALID_VALUE,
UNKNOWN_CURRENCY, NON_POSITIVE_AMOUNT, LIKERT_OUT_OF_RANGE) > FUTURE_DATE /
DATE_OUT_OF_RANGE > same-day duplicates (exact → deduplicated; same key,
different content → DUPLICATE_CONFLICT for every version) > ORPHAN_RETURN >
UNKNOWN_CUSTOMER > earlier days (the same row again → deduplicated; an event
key loaded earlier with other content → DUPLICATE_CONFLICT). References come
before the earlier-day comparison so that the version a key is compared with is
always one that was actually loaded.

The router is pure: what it needs from partitions before the batch (known
customers, earlier versions of a key, known orders, earlier respondents) comes
in through `Lookups`, so tests can drive it without a warehouse.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from quality import reasons
from quality.contracts import Column, FeedContract
from quality.pii import mask

LINEAGE = ["_source_file", "_source_line", "_raw"]

_INT = re.compile(r"^[+-]?\d+$")
_MONEY = re.compile(r"^[+-]?\d+(\.\d{1,2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_TRUE = {"true", "t", "yes", "y", "1", "是"}
_FALSE = {"false", "f", "no", "n", "0", "否"}


@dataclass(frozen=True)
class RouteContext:
    business_timezone: str = "Asia/Shanghai"
    min_valid_date: dt.date = dt.date(2000, 1, 1)
    #: time zone for offset-less timestamps; None means they are NAIVE_TIMESTAMP.
    source_timezone: str | None = None


def _nothing_known(frame: pd.DataFrame) -> pd.Series:
    return pd.Series(False, index=frame.index)


def _no_prior(keys: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"_key": pd.Series([], dtype="str"), "_row_hash": pd.Series([], dtype="int64")})


@dataclass
class Lookups:
    """What the router may know about partitions loaded *before* this batch.

    A batch is a run of consecutive days; the router resolves references between
    days inside the batch itself, and asks these only about earlier partitions:

    - known_customers(frame[customer_ref, _partition_date]) -> bool per row: the
      customer is in staging.customers on or before the row's day;
    - prior_versions(keys) -> (_key, _row_hash) of earlier partitions (mutable
      feeds: only each key's newest version);
    - known_orders(ids) -> order_id of completed orders loaded earlier;
    - prior_respondents(frame[customer_ref, survey_id, wave]) -> bool per row.
    """

    known_customers: Callable[[pd.DataFrame], pd.Series] = _nothing_known
    prior_versions: Callable[[pd.Series], pd.DataFrame] = _no_prior
    known_orders: Callable[[pd.Series], pd.Series] = _nothing_known
    prior_respondents: Callable[[pd.DataFrame], pd.Series] = _nothing_known


@dataclass
class Routed:
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    deduplicated: int
    rows_read: int
    deduplicated_by_day: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "rows_read": self.rows_read,
            "clean": len(self.clean),
            "quarantined": len(self.quarantine),
            "deduplicated": self.deduplicated,
        }


class _Verdicts:
    """First reason wins: each row's reason is set once."""

    def __init__(self, index: pd.Index) -> None:
        self.code = pd.Series(pd.NA, index=index, dtype="object")
        self.detail = pd.Series(pd.NA, index=index, dtype="object")

    @property
    def open(self) -> pd.Series:
        return self.code.isna()

    def mark(self, mask: pd.Series, code: str, detail: str | Callable[[pd.Series], pd.Series]) -> None:
        """Give `code` to the rows in `mask` that have no reason yet. `detail` is one text,
        or a function of those rows' mask returning their texts: evidence is only worth
        formatting for the few rows that get the reason, not for the whole batch."""
        hit = mask.fillna(False).astype(bool) & self.open
        if not hit.any():
            return
        self.code[hit] = code
        self.detail[hit] = detail if isinstance(detail, str) else detail(hit)


def _nfkc(s: pd.Series) -> pd.Series:
    """Unicode NFKC of the non-ASCII values (ASCII text is NFKC already), through Python's
    unicodedata: most ids and numbers are ASCII, and this keeps the Unicode version that
    made the stored row hashes."""
    wide = ~s.str.isascii() & s.notna()
    if not wide.any():
        return s
    s = s.copy()
    s[wide] = s[wide].str.normalize("NFKC")
    return s


def text_isin(values: pd.Series, candidates: pd.Series) -> pd.Series:
    """`values.isin(candidates)` for text, by pyarrow: pandas 3's isin on arrow strings makes a
    Python object of every value (about a second per 300k keys, every batch of a rerun)."""
    found = pc.is_in(
        pa.array(values.astype("str"), pa.string()), value_set=pa.array(candidates.astype("str"), pa.string())
    )
    return pd.Series(pc.fill_null(found, False).to_numpy(zero_copy_only=False), index=values.index, dtype=bool)


def normalise_column(s: pd.Series, c: Column) -> pd.Series:
    """One column as the router reads it: NFKC for ids, codes, numbers and dates (full-width
    '１２' → '12'); trim; lower-case where the contract says; ''→NA."""
    s = s.astype("str")
    if c.normalise:
        s = _nfkc(s)
    s = s.str.strip()
    if c.lower:
        s = s.str.lower()
    return s.mask(s == "")


def normalise(frame: pd.DataFrame, contract: FeedContract) -> pd.DataFrame:
    """Every contract column through `normalise_column`."""
    out = frame.copy()
    for c in contract.columns:
        out[c.name] = normalise_column(out[c.name], c)
    return out


def _cast_timestamp(s: pd.Series, ctx: RouteContext) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(UTC timestamps, naive mask, nonexistent-local mask); unparsable -> NaT."""
    present = s.notna()
    has_offset = s.str.contains(_OFFSET, na=False) & s.str.contains(r"\d[T ]\d", na=False)
    result = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    with_off = present & has_offset
    if with_off.any():
        result[with_off] = pd.to_datetime(s[with_off], format="ISO8601", utc=True, errors="coerce")
    naive = present & ~has_offset
    gap = pd.Series(False, index=s.index)
    if naive.any() and ctx.source_timezone:
        local = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
        parsed = local.notna()
        localized = local.dt.tz_localize(ctx.source_timezone, nonexistent="NaT", ambiguous="NaT")
        gap[naive] = parsed & localized.isna()
        result[naive] = localized.dt.tz_convert("UTC")
        naive = pd.Series(False, index=s.index)
    return result, naive, gap


def _shown(prefix: str, c: Column, s: pd.Series) -> Callable[[pd.Series], pd.Series]:
    """A `mark` detail: `prefix` and the column's value as quarantine evidence, a personal-data
    column's masked (quality/pii.py), since reason_detail is read by people who may not see
    raw personal data."""

    def detail(rows: pd.Series) -> pd.Series:
        v = s[rows]
        text = v.astype("str").where(v.notna(), "")
        return prefix + (text.map(lambda v: mask(v) if v else v) if c.pii else text)

    return detail


def cast(frame: pd.DataFrame, contract: FeedContract, ctx: RouteContext, verdicts: _Verdicts) -> pd.DataFrame:
    """Typed values per contract; failures marked (missing first, then cast errors)."""
    for c in contract.columns:
        if c.required:
            verdicts.mark(frame[c.name].isna(), reasons.MISSING_REQUIRED, f"{c.name} is empty")
    typed = pd.DataFrame(index=frame.index)
    for c in contract.columns:
        s = frame[c.name]
        present = s.notna()
        bad = pd.Series(False, index=s.index)
        if c.type in ("id", "text", "enum"):
            typed[c.name] = s
        elif c.type == "int":
            ok = s.str.fullmatch(_INT, na=False)
            bad = present & ~ok
            typed[c.name] = pd.to_numeric(s.where(ok), errors="coerce").astype("Int64")
        elif c.type == "money":
            ok = s.str.fullmatch(_MONEY, na=False)
            bad = present & ~ok
            # kept as canonical text: the warehouse casts it to DECIMAL exactly
            typed[c.name] = s.where(ok)
        elif c.type == "float":
            num = pd.to_numeric(s, errors="coerce")
            bad = present & num.isna()
            typed[c.name] = num
        elif c.type == "date":
            ok = s.str.fullmatch(_DATE, na=False)
            d = pd.to_datetime(s.where(ok), format="%Y-%m-%d", errors="coerce")
            bad = present & d.isna()
            typed[c.name] = d
        elif c.type == "timestamp":
            ts, naive, gap = _cast_timestamp(s, ctx)
            verdicts.mark(naive, reasons.NAIVE_TIMESTAMP, _shown(f"{c.name} has no UTC offset: ", c, s))
            verdicts.mark(
                gap,
                reasons.NONEXISTENT_LOCAL_TIME,
                _shown(f"{c.name} does not exist in {ctx.source_timezone}: ", c, s),
            )
            bad = present & ts.isna()
            typed[c.name] = ts
        elif c.type == "bool":
            low = s.str.lower()
            bad = present & ~low.isin(_TRUE | _FALSE)
            typed[c.name] = low.map(lambda v: True if v in _TRUE else (False if v in _FALSE else pd.NA))
        verdicts.mark(bad, reasons.CAST_ERROR, _shown(f"{c.name} is not a valid {c.type}: ", c, s))
    return typed


def _numeric(typed: pd.Series, c: Column) -> pd.Series:
    return pd.to_numeric(typed, errors="coerce") if c.type == "money" else typed


def _range_text(c: Column) -> str:
    if c.min is not None and c.max is not None:
        return f"[{c.min:g}, {c.max:g}]"
    return f">= {c.min:g}" if c.min is not None else f"<= {c.max:g}"


def check_domain(typed: pd.DataFrame, contract: FeedContract, verdicts: _Verdicts) -> None:
    for c in contract.columns:
        s = typed[c.name]
        if c.allowed is not None:
            bad = s.notna() & ~s.isin(c.allowed)
            verdicts.mark(bad, c.domain_reason, _shown(f"{c.name} not in {list(c.allowed)}: ", c, s))
        if c.min is not None or c.max is not None:
            num = _numeric(s, c)
            bad = pd.Series(False, index=s.index)
            if c.min is not None:
                bad |= (num < c.min).fillna(False)
            if c.max is not None:
                bad |= (num > c.max).fillna(False)
            verdicts.mark(bad, c.domain_reason, _shown(f"{c.name} outside {_range_text(c)}: ", c, s))


def business_dates(typed: pd.DataFrame, column: Column, ctx: RouteContext) -> pd.Series:
    """Calendar day in the business time zone, as a naive datetime64 at midnight."""
    s = typed[column.name]
    if column.type == "timestamp":
        return s.dt.tz_convert(ctx.business_timezone).dt.tz_localize(None).dt.normalize()
    return s


def _dated(prefix: str, d: pd.Series) -> Callable[[pd.Series], pd.Series]:
    """A `mark` detail: `prefix` and the row's date."""
    return lambda rows: prefix + d[rows].dt.strftime("%Y-%m-%d")


def check_dates(
    typed: pd.DataFrame, partition: pd.Series, contract: FeedContract, ctx: RouteContext, verdicts: _Verdicts
) -> pd.Series:
    """FUTURE_DATE (after the row's partition day) / DATE_OUT_OF_RANGE; returns the
    row's business date (datetime64, midnight)."""
    bdate = business_dates(typed, contract.column(contract.event_column), ctx)
    floor = pd.Timestamp(ctx.min_valid_date)
    for name in (contract.event_column, *contract.checked_dates, *contract.range_only_dates):
        d = bdate if name == contract.event_column else business_dates(typed, contract.column(name), ctx)
        if name not in contract.range_only_dates:
            verdicts.mark(
                d > partition,
                reasons.FUTURE_DATE,
                _dated(f"{name} after the partition's business day: ", d),
            )
        verdicts.mark(d < floor, reasons.DATE_OUT_OF_RANGE, _dated(f"{name} before {ctx.min_valid_date}: ", d))
    return bdate


def _each_distinct(key: pd.Series, text: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Elementwise `text` (a function of a row mask) computed only for the first row of each
    distinct `key` and copied to the others; '' where `key` is missing."""
    codes, _ = pd.factorize(key)  # in order of first appearance; missing = -1
    first = text(~key.duplicated() & key.notna()).to_numpy()
    return pd.Series(np.append(first, "")[codes], index=key.index, dtype="str")  # -1 takes the ''


def _canonical_text(c: Column, s: pd.Series) -> pd.Series:
    """A column's typed values in the text form the stored hashes were made from."""
    if c.type == "timestamp":
        return _each_distinct(s, lambda rows: s[rows].dt.strftime("%Y-%m-%dT%H:%M:%S.%f"))
    if c.type == "date":
        return _each_distinct(s, lambda rows: s[rows].dt.strftime("%Y-%m-%d"))
    if c.type == "money":
        # parsed as one column, then per distinct text (equal text, equal number)
        num = pd.to_numeric(s, errors="coerce")
        return _each_distinct(s, lambda rows: num[rows].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"))
    return s.astype("str").fillna("").where(s.notna(), "")


def canonical_hash(typed: pd.DataFrame, contract: FeedContract) -> pd.Series:
    """A content hash of the contract columns in canonical form (int64).

    Deterministic across processes (pandas' fixed hash key), so a row's hash can be
    stored and compared with the same row delivered again months later.
    """
    canon = pd.DataFrame({c.name: _canonical_text(c, typed[c.name]) for c in contract.columns}, index=typed.index)
    return pd.util.hash_pandas_object(canon, index=False).astype("int64")


def key_of(frame: pd.DataFrame, contract: FeedContract) -> pd.Series:
    parts = [frame[k].astype("str").fillna("") for k in contract.key]
    out = parts[0]
    for p in parts[1:]:
        out = out + "\x1f" + p
    return out


def route(
    raw: pd.DataFrame,
    contract: FeedContract,
    ctx: RouteContext,
    lookups: Lookups | None = None,
    malformed: pd.DataFrame | None = None,
) -> Routed:
    """Route a batch of consecutive partitions (one day, or a backfill chunk).

    `raw` holds the contract columns as strings plus `_partition_date` and lineage
    (`_source_file`, `_source_line`, `_raw`), ordered by day, file and line;
    `malformed` holds lines the reader could not split (`_partition_date`,
    `_source_file`, `_source_line`, `_raw`, `detail`).

    A row's fate depends only on its own day and earlier days, never on later ones,
    so routing a range in one batch gives exactly what routing its days one by one
    would: days inside the batch see each other here, days before it come from
    `lookups`.
    """
    lookups = lookups or Lookups()
    raw = raw.reset_index(drop=True)
    partition = pd.to_datetime(raw["_partition_date"])
    typed, verdicts, dedup = _screen(raw, partition, contract, ctx)
    shown_key = _key_shown(typed)

    # 2. References to other feeds and earlier orders.
    _check_returns(typed, verdicts, dedup, lookups)
    if contract.customer_column:
        ref = typed[contract.customer_column]
        ask = verdicts.open & ~dedup & ref.notna()
        if ask.any():
            known = lookups.known_customers(pd.DataFrame({"customer_ref": ref[ask], "_partition_date": partition[ask]}))
            hit = pd.Series(True, index=typed.index)
            hit[ask] = known.to_numpy()
            verdicts.mark(
                ~hit,
                reasons.UNKNOWN_CUSTOMER,
                lambda rows: "customer not in staging.customers: " + ref[rows].astype("str"),
            )

    # 3. Against earlier days: the same row again is a re-delivery (counted); for
    #    immutable events another version of a loaded key is a conflict.
    _check_earlier_days(typed, contract, verdicts, dedup, lookups, shown_key)

    dedup &= verdicts.open
    clean_mask = verdicts.open & ~dedup
    clean = pd.concat([typed.loc[clean_mask].drop(columns=["_key"]), raw.loc[clean_mask, LINEAGE[:2]]], axis=1)

    q = raw.loc[~verdicts.open, ["_partition_date", *LINEAGE]].copy()
    q["reason_code"] = verdicts.code[~verdicts.open]
    q["reason_detail"] = verdicts.detail[~verdicts.open]
    if malformed is not None and len(malformed):
        m = malformed[["_partition_date", *LINEAGE]].copy()
        m["reason_code"] = reasons.MALFORMED_ROW
        m["reason_detail"] = malformed["detail"].to_numpy()
        q = pd.concat([m, q], ignore_index=True)
    q["_partition_date"] = pd.to_datetime(q["_partition_date"])
    q["reprocessable"] = q["reason_code"].isin(reasons.REPROCESSABLE)
    q = q.sort_values(["_partition_date", "_source_file", "_source_line"], kind="stable").reset_index(drop=True)
    dedup_days = typed.loc[dedup, "_partition_date"]
    return Routed(
        clean=clean.reset_index(drop=True),
        quarantine=q,
        deduplicated=int(dedup.sum()),
        rows_read=len(raw) + (0 if malformed is None else len(malformed)),
        deduplicated_by_day=dedup_days.value_counts().to_dict(),
    )


def _key_shown(typed: pd.DataFrame) -> Callable[[pd.Series], pd.Series]:
    """A `mark` detail: the rows' key as evidence, parts joined by '/'."""
    return lambda rows: typed.loc[rows, "_key"].str.replace("\x1f", "/")


def _screen(
    raw: pd.DataFrame, partition: pd.Series, contract: FeedContract, ctx: RouteContext
) -> tuple[pd.DataFrame, _Verdicts, pd.Series]:
    """The checks that look at a row alone or at the other versions of its key on its day:
    (typed rows with `_key` and `_row_hash`, verdicts so far, exact same-day copies)."""
    verdicts = _Verdicts(raw.index)
    norm = normalise(raw, contract)
    typed = cast(norm, contract, ctx, verdicts)
    check_domain(typed, contract, verdicts)
    typed["business_date"] = check_dates(typed, partition, contract, ctx, verdicts)
    typed["_partition_date"] = partition
    typed["_key"] = key_of(typed, contract)
    typed["_row_hash"] = canonical_hash(typed, contract)

    # 1. Within a day: exact copies are counted once; several versions of a key conflict.
    valid = verdicts.open
    dedup = pd.Series(False, index=typed.index)
    vt = typed.loc[valid, ["_partition_date", "_key", "_row_hash"]]
    dedup[vt.index] = vt.duplicated(keep="first")
    st = typed.loc[valid & ~dedup, ["_partition_date", "_key"]]
    versions = st.groupby(["_partition_date", "_key"])["_key"].transform("size")
    conflict = pd.Series(False, index=typed.index)
    conflict[st.index] = versions > 1
    verdicts.mark(
        conflict,
        reasons.DUPLICATE_CONFLICT,
        lambda rows: "same key, different content on the same day: " + _key_shown(typed)(rows),
    )
    return typed, verdicts, dedup


def _completed(typed: pd.DataFrame, verdicts: _Verdicts) -> pd.DataFrame:
    """Completed order lines an in-batch return may refer to: still open after `_screen`
    (copies, and rows later held back for references or earlier days, count)."""
    return typed.loc[verdicts.open & (typed["status"] == "completed")]


def completed_orders(raw: pd.DataFrame, contract: FeedContract, ctx: RouteContext) -> pd.Series:
    """Order ids that `route` would count as completed in-batch originals for these rows.

    A day routed in key-partitioned chunks (quality/ingest.py) asks this first about the
    orders the day's returns name, so a return finds its original in another chunk. Exact:
    a row's `_screen` verdict depends on its own key's rows only, and all lines of an order
    share its id."""
    raw = raw.reset_index(drop=True)
    typed, verdicts, _ = _screen(raw, pd.to_datetime(raw["_partition_date"]), contract, ctx)
    return _completed(typed, verdicts)["order_id"].drop_duplicates().reset_index(drop=True)


def _check_returns(typed: pd.DataFrame, verdicts: _Verdicts, dedup: pd.Series, lookups: Lookups) -> None:
    """ORPHAN_RETURN: the original must be a completed order loaded on or before the
    return's day (earlier batch days and the same day count)."""
    if "original_order_id" not in typed:
        return
    is_return = verdicts.open & ~dedup & (typed["status"] == "returned")
    if not is_return.any():
        return
    orig = typed["original_order_id"]
    completed = _completed(typed, verdicts)
    first_day = completed.groupby("order_id")["_partition_date"].min()
    returns = orig[is_return]
    batch_day = pd.Series(first_day.reindex(returns).to_numpy(), index=returns.index)
    in_batch = (batch_day <= typed.loc[is_return, "_partition_date"]).reindex(typed.index, fill_value=False)
    ask = is_return & orig.notna() & ~in_batch
    known = pd.Series(False, index=typed.index)
    if ask.any():
        known[ask] = lookups.known_orders(orig[ask]).to_numpy()
    verdicts.mark(
        is_return & ~(in_batch | known),
        reasons.ORPHAN_RETURN,
        lambda rows: "original order not found: " + orig[rows].astype("str"),
    )


def _check_earlier_days(
    typed: pd.DataFrame,
    contract: FeedContract,
    verdicts: _Verdicts,
    dedup: pd.Series,
    lookups: Lookups,
    shown_key: Callable[[pd.Series], pd.Series],
) -> None:
    live = typed.loc[verdicts.open & ~dedup, ["_partition_date", "_key", "_row_hash"]]
    if live.empty:
        return
    prior = lookups.prior_versions(live["_key"].drop_duplicates())
    if contract.immutable:
        # The version that stands is the one loaded first: from before the batch if
        # any, else the earliest day in the batch. Later days: equal → re-delivery,
        # different → conflict.
        stand = live.sort_values("_partition_date", kind="stable").drop_duplicates("_key", keep="first")
        standing = pd.concat(
            [
                prior[["_key", "_row_hash"]].assign(_from_before=True),
                stand[["_key", "_row_hash"]].assign(_from_before=False).set_axis(stand.index),
            ]
        ).drop_duplicates("_key", keep="first")
        first_idx = stand.index[~text_isin(stand["_key"], prior["_key"])]
        merged = (
            live.reset_index()
            .merge(standing.rename(columns={"_row_hash": "_standing"}), on="_key", how="left")
            .set_index("index")
        )
        later = ~merged.index.isin(first_idx)
        same = later & (merged["_row_hash"] == merged["_standing"]).to_numpy()
        differs = later & ~same
        dedup[merged.index[same]] = True
        m = pd.Series(False, index=typed.index)
        m[merged.index[differs]] = True
        verdicts.mark(
            m,
            reasons.DUPLICATE_CONFLICT,
            lambda rows: "an earlier day loaded this key with other content: " + shown_key(rows),
        )
        return
    # Mutable: a restatement equal to the key's newest earlier version is a re-delivery.
    ordered = live.sort_values(["_key", "_partition_date"], kind="stable")
    ordered["_row_hash"] = ordered["_row_hash"].astype("Int64")  # nullable: hashes must not pass through float
    previous = ordered.groupby("_key")["_row_hash"].shift(1)
    newest = prior.drop_duplicates("_key").set_index("_key")["_row_hash"].astype("Int64")
    previous = previous.fillna(ordered["_key"].map(newest).astype("Int64"))
    dedup[ordered.index[(ordered["_row_hash"] == previous).fillna(False).to_numpy(dtype=bool)]] = True


def flag_survey_quality(
    clean: pd.DataFrame,
    contract: FeedContract,
    *,
    speeder_seconds: int,
    attention_answer: int,
    prior_respondents: Callable[[pd.DataFrame], pd.Series],
) -> pd.DataFrame:
    """Flag, never delete: speeders, straight-liners, failed attention checks and
    repeat respondents (same customer, survey and wave answered before: on an
    earlier day, or earlier the same day by start time then response id)."""
    out = clean.copy()
    out["is_speeder"] = (out["duration_s"] < speeder_seconds).fillna(False).astype(bool)
    grid = out[list(contract.grid_columns)]
    same = grid.eq(grid.iloc[:, 0], axis=0).all(axis=1).astype(bool)  # not nunique(axis=1): a Python call per row
    out["is_straightliner"] = same & grid.notna().all(axis=1)
    att = out["attention_check"]
    out["failed_attention"] = (att.notna() & (att != attention_answer)).fillna(False).astype(bool)
    ident = out["customer_ref"].notna()
    who = ["customer_ref", "survey_id", "wave"]
    ranked = out.sort_values(["_partition_date", "started_at", "response_id"], kind="stable")
    dup = pd.Series(False, index=out.index)
    dup[ranked.index] = (ranked["customer_ref"].notna() & ranked.duplicated(who, keep="first")).to_numpy()
    if ident.any():
        dup[ident] = dup[ident].to_numpy() | prior_respondents(out.loc[ident, who]).to_numpy()
    out["is_duplicate_respondent"] = dup.astype(bool)
    return out

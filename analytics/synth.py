"""Demo data for the CRM pipeline: a landing zone full of realistic feed files whose
generating process is known, so that every model downstream can be checked against
the truth it should recover.

What is planted (all of it in `DemoParams`, written out to ``ground_truth.json``):

- persons (individuals, enterprises, government bodies, partners), each delivered as
  1-3 customer records from different source systems with differently formatted phones,
  differently cased e-mails and a shared tax id: identity resolution has a known answer;
- purchases from a BG/NBD process (rates lambda ~ Gamma(r, alpha), dropout p ~ Beta(a, b),
  time in days) and order values from Gamma-Gamma (nu ~ Gamma(q, gamma), z ~ Gamma(p, nu));
- payments driven by a latent credit grade; satisfaction surveys from an ACSI structural
  model with planted path coefficients, Kano categories and importance/performance means,
  plus speeders, straight-liners, duplicate respondents and attention-check failures;
- service interactions whose complaint rate falls with the person's satisfaction;
- leads (prospects) at a rate proportional to the population, with planted money / authority
  / need evidence (the MAN rule; counts per combination in the ground truth), a share
  restated on a later day when a missing condition appears, and a share that are persons
  who became customers soon after, carrying those customer records' phone and e-mail.
  Leads come from a random stream of their own, so the other feeds do not depend on them.

With ``defects > 0`` bad inputs are planted as *extra* rows and files (the clean process
stays complete) and each one is listed in ``defects.json`` with the reason code the
router must give it.

The hot path is vectorised: every column is a small lookup table of byte strings (the
separator baked in) and a per-row index, and rows are laid out in a byte buffer by one
gather and one scatter per table, a chunk of whole days at a time, while a writer
thread per feed writes the previous chunks' files. Python loops run per day, per wave,
per table or per planted defect, never per row of the clean data.

The landing files are CSV (the default) or, with ``fmt="parquet"``, Parquet: the same
tables cut at their separators become Arrow string columns (dictionary-encoded where a
column has few values), one table per chunk of days, sliced into one file per day. Planted
problems that only a text file can have (malformed lines, other encodings, undecodable
bytes, a wrong delimiter) are not planted in Parquet.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import math
import multiprocessing
import os
import shutil
import statistics
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from analytics import _names as names
from analytics.satisfaction.measures import (  # one table and one set of areas for planting and scoring
    KANO_CATEGORIES,
    KANO_TABLE,
    ipa_area,
)
from quality import reasons
from quality.contracts import (
    CONTACT_ROLES,
    CREDIT_RATINGS,
    FEEDS,
    LEAD_SOURCES,
    NEED_LEVELS,
    SERVICE_ATTRIBUTES,
    FeedContract,
)
from quality.landing import ManifestEntry, write_manifest

__all__ = ["DemoParams", "generate"]

TIME_ZONE = "Asia/Shanghai"
UTC_OFFSET = "+08:00"
KINDS: tuple[str, ...] = ("individual", "enterprise", "government", "partner")
SYSTEMS: tuple[str, ...] = ("crm", "web", "store", "erp")
SYSTEM_PREFIX: dict[str, str] = {"crm": "CRM", "web": "WEB", "store": "STO", "erp": "ERP"}
ORDER_CHANNELS: tuple[str, ...] = ("store", "web", "app", "phone", "sales_rep")
CONTACT_CHANNELS: tuple[str, ...] = ("phone", "email", "web", "app", "store", "wechat")
INTERACTION_TYPES: tuple[str, ...] = ("complaint", "praise", "suggestion", "campaign_response")
ACQUISITION_CHANNELS: tuple[str, ...] = (
    "organic",
    "search",
    "social",
    "referral",
    "trade_show",
    "direct_sales",
    "partner",
)
GRADES: tuple[str, ...] = ("A", "B", "C", "D")
LATENTS: tuple[str, ...] = ("CE", "PQ", "PV", "SAT", "COMPLAINT", "LOYALTY")
#: survey item -> latent variable it measures
ITEM_LATENT: dict[str, str] = {
    "exp_1": "CE",
    "exp_2": "CE",
    "exp_3": "CE",
    "qual_1": "PQ",
    "qual_2": "PQ",
    "qual_3": "PQ",
    "value_1": "PV",
    "value_2": "PV",
    "sat_1": "SAT",
    "sat_2": "SAT",
    "sat_3": "SAT",
    "complaint": "COMPLAINT",
    "repurchase": "LOYALTY",
    "price_tolerance": "LOYALTY",
    "recommend": "LOYALTY",
}
SECONDS_PER_DAY = 86_400
ID_DIGITS = 10


def _param(default: Any, doc: str) -> Any:
    return field(default=default, metadata={"doc": doc})


def _param_f(factory: Callable[[], Any], doc: str) -> Any:
    return field(default_factory=factory, metadata={"doc": doc})


@dataclass(frozen=True)
class DemoParams:
    """Every planted parameter of the demo process, with its default.

    Shares are probabilities; times are in days unless the name says otherwise; money
    is CNY. The docs of the fields are written to ``ground_truth.json``.
    """

    # -- population and customer records ------------------------------------------------
    kind_shares: Mapping[str, float] = _param_f(
        lambda: {"individual": 0.80, "enterprise": 0.12, "government": 0.03, "partner": 0.05},
        "Share of persons by customer kind.",
    )
    initial_share: float = _param(
        0.30, "Share of persons already customers at the start: born (first purchase) on the first day."
    )
    records_per_person: tuple[float, ...] = _param(
        (0.60, 0.30, 0.10), "Probability that a person has 1, 2 or 3 customer records (source systems)."
    )
    phone_missing: float = _param(0.08, "Share of customer records without a phone number.")
    email_missing: float = _param(0.15, "Share of customer records without an e-mail address.")
    tax_id_missing: float = _param(0.10, "Share of web/store records of organisations without the tax id.")
    acquisition_cost_median: Mapping[str, float] = _param_f(
        lambda: {
            "organic": 0.0,
            "search": 30.0,
            "social": 25.0,
            "referral": 15.0,
            "trade_show": 150.0,
            "direct_sales": 300.0,
            "partner": 80.0,
        },
        "Median acquisition cost (CNY, lognormal sigma 0.6) per acquisition channel: small against a "
        "customer's margin, so the business is profitable overall and only some customers lose money.",
    )
    # -- purchases: BG/NBD ------------------------------------------------------------------
    r: float = _param(0.8, "BG/NBD: shape of the Gamma distribution of purchase rates lambda (per day).")
    alpha: float = _param(60.0, "BG/NBD: scale (days) of the Gamma distribution of lambda: lambda ~ Gamma(r, 1/alpha).")
    a: float = _param(0.8, "BG/NBD: first shape of the Beta distribution of the dropout probability p.")
    b: float = _param(3.0, "BG/NBD: second shape of the Beta distribution of the dropout probability p.")
    loyalty_dropout_corr: float = _param(
        0.3,
        "Rank correlation between a person's latent disloyalty (-LOYALTY) and dropout p; the marginal "
        "of p stays exactly Beta(a, b).",
    )
    # -- spend: Gamma-Gamma ------------------------------------------------------------------
    gg_p: float = _param(6.0, "Gamma-Gamma: shape p of the order value z ~ Gamma(p, rate nu).")
    gg_q: float = _param(4.0, "Gamma-Gamma: shape q of nu ~ Gamma(q, rate gamma).")
    gg_gamma: float = _param(150.0, "Gamma-Gamma: rate gamma of nu; mean order value = p*gamma/(q-1) CNY.")
    lines_per_order: tuple[float, ...] = _param(
        (0.50, 0.25, 0.15, 0.10), "Probability of 1..4 lines per order (fewer when the order is small)."
    )
    quantity: tuple[float, ...] = _param((0.70, 0.22, 0.08), "Probability of quantity 1..3 on a line.")
    discount_rates: tuple[tuple[float, float], ...] = _param(
        ((0.0, 0.55), (0.05, 0.15), (0.10, 0.15), (0.20, 0.10), (0.30, 0.05)),
        "(discount rate, probability) of a line's promotional discount.",
    )
    cancel_share: float = _param(0.02, "Share of orders cancelled (all lines status 'cancelled', no invoice).")
    return_share: float = _param(0.03, "Share of completed lines returned later (a separate 'RT' order row).")
    return_delay_days: tuple[float, float] = _param((1.0, 14.0), "Uniform delay of a return after the order.")
    channel_weights: Mapping[str, tuple[float, ...]] = _param_f(
        lambda: {"individual": (0.35, 0.30, 0.28, 0.07, 0.0), "organisation": (0.05, 0.20, 0.05, 0.15, 0.55)},
        "Order channel weights (store, web, app, phone, sales_rep) by individual / organisation.",
    )
    main_channel_share: float = _param(0.6, "Probability that an order uses the person's main channel.")
    # -- payments -----------------------------------------------------------------------------
    payment_terms_days: int = _param(30, "Organisations' invoices are due this many days after issue.")
    grade_shares: Mapping[str, Mapping[str, float]] = _param_f(
        lambda: {
            "individual": {"A": 0.85, "B": 0.10, "C": 0.04, "D": 0.01},
            "enterprise": {"A": 0.40, "B": 0.35, "C": 0.18, "D": 0.07},
            "government": {"A": 0.55, "B": 0.35, "C": 0.10, "D": 0.0},
            "partner": {"A": 0.30, "B": 0.35, "C": 0.23, "D": 0.12},
        },
        "Latent credit grade shares by kind. Individuals pay at once whatever their grade.",
    )
    grade_lateness: Mapping[str, tuple[int, int, float]] = _param_f(
        lambda: {"A": (-20, 0, 0.0), "B": (-5, 15, 0.0), "C": (5, 60, 0.05), "D": (30, 150, 0.30)},
        "Per grade (min, max) days paid after the due date (uniform) and the share never paid (organisations).",
    )
    # -- surveys -------------------------------------------------------------------------------
    survey_share: float = _param(0.10, "Share of persons alive at a wave's start sampled for that wave.")
    anonymous_share: float = _param(0.10, "Anonymous responses per wave, as a share of the identified ones.")
    version2_from_wave: int = _param(3, "Index (0-based) of the first wave answered with questionnaire version 2.")
    acsi_paths: Mapping[str, float] = _param_f(
        lambda: {
            "CE->PQ": 0.55,
            "CE->PV": 0.20,
            "PQ->PV": 0.50,
            "CE->SAT": 0.15,
            "PQ->SAT": 0.45,
            "PV->SAT": 0.30,
            "SAT->COMPLAINT": -0.45,
            "SAT->LOYALTY": 0.55,
            "COMPLAINT->LOYALTY": -0.15,
        },
        "ACSI structural model: standardised path coefficients between latent variables (unit variance).",
    )
    acsi_loadings: Mapping[str, float] = _param_f(
        lambda: {
            "exp_1": 0.80,
            "exp_2": 0.75,
            "exp_3": 0.70,
            "qual_1": 0.88,
            "qual_2": 0.85,
            "qual_3": 0.80,
            "value_1": 0.90,
            "value_2": 0.85,
            "sat_1": 0.92,
            "sat_2": 0.88,
            "sat_3": 0.85,
            "complaint": 0.85,
            "repurchase": 0.88,
            "price_tolerance": 0.70,
            "recommend": 0.85,
        },
        "Standardised loading of each survey item on its latent variable (item = loading*LV + noise).",
    )
    acsi_item_means: Mapping[str, float] = _param_f(
        lambda: {"CE": 7.8, "PQ": 7.5, "PV": 6.9, "SAT": 7.4, "LOYALTY": 7.1},
        "Mean of the items of each latent on the 1-10 scale before rounding and clipping.",
    )
    acsi_item_sd: float = _param(1.7, "Standard deviation of an item on the 1-10 scale (recommend: +0.3).")
    complaint_share: float = _param(0.15, "Share of respondents answering complaint = true.")
    kano: Mapping[str, str] = _param_f(
        lambda: {"delivery": "M", "product_quality": "O", "price": "O", "after_sales": "A", "staff": "I"},
        "Planted Kano category per service attribute (M must-be, O one-dimensional, A attractive, "
        "I indifferent, R reverse, Q questionable).",
    )
    kano_share: float = _param(0.60, "Share of answers pairs that fall into the planted Kano category.")
    kano_noise: Mapping[str, float] = _param_f(
        lambda: {"M": 0.2, "O": 0.2, "A": 0.2, "I": 0.3, "R": 0.07, "Q": 0.03},
        "Distribution of the category of the other (noise) answer pairs.",
    )
    ipa_importance: Mapping[str, float] = _param_f(
        lambda: {"delivery": 8.5, "product_quality": 8.7, "price": 7.9, "after_sales": 6.2, "staff": 6.0},
        "Mean importance (1-10) per service attribute.",
    )
    ipa_performance: Mapping[str, float] = _param_f(
        lambda: {"delivery": 6.2, "product_quality": 8.3, "price": 6.0, "after_sales": 8.1, "staff": 6.3},
        "Mean performance (1-10) per service attribute; performance also loads 0.5 on perceived quality.",
    )
    ipa_sd: float = _param(1.4, "Standard deviation of importance and performance answers.")
    duration_median_s: float = _param(420.0, "Median questionnaire duration (lognormal), seconds.")
    duration_sigma: float = _param(0.45, "Log-scale standard deviation of the duration.")
    speeder_share: float = _param(0.03, "Share of responses completed in under 60 seconds (speeders).")
    straightliner_share: float = _param(0.02, "Share of responses with all 11 ACSI grid items identical.")
    duplicate_share: float = _param(0.01, "Share of extra responses by a respondent already in the same wave.")
    attention_fail_share: float = _param(0.02, "Share of responses failing the attention check (not 7).")
    comment_share: float = _param(0.25, "Share of responses with a free-text comment.")
    comment_special_share: float = _param(
        0.15, "Share of comments containing an ASCII comma, a double quote or a newline (CSV-quoted)."
    )
    # -- interactions ---------------------------------------------------------------------------
    interaction_rates: Mapping[str, float] = _param_f(
        lambda: {"complaint": 0.0012, "praise": 0.0006, "suggestion": 0.0004, "campaign_response": 0.0015},
        "Base rate per day of each interaction type while the person is active (birth to dropout).",
    )
    interaction_effects: Mapping[str, tuple[str, float]] = _param_f(
        lambda: {
            "complaint": ("SAT", -0.8),
            "praise": ("SAT", 0.6),
            "suggestion": ("SAT", 0.0),
            "campaign_response": ("LOYALTY", 0.4),
        },
        "Rate multiplier exp(effect * latent) per type: complaints fall with satisfaction.",
    )
    org_interaction_multiplier: float = _param(2.0, "Interaction rates of organisations relative to individuals.")
    # -- leads (prospects) and their MAN evidence -------------------------------------------------
    leads_per_day_per_1000: float = _param(
        2.0, "Leads created per day per 1000 persons of the population (Poisson count per day)."
    )
    lead_kind_shares: Mapping[str, float] = _param_f(
        lambda: {"individual": 0.35, "enterprise": 0.45, "government": 0.08, "partner": 0.12},
        "Share of leads by prospect kind (a converted lead takes the kind of the customer it became).",
    )
    lead_source_shares: Mapping[str, float] = _param_f(
        lambda: {
            "trade_show": 0.20,
            "web_form": 0.30,
            "referral": 0.15,
            "cold_call": 0.15,
            "partner": 0.10,
            "campaign": 0.10,
        },
        "Share of leads by source.",
    )
    lead_man_shares: Mapping[str, float] = _param_f(
        lambda: {"money": 0.45, "authority": 0.50, "need": 0.55},
        "Probability (independent) that a lead's first version shows money, authority and need evidence "
        "under the MAN rule with the default ProspectParams: money = declared budget >= lead_budget_threshold "
        "or credit rating A/B; authority = contact role owner, executive or purchasing_manager; need = need "
        "stated_need or urgent, or a quote requested.",
    )
    lead_budget_threshold: float = _param(
        50_000.0, "Declared budget (CNY) from which a budget is money evidence (ProspectParams' default)."
    )
    lead_budget_share: float = _param(
        0.55, "Share of leads with money evidence whose evidence is the declared budget (the others: rating A/B)."
    )
    lead_budget_missing: float = _param(
        0.40, "Share of the other leads without a declared budget (a stated budget is below the threshold)."
    )
    lead_rating_missing: float = _param(
        0.30, "Share of leads not relying on their rating for money evidence that have no credit check."
    )
    lead_phone_missing: float = _param(0.15, "Share of leads without a phone number.")
    lead_email_missing: float = _param(0.30, "Share of leads without an e-mail (converted leads keep one of the two).")
    lead_converted_share: float = _param(
        0.20,
        "Share of leads that are persons who became customers (first purchase) within lead_conversion_days "
        "after the lead was created; they carry that person's phone number and e-mail address.",
    )
    lead_conversion_days: int = _param(60, "Window (days) after a lead's creation in which its conversion falls.")
    lead_restated_share: float = _param(
        0.25,
        "Share of leads restated once on a later day: a missing MAN condition appears (budget declared, "
        "decision-maker found, need stated; one at random), or for an M+A+N lead the evidence firms up.",
    )
    lead_restate_days: tuple[int, int] = _param(
        (1, 45), "Uniform delay (days) of the restatement; restatements after the period are not delivered."
    )
    # -- planted file problems (only when defects > 0) ---------------------------------------------
    file_defects_per_kind: int = _param(2, "Extra files planted per file-level defect kind (defects > 0).")
    encoded_files: int = _param(3, "Real files written as GB18030 and as UTF-8 with BOM each (defects > 0).")


# ---------------------------------------------------------------------------------------------
# The byte engine. A feed's rows are written straight into one buffer. Every column is
# one or more *parts*: a small table of byte strings (a dictionary, the numbers 0..99999,
# "HH:" + minutes, ...) with the column separator baked in, and a per-row index into it.
# A part is laid out with one gather and one scatter of whole padded table entries; the
# zero padding of a variable-width entry spills over the start of the next part, which is
# written later and overwrites it. Fixed-width parts at the start of a row are rewritten
# at the end to repair what the last part of the previous row spilled over them.
# ---------------------------------------------------------------------------------------------


class _Block(NamedTuple):
    """n short strings as an (n, w) uint8 matrix, left-aligned and zero-padded."""

    data: np.ndarray
    lens: np.ndarray


class _Part(NamedTuple):
    table: np.ndarray  # (K, w) uint8, C-contiguous, zero-padded
    lens: np.ndarray  # (K,) int64 byte length of each entry
    idx: np.ndarray | None  # (n,) entry per row; None: the table has one entry per row


_POW10 = 10 ** np.arange(19, dtype=np.int64)


def _strings(values: Sequence[str]) -> _Block:
    raw = [v.encode("utf-8") for v in values]
    width = max((len(r) for r in raw), default=0)
    data = np.zeros((len(raw), width), np.uint8)
    for i, r in enumerate(raw):  # one entry per distinct value, never per row
        data[i, : len(r)] = np.frombuffer(r, np.uint8)
    return _Block(data, np.array([len(r) for r in raw], np.int64))


@functools.lru_cache(maxsize=256)
def _text_table(values: tuple[str, ...], suffix: str = "") -> _Block:
    """A dictionary with the separator baked in; the extra last entry is the empty value."""
    return _strings([v + suffix for v in values] + [suffix])


def _text(values: Sequence[str], idx: np.ndarray, suffix: str, present: np.ndarray | None = None) -> _Part:
    table = _text_table(tuple(values), suffix)
    if present is not None:
        idx = np.where(present, idx, len(values))
    return _Part(table.data, table.lens, np.asarray(idx, np.int64))


def _digit_matrix(x: np.ndarray, width: int, pad: bool) -> tuple[np.ndarray, np.ndarray]:
    """Decimal digits of non-negative ints, left-aligned (no leading zeros unless `pad`)."""
    x = np.asarray(x, np.int64)
    if pad:
        nd = np.full(x.shape[0], width, np.int64)
    else:
        nd = np.ones(x.shape[0], np.int64)
        for k in range(1, width):
            nd += x >= _POW10[k]
    data = np.zeros((x.shape[0], width), np.uint8)
    for j in range(width):
        e = nd - 1 - j
        data[:, j] = np.where(e >= 0, (x // _POW10[np.maximum(e, 0)]) % 10 + 48, 0)
    return data, nd


@functools.lru_cache(maxsize=64)
def _number_table(count: int, prefix: str = "", suffix: str = "", pad: int = 0) -> _Block:
    """prefix + str(i) (zero-padded to `pad` digits) + suffix for i in 0..count-1, then the
    empty value (just the suffix) as entry `count`."""
    width = max(pad, len(str(max(count - 1, 0))))
    digits, nd = _digit_matrix(np.arange(count), width, pad > 0)
    head, tail = prefix.encode(), suffix.encode()
    data = np.zeros((count + 1, len(head) + width + len(tail)), np.uint8)
    data[:count, : len(head)] = np.frombuffer(head, np.uint8)
    data[:count, len(head) : len(head) + width] = digits
    rows = np.arange(count)
    for j, byte in enumerate(tail):
        data[rows, len(head) + nd + j] = byte
        data[count, j] = byte
    lens = np.concatenate([len(head) + nd + len(tail), [len(tail)]]).astype(np.int64)
    return _Block(data, lens)


SMALL = 100_000  # numbers below this come from a table; others are computed


def _block_part(block: _Block, suffix: str) -> _Part:
    """A per-row block (names, e-mails...) as a part, with the separator appended."""
    n, width = block.data.shape
    tail = suffix.encode()
    data = np.zeros((n, width + len(tail)), np.uint8)
    data[:, :width] = block.data
    rows = np.arange(n)
    for j, byte in enumerate(tail):
        data[rows, block.lens + j] = byte
    return _Part(data, block.lens + len(tail), None)


def _int_parts(x: np.ndarray, suffix: str, present: np.ndarray | None = None) -> list[_Part]:
    x = np.asarray(x, np.int64)
    if x.size and (x.min() < 0 or x.max() >= SMALL):
        block = _int_block(np.maximum(x, 0))
        if present is not None:
            block = _blank(block, present)
        return [_block_part(block, suffix)]
    table = _number_table(SMALL, suffix=suffix)
    idx = x if present is None else np.where(present, x, SMALL)
    return [_Part(table.data, table.lens, idx)]


def _money_parts(cents: np.ndarray, suffix: str, present: np.ndarray | None = None) -> list[_Part]:
    """Amounts in cents as 1234.50 (whole part, then '.dd' + separator)."""
    cents = np.asarray(cents, np.int64)
    whole, frac = np.divmod(cents, 100)
    fracs = _number_table(100, prefix=".", suffix=suffix, pad=2)
    fidx = frac if present is None else np.where(present, frac, 100)
    return [*_int_parts(whole, "", present), _Part(fracs.data, fracs.lens, fidx)]


def _id_parts(prefix: str, seq: np.ndarray, suffix: str, present: np.ndarray | None = None) -> list[_Part]:
    """Ids like SO0000001234 (prefix + 10 digits) from two tables of five digits."""
    hi, lo = np.divmod(np.asarray(seq, np.int64), SMALL)
    count = int(hi.max()) + 1 if hi.size else 1
    heads = _number_table(count, prefix=prefix, pad=ID_DIGITS - 5)
    tails = _number_table(SMALL, suffix=suffix, pad=5)
    if present is not None:
        hi, lo = np.where(present, hi, count), np.where(present, lo, SMALL)
    return [_Part(heads.data, heads.lens, hi), _Part(tails.data, tails.lens, lo)]


@functools.lru_cache(maxsize=64)
def _hour_table(start: date, lo: int, hi: int) -> _Block:
    """'YYYY-MM-DDTHH:' for every hour of days lo..hi (entry (day - lo) * 24 + hour)."""
    days = _strings([(start + timedelta(days=d)).isoformat() + "T" for d in range(lo, hi + 1)]).data
    hours = _strings([f"{h:02d}:" for h in range(24)]).data
    data = np.concatenate([np.repeat(days, 24, axis=0), np.tile(hours, (hi - lo + 1, 1))], axis=1)
    return _Block(np.ascontiguousarray(data), np.full(data.shape[0], data.shape[1], np.int64))


@functools.lru_cache(maxsize=8)
def _minute_table(suffix: str) -> _Block:
    """'MM:SS+08:00' + separator for every second of an hour."""
    mm = _number_table(60, suffix=":", pad=2).data[:60]
    ss = _number_table(60, suffix=UTC_OFFSET + suffix, pad=2).data[:60]
    data = np.concatenate([np.repeat(mm, 60, axis=0), np.tile(ss, (60, 1))], axis=1)
    return _Block(data, np.full(3600, data.shape[1], np.int64))


def _ts_parts(sec: np.ndarray, start: date, suffix: str) -> list[_Part]:
    """Local seconds since the start day's midnight as 2025-03-01T14:03:22+08:00."""
    sec = np.asarray(sec, np.int64)
    hour, rest = np.divmod(sec, 3600)
    lo = int(hour.min()) // 24 if sec.size else 0
    hi = int(hour.max()) // 24 if sec.size else 0
    hours, minutes = _hour_table(start, lo, hi), _minute_table(suffix)
    return [_Part(hours.data, hours.lens, hour - lo * 24), _Part(minutes.data, minutes.lens, rest)]


@functools.lru_cache(maxsize=64)
def _date_table(start: date, lo: int, hi: int, suffix: str) -> _Block:
    return _strings([(start + timedelta(days=d)).isoformat() + suffix for d in range(lo, hi + 1)] + [suffix])


def _date_parts(day: np.ndarray, start: date, suffix: str, present: np.ndarray | None = None) -> list[_Part]:
    day = np.asarray(day, np.int64)
    used = day if present is None else day[present]
    lo, hi = (int(used.min()), int(used.max())) if used.size else (0, 0)
    table = _date_table(start, lo, hi, suffix)
    idx = day - lo if present is None else np.where(present, day - lo, hi - lo + 1)
    return [_Part(table.data, table.lens, idx)]


def _void(table: np.ndarray) -> np.ndarray:
    return table.view(f"V{table.shape[1]}")[:, 0]


def _window(buf: np.ndarray, width: int) -> np.ndarray:
    """Overlapping view of a flat byte buffer: element i is the `width` bytes at offset i."""
    return np.ndarray((buf.size - width + 1,), dtype=f"V{width}", buffer=buf, strides=(1,))


class _Feed(NamedTuple):
    """A feed's clean rows, not yet rendered: parts per column, rows sorted by the day
    (0 = start) whose folder they are delivered in."""

    parts: list[_Part]
    day: np.ndarray
    newlines: np.ndarray | None = None  # embedded newlines per row (quoted comments), if any

    @property
    def n(self) -> int:
        return self.day.shape[0]

    def texts(self, rows: np.ndarray) -> list[str]:
        """The CSV records of a few rows (with their newline)."""
        buf, off = _render(self.parts, np.asarray(rows, np.int64))
        return [buf[off[i] : off[i + 1]].tobytes().decode("utf-8") for i in range(len(rows))]


def _render(parts: Sequence[_Part], rows: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lay the selected rows out as CSV lines in one buffer: (bytes, row offsets).

    See the section comment; rows are rendered a chunk of whole days at a time so that
    the buffers stay small and are recycled.
    """
    sel = [(p.table, p.lens, p.idx[rows]) if p.idx is not None else (p.table[rows], p.lens[rows], None) for p in parts]
    n = sel[0][2].shape[0] if sel[0][2] is not None else sel[0][0].shape[0]
    lens: list[int | np.ndarray] = []
    row_len = np.zeros(n, np.int64)
    for table, tlens, idx in sel:
        width = int(table.shape[1])
        ln: int | np.ndarray = width
        if not (tlens == width).all():
            ln = tlens if idx is None else tlens[idx]
            if n and (ln == width).all():
                ln = width  # only full-width entries are used in these rows
        row_len += ln
        lens.append(ln)
    fixed = [isinstance(ln, int) for ln in lens]
    off = np.zeros(n + 1, np.int64)
    np.cumsum(row_len, out=off[1:])
    lead = next((k for k, fx in enumerate(fixed) if not fx), len(sel))
    if n and lead == 0:
        raise ValueError("a feed's first column must have a fixed width")
    limit = sum(int(table.shape[1]) for table, _, _ in sel[:lead])
    wmax = max(table.shape[1] for table, _, _ in sel)
    buf = np.empty(int(off[-1]) + wmax + 1, np.uint8)
    # smallest number of bytes that follow each part in its row
    shortest = [tab.shape[1] if fx else int(tl.min()) for (tab, tl, _), fx in zip(sel, fixed, strict=True)]
    after = np.cumsum([0, *shortest[::-1]])[::-1][1:]
    cur = off[:-1].copy()
    for k, ((table, tlens, idx), ln) in enumerate(zip(sel, lens, strict=True)):
        width = table.shape[1]
        if width and n:
            src = _void(table) if idx is None else _void(table)[idx]
            view = _window(buf, width)
            if width - shortest[k] - after[k] <= limit:
                view[cur] = src
            else:
                exact = (width - (off[1:] - cur)) > limit
                view[cur[~exact]] = src[~exact]
                _write_exact(buf, cur[exact], table, tlens, np.flatnonzero(exact) if idx is None else idx[exact])
        cur += ln
    pos = off[:-1].copy()
    for table, _, idx in sel[:lead]:
        if n:
            _window(buf, table.shape[1])[pos] = _void(table) if idx is None else _void(table)[idx]
        pos += table.shape[1]
    return buf[: off[-1]], off


def _write_exact(buf: np.ndarray, pos: np.ndarray, table: np.ndarray, tlens: np.ndarray, entry: np.ndarray) -> None:
    """Write entries without their padding (rows whose padding would reach too far)."""
    lens = tlens[entry]
    for length in np.unique(lens).tolist():
        if length:
            sel = lens == length
            src = np.ascontiguousarray(table[entry[sel], :length])
            _window(buf, length)[pos[sel]] = _void(src)


# -- text blocks, for values composed per person (names, e-mails, phones, tax ids) -------------


def _const(value: str) -> _Block:
    return _strings([value])


def _take(block: _Block, idx: np.ndarray) -> _Block:
    return _Block(np.take(block.data, idx, axis=0), block.lens[idx])


def _blank(block: _Block, present: np.ndarray) -> _Block:
    """Empty the rows where `present` is false."""
    data = block.data.copy()
    data[~present] = 0
    return _Block(data, np.where(present, block.lens, 0))


def _concat(parts: Sequence[_Block], n: int) -> _Block:
    """Row-wise concatenation (e.g. surname + given name), by the same padded scatter."""
    total_w = sum(p.data.shape[1] for p in parts) + 1
    out = np.zeros((n, total_w), np.uint8)
    flat = out.reshape(-1)
    cur = np.arange(n, dtype=np.int64) * total_w
    total = np.zeros(n, np.int64)
    for p in parts:
        lens = np.broadcast_to(p.lens, (n,))
        if p.data.shape[1] and n:
            src = _void(p.data)
            _window(flat, p.data.shape[1])[cur] = src[0] if src.shape[0] == 1 else src
        cur += lens
        total += lens
    width = int(total.max()) if n else 0
    return _Block(np.ascontiguousarray(out[:, :width]), total)


def _select(n: int, cases: Sequence[tuple[np.ndarray, _Block]]) -> _Block:
    """Assemble a block from blocks computed on subsets (`mask`, block of the masked rows)."""
    width = max((b.data.shape[1] for _, b in cases), default=0)
    data = np.zeros((n, width), np.uint8)
    lens = np.zeros(n, np.int64)
    for mask, b in cases:
        data[mask, : b.data.shape[1]] = b.data
        lens[mask] = b.lens
    return _Block(data, lens)


def _upper(block: _Block, rows: np.ndarray, first_only: bool = False) -> _Block:
    """ASCII upper case on the selected rows (all letters, or the first byte only)."""
    data = block.data.copy()
    part = data[rows, :1] if first_only else data[rows]
    part[(part >= 97) & (part <= 122)] -= 32
    if first_only:
        data[rows, :1] = part
    else:
        data[rows] = part
    return _Block(data, block.lens)


def _int_block(x: np.ndarray) -> _Block:
    data, nd = _digit_matrix(x, max(1, len(str(int(np.max(x, initial=0))))), False)
    return _Block(data, nd)


def _quote_minimal(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


# ---------------------------------------------------------------------------------------------
# The process
# ---------------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    w = np.asarray(weights, np.float64)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(size), side="right").clip(0, len(w) - 1)


def _diurnal(frac: np.ndarray) -> np.ndarray:
    """Map a uniform fraction of a day to seconds since midnight with realistic hours."""
    w = np.asarray(names.HOURLY_WEIGHTS)
    cdf = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    return np.minimum(np.interp(frac, cdf, np.arange(25) * 3600.0), SECONDS_PER_DAY - 1).astype(np.int64)


def _to_seconds(t: np.ndarray) -> np.ndarray:
    """Continuous time in days since the start -> local seconds, hours warped to a day's rhythm."""
    day = np.floor(t)
    return day.astype(np.int64) * SECONDS_PER_DAY + _diurnal(t - day)


def _scramble(i: np.ndarray, modulus: int, mult: int, add: int) -> np.ndarray:
    """A bijection of 0..modulus-1 (mult coprime with 10): unique, random-looking numbers."""
    return (np.asarray(i, np.int64) * mult + add) % modulus


def _latent_covariance(paths: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Path matrix B (B[j, i] = effect of i on j) and residual variances for unit-variance latents."""
    k = len(LATENTS)
    beta = np.zeros((k, k))
    for key, value in paths.items():
        src, dst = key.split("->")
        beta[LATENTS.index(dst), LATENTS.index(src)] = value
    cov = np.zeros((k, k))
    resid = np.zeros(k)
    for j in range(k):
        b = beta[j, :j]
        explained = float(b @ cov[:j, :j] @ b) if j else 0.0
        resid[j] = 1.0 - explained
        if resid[j] <= 0:
            raise ValueError(f"ACSI paths into {LATENTS[j]} explain more than its unit variance")
        cov[j, :j] = cov[:j, j] = cov[:j, :j] @ b
        cov[j, j] = 1.0
    return beta, resid


def _latents(rng: np.random.Generator, n: int, paths: Mapping[str, float]) -> np.ndarray:
    beta, resid = _latent_covariance(paths)
    lv = rng.standard_normal((n, len(LATENTS))) * np.sqrt(resid)
    for j in range(len(LATENTS)):
        lv[:, j] += lv[:, :j] @ beta[j, :j]
    return lv


class _Shard(NamedTuple):
    """Which part of the population a simulation is, and how its numbers map into the whole.

    Shards are independent simulations; their persons are consecutive blocks and every
    other sequence (customer record numbers per system, order, return, invoice, interaction
    and lead ids) is interleaved: local number i of shard k is (i - 1) * count + k + 1, so
    ids stay unique without knowing other shards' counts. One shard maps everything onto
    itself."""

    index: int = 0
    count: int = 1
    first_person: int = 0  # global id of the shard's first person
    persons: int = 0  # the whole population (e-mails and phones are unique across it)
    ref_width: int | None = None  # customer_ref digits of every shard (None: from the records)
    tag: str = ""  # file name suffix, e.g. ".s003"

    def ids(self, local: Any) -> Any:
        """Global 1-based numbers of local 1-based ones (ints or arrays)."""
        return (local - 1) * self.count + self.index + 1 if self.count > 1 else local


@dataclass
class _World:
    """Everything simulated, as arrays; rendering and ground truth read from here."""

    start: date
    days: int
    params: DemoParams
    # persons
    kind: np.ndarray
    birth_t: np.ndarray
    lam: np.ndarray
    p: np.ndarray
    nu: np.ndarray
    grade: np.ndarray
    lv: np.ndarray
    n_repeat: np.ndarray
    alive: np.ndarray
    death_t: np.ndarray
    region: np.ndarray
    city: np.ndarray
    # records
    rec_person: np.ndarray
    rec_system: np.ndarray
    rec_day: np.ndarray
    rec_start: np.ndarray  # first record index per person (records are person-major)
    rec_count: np.ndarray
    rec_num: np.ndarray
    ref_width: int
    shard: _Shard
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.kind.shape[0]

    def pick_record(self, rng: np.random.Generator, person: np.ndarray, day: np.ndarray) -> np.ndarray:
        """A record of each person that exists on `day` (uniform among those)."""
        start, count = self.rec_start[person], self.rec_count[person]
        available = np.ones(person.shape[0], np.int64)  # the first record exists from the birth day
        last = self.rec_day.shape[0] - 1
        for j in (1, 2):
            available += (count > j) & (self.rec_day[np.minimum(start + j, last)] <= day)
        return start + np.minimum((rng.random(person.shape[0]) * available).astype(np.int64), available - 1)


def _simulate_persons(rng: np.random.Generator, n: int, days: int, params: DemoParams) -> dict[str, Any]:
    kind = _choice(rng, [params.kind_shares.get(k, 0.0) for k in KINDS], n)
    birth_day = np.where(rng.random(n) < params.initial_share, 0, rng.integers(0, days, n))
    birth_t = birth_day + rng.random(n)
    horizon = days - birth_t
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    lv = _latents(rng, n, params.acsi_paths)
    p = rng.beta(params.a, params.b, n)
    if params.loyalty_dropout_corr:
        c = params.loyalty_dropout_corr
        score = -c * lv[:, LATENTS.index("LOYALTY")] + math.sqrt(1 - c * c) * rng.standard_normal(n)
        p = np.sort(p)[np.argsort(np.argsort(score))]
    nu = rng.gamma(params.gg_q, 1.0 / params.gg_gamma, n)
    grade = np.empty(n, np.int64)
    for k, name in enumerate(KINDS):
        mask = kind == k
        shares = params.grade_shares[name]
        grade[mask] = _choice(rng, [shares.get(g, 0.0) for g in GRADES], int(mask.sum()))
    region = _choice(rng, [w for _, w, _ in names.REGIONS], n)
    n_cities = np.array([len(c) for _, _, c in names.REGIONS])
    city = (rng.random(n) * n_cities[region]).astype(np.int64)

    # BG/NBD: Poisson purchases while alive; dropout after each repeat purchase w.p. p.
    n_events = rng.poisson(lam * horizon)
    dropout_at = rng.geometric(p)
    n_repeat = np.minimum(n_events, dropout_at)
    alive = dropout_at > n_events
    # The first n_repeat of n_events sorted uniforms, from exponential spacings.
    seg = n_events + 1
    seg_start = np.cumsum(seg) - seg
    cum = np.cumsum(rng.standard_exponential(int(seg.sum())))
    base = np.where(seg_start > 0, cum[np.maximum(seg_start - 1, 0)], 0.0)
    total = cum[seg_start + n_events] - base
    rep_person = np.repeat(np.arange(n), n_repeat)
    k = np.arange(rep_person.shape[0]) - np.repeat(np.cumsum(n_repeat) - n_repeat, n_repeat)
    u = (cum[seg_start[rep_person] + k] - base[rep_person]) / total[rep_person]
    rep_t = birth_t[rep_person] + horizon[rep_person] * u
    last = np.cumsum(n_repeat) - 1
    death_t = np.full(n, np.nan)
    dead = ~alive
    death_t[dead] = rep_t[last[dead]]
    return dict(
        kind=kind,
        birth_t=birth_t,
        lam=lam,
        p=p,
        nu=nu,
        grade=grade,
        lv=lv,
        n_repeat=n_repeat,
        alive=alive,
        death_t=death_t,
        region=region,
        city=city,
        rep_person=rep_person,
        rep_t=rep_t,
    )


def _simulate_records(
    rng: np.random.Generator, persons: dict[str, Any], days: int, params: DemoParams, shard: _Shard
) -> dict:
    kind, birth_t = persons["kind"], persons["birth_t"]
    n = kind.shape[0]
    count = _choice(rng, params.records_per_person, n) + 1
    start = np.cumsum(count) - count
    person = np.repeat(np.arange(n), count)
    j = np.arange(person.shape[0]) - start[person]
    # Source systems without repetition per person, weighted by kind (Gumbel top-k).
    w_ind = np.log(np.array([0.20, 0.45, 0.35, 1e-9]))
    w_org = np.log(np.array([0.50, 0.10, 1e-9, 0.40]))
    keys = np.where((kind == 0)[:, None], w_ind, w_org) + rng.gumbel(size=(n, 4))
    ranked = np.argsort(-keys, axis=1)
    system = ranked[person, j]
    birth_day = np.floor(birth_t).astype(np.int64)
    later = rng.integers(birth_day[person], days)
    day = np.where(j == 0, birth_day[person], later)
    # later records in signup order within the person
    order = np.lexsort((day, person))
    day = day[order]
    system = system[order]
    # Record numbers per system, in order of creation.
    created = np.lexsort((rng.random(person.shape[0]), day))
    num = np.empty(person.shape[0], np.int64)
    for s in range(len(SYSTEMS)):
        m = system[created] == s
        num[created[m]] = np.arange(1, int(m.sum()) + 1)
    width = shard.ref_width or max(7, len(str(2 * max(int(num.max(initial=0)), 1))))
    return dict(
        rec_person=person,
        rec_system=system,
        rec_day=day,
        rec_start=start,
        rec_count=count,
        rec_num=num,
        ref_width=width,
    )


def _simulate(
    n: int, days: int, start: date, params: DemoParams, rng: np.random.Generator, shard: _Shard | None = None
) -> _World:
    shard = shard or _Shard(persons=n)
    persons = _simulate_persons(rng, n, days, params)
    records = _simulate_records(rng, persons, days, params, shard)
    extra = {"rep_person": persons.pop("rep_person"), "rep_t": persons.pop("rep_t")}
    return _World(start=start, days=days, params=params, **persons, **records, extra=extra, shard=shard)


def _ref_keys(world: _World) -> tuple[np.ndarray, np.ndarray, _Block]:
    """customer_ref per record (e.g. WEB-0001234) as two table keys and the head table."""
    head_count = 10 ** (world.ref_width - 5)
    hi, lo = np.divmod(world.shard.ids(world.rec_num), SMALL)
    heads = _strings(
        [f"{SYSTEM_PREFIX[s]}-{h:0{world.ref_width - 5}d}" for s in SYSTEMS for h in range(head_count)] + [""]
    )
    return world.rec_system * head_count + hi, lo, heads


def _ref_parts(world: _World, record: np.ndarray, suffix: str, present: np.ndarray | None = None) -> list[_Part]:
    hi, lo, heads = world.extra["ref_keys"]
    tails = _number_table(SMALL, suffix=suffix, pad=5)
    h, t = hi[record], lo[record]
    if present is not None:
        h, t = np.where(present, h, heads.data.shape[0] - 1), np.where(present, t, SMALL)
    return [_Part(heads.data, heads.lens, h), _Part(tails.data, tails.lens, t)]


@functools.lru_cache(maxsize=1)
def _catalogue() -> dict[str, np.ndarray | list[str]]:
    """A fixed product catalogue (the same for every seed), sorted by price."""
    rng = np.random.default_rng(20250101)
    cats = names.CATEGORIES
    size = 400
    price = np.exp(rng.uniform(np.log(5.0), np.log(80000.0), size))
    cat = np.empty(size, np.int64)
    for i in range(size):  # 400 products, once: not a hot path
        fits = [k for k, (_, lo, hi) in enumerate(cats) if lo <= price[i] <= hi]
        cat[i] = fits[rng.integers(len(fits))]
    cents = np.round(price * 100 / 10).astype(np.int64) * 10 - 1  # prices end in 9 fen
    cents = np.maximum(cents, 99)
    order = np.argsort(cents, kind="stable")
    ids = [f"P{i:05d}" for i in rng.permutation(np.arange(10001, 10001 + size))]
    return {"cents": cents[order], "category": cat[order], "ids": ids}


def _orders(world: _World, rng: np.random.Generator) -> dict[str, Any]:
    params = world.params
    n = world.n
    days = world.days
    person = np.concatenate([np.arange(n), world.extra["rep_person"]])
    t = np.concatenate([world.birth_t, world.extra["rep_t"]])
    sec = _to_seconds(t)
    order = np.argsort(sec)
    person, sec = person[order], sec[order]
    n_orders = person.shape[0]
    day = sec // SECONDS_PER_DAY
    record = world.pick_record(rng, person, day)
    z = rng.gamma(params.gg_p, 1.0 / world.nu[person])
    value = np.maximum(np.round(z * 100).astype(np.int64), 100)
    cancelled = rng.random(n_orders) < params.cancel_share
    is_org = world.kind[person] != 0
    ch_ind = _choice(rng, params.channel_weights["individual"], n)
    ch_org = _choice(rng, params.channel_weights["organisation"], n)
    main = np.where(world.kind != 0, ch_org, ch_ind)[person]
    other = np.where(
        is_org,
        _choice(rng, params.channel_weights["organisation"], n_orders),
        _choice(rng, params.channel_weights["individual"], n_orders),
    )
    channel = np.where(rng.random(n_orders) < params.main_channel_share, main, other)

    # Lines: split the order value, pick products whose price fits, absorb rounding as discount.
    n_lines = _choice(rng, params.lines_per_order, n_orders) + 1
    n_lines = np.minimum(n_lines, np.maximum(value // 500, 1))
    lstart = np.cumsum(n_lines) - n_lines
    line_order = np.repeat(np.arange(n_orders), n_lines)
    line_no = np.arange(line_order.shape[0]) - lstart[line_order] + 1
    g = rng.standard_exponential(line_order.shape[0])
    gsum = np.add.reduceat(g, lstart) if n_orders else g
    w = 0.5 / n_lines[line_order] + 0.5 * g / gsum[line_order]
    net = np.floor(value[line_order] * w).astype(np.int64)
    last = lstart + n_lines - 1
    net[last] += value - (np.add.reduceat(net, lstart) if n_orders else 0)
    qty = _choice(rng, params.quantity, net.shape[0]) + 1
    rates = np.array([r for r, _ in params.discount_rates])
    rate = rates[_choice(rng, [p for _, p in params.discount_rates], net.shape[0])]
    cat = _catalogue()
    prices = cat["cents"]
    need = net / (qty * (1 - rate))
    prod = np.minimum(np.searchsorted(prices, need) + rng.integers(0, 3, net.shape[0]), prices.shape[0] - 1)
    unit = prices[prod]
    qty = np.maximum(qty, -(-net // unit))
    discount = qty * unit - net

    # Returns of completed lines, a few days later, inside the period only.
    completed_line = ~cancelled[line_order]
    ret = np.flatnonzero(completed_line & (rng.random(net.shape[0]) < params.return_share))
    lo, hi = params.return_delay_days
    ret_t = sec[line_order[ret]] / SECONDS_PER_DAY + rng.uniform(lo, hi, ret.shape[0])
    keep = ret_t < days
    ret, ret_t = ret[keep], ret_t[keep]
    ret_sec = _to_seconds(ret_t)
    rorder = np.argsort(ret_sec)
    ret, ret_sec = ret[rorder], ret_sec[rorder]
    return dict(
        person=person,
        sec=sec,
        day=day,
        record=record,
        value=value,
        cancelled=cancelled,
        channel=channel,
        line_order=line_order,
        line_no=line_no,
        net=net,
        qty=qty,
        prod=prod,
        unit=unit,
        discount=discount,
        ret=ret,
        ret_sec=ret_sec,
        catalogue=cat,
    )


def _payments(world: _World, o: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    params = world.params
    inv = np.flatnonzero(~o["cancelled"])
    person = o["person"][inv]
    day = o["day"][inv]
    org = world.kind[person] != 0
    grade = world.grade[person]
    late_lo = np.array([params.grade_lateness[g][0] for g in GRADES])[grade]
    late_hi = np.array([params.grade_lateness[g][1] for g in GRADES])[grade]
    never_share = np.array([params.grade_lateness[g][2] for g in GRADES])[grade]
    never = org & (rng.random(inv.shape[0]) < never_share)  # individuals always pay at once
    due = np.where(org, day + params.payment_terms_days, day)
    paid = np.maximum(due + rng.integers(late_lo, late_hi + 1), day)
    paid = np.where(org, paid, day)
    unpaid_at_end = org & (never | (paid >= world.days))
    paid_same_day = paid == day
    # issue rows (paid at once -> paid_date set), then payment rows of organisations later on
    second = np.flatnonzero(org & ~paid_same_day & ~unpaid_at_end)
    n_inv = inv.shape[0]
    row_inv = np.concatenate([np.arange(n_inv), second])
    row_day = np.concatenate([day, paid[second]])
    row_paid = np.concatenate([np.where(paid_same_day & ~never, paid, -1), paid[second]])
    order = np.argsort(row_day, kind="stable")
    return dict(
        inv=inv,
        person=person,
        day=day,
        due=due,
        paid=np.where(unpaid_at_end, -1, paid),
        grade=grade,
        row_inv=row_inv[order],
        row_day=row_day[order],
        row_paid=row_paid[order],
        org=org,
    )


def _orders_feed(world: _World, o: dict[str, Any]) -> _Feed:
    lo = o["line_order"]
    ret = o["ret"]
    n_lines = lo.shape[0]
    # sales lines are already in time order; returns are merged in after them on ties
    row_sec = np.concatenate([o["sec"][lo], o["ret_sec"]])
    order = np.argsort(row_sec, kind="stable")
    src_line = np.concatenate([np.arange(n_lines), ret])[order]
    is_ret = order >= n_lines
    row_sec = row_sec[order]
    orig = lo[src_line]
    seq = world.shard.ids(np.where(is_ret, order - n_lines + 1, orig + 1))
    status = np.where(is_ret, 2, np.where(o["cancelled"][orig], 1, 0))
    o["rows"] = {"src_line": src_line, "is_ret": is_ret}
    # order_id: "SO"/"RT" + 10 digits, both prefixes in one table
    hi, low = np.divmod(seq, SMALL)
    count = int(hi.max()) + 1 if hi.size else 1
    heads = _strings([f"{p}{h:05d}" for p in ("SO", "RT") for h in range(count)])
    digits5 = _number_table(SMALL, suffix=",", pad=5)
    line_no = np.where(is_ret, 1, o["line_no"][src_line])
    lines = _number_table(10, suffix=",")
    # product, category, quantity and price in one table keyed by (product, quantity)
    cat = o["catalogue"]
    qty = o["qty"][src_line]
    qmax = int(qty.max()) if qty.size else 1
    products = _strings(
        [
            f"{pid},{names.CATEGORIES[c][0]},{q},{cents // 100}.{cents % 100:02d},"
            for pid, c, cents in zip(cat["ids"], cat["category"].tolist(), cat["cents"].tolist(), strict=True)
            for q in range(1, qmax + 1)
        ]
    )
    # discount cents, then ".dd" + currency + status + channel in one table
    whole, frac = np.divmod(o["discount"][src_line], 100)
    tails = _strings(
        [
            f".{f:02d},CNY,{s},{c},"
            for f in range(100)
            for s in ("completed", "cancelled", "returned")
            for c in ORDER_CHANNELS
        ]
    )
    tail_idx = (frac * 3 + status) * len(ORDER_CHANNELS) + o["channel"][orig]
    parts = [
        _Part(heads.data, heads.lens, hi + is_ret * count),
        _Part(digits5.data, digits5.lens, low),
        _Part(lines.data, lines.lens, line_no),
        *_ref_parts(world, o["record"][orig], ","),
        *_ts_parts(row_sec, world.start, ","),
        _Part(products.data, products.lens, o["prod"][src_line] * qmax + qty - 1),
        *_int_parts(whole, ""),
        _Part(tails.data, tails.lens, tail_idx),
        *_id_parts("SO", world.shard.ids(orig + 1), "\n", is_ret),
    ]
    return _Feed(parts, row_sec // SECONDS_PER_DAY)


def _payments_feed(world: _World, o: dict[str, Any], pay: dict[str, Any]) -> _Feed:
    ri = pay["row_inv"]
    order_idx = pay["inv"][ri]
    present = pay["row_paid"] >= 0
    parts = [
        *_id_parts("INV", world.shard.ids(ri + 1), ","),
        *_ref_parts(world, o["record"][order_idx], ","),
        *_id_parts("SO", world.shard.ids(order_idx + 1), ","),
        *_money_parts(o["value"][order_idx], ","),
        *_date_parts(pay["day"][ri], world.start, ","),
        *_date_parts(pay["due"][ri], world.start, ","),
        *_date_parts(np.where(present, pay["row_paid"], 0), world.start, "\n", present),
    ]
    return _Feed(parts, pay["row_day"])


def _waves(start: date, days: int) -> list[tuple[str, int, int]]:
    """(wave, first answer day, last answer day): each quarter's first month inside the period."""
    end = start + timedelta(days=days - 1)
    out = []
    year, q = start.year, (start.month - 1) // 3
    while True:
        first = date(year, 3 * q + 1, 1)
        if first > end:
            return out
        month_end = date(year, 3 * q + 2, 1) - timedelta(days=1)
        a0, a1 = max(first, start), min(month_end, end)
        if a0 <= a1:
            out.append((f"{year}Q{q + 1}", (a0 - start).days, (a1 - start).days))
        year, q = (year + 1, 0) if q == 3 else (year, q + 1)


def _likert(mean: float, sd: float, z: np.ndarray, lo: int = 1, hi: int = 10) -> np.ndarray:
    return np.clip(np.round(mean + sd * z), lo, hi).astype(np.int64)


def _surveys(world: _World, rng: np.random.Generator) -> dict[str, Any]:
    params = world.params
    waves = _waves(world.start, world.days)
    birth_day = np.floor(world.birth_t)
    resp_person, resp_wave, resp_day = [], [], []
    for w, (_, a0, a1) in enumerate(waves):  # one vectorised draw per wave
        eligible = (birth_day <= a0) & (world.alive | (world.death_t >= a0))
        chosen = np.flatnonzero(eligible & (rng.random(world.n) < params.survey_share))
        n_anon = round(params.anonymous_share * chosen.shape[0])
        resp_person += [chosen, np.full(n_anon, -1)]
        resp_wave.append(np.full(chosen.shape[0] + n_anon, w))
        resp_day.append(rng.integers(a0, a1 + 1, chosen.shape[0] + n_anon))
    person = np.concatenate(resp_person) if resp_person else np.zeros(0, np.int64)
    wave = np.concatenate(resp_wave) if resp_wave else np.zeros(0, np.int64)
    day = np.concatenate(resp_day) if resp_day else np.zeros(0, np.int64)
    # duplicate respondents: the same person answers the same wave again a little later
    known = np.flatnonzero(person >= 0)
    n_dup = min(round(params.duplicate_share * person.shape[0]), known.shape[0])
    dup_src = np.sort(rng.choice(known, n_dup, replace=False)) if n_dup else np.zeros(0, np.int64)
    last_day = np.array([a1 for _, _, a1 in waves], np.int64)
    dup_day = np.minimum(day[dup_src] + rng.integers(0, 4, n_dup), last_day[wave[dup_src]]) if n_dup else dup_src
    is_dup = np.concatenate([np.zeros(person.shape[0], bool), np.ones(n_dup, bool)])
    original = np.concatenate([np.full(person.shape[0], -1), dup_src])
    person = np.concatenate([person, person[dup_src]])
    wave = np.concatenate([wave, wave[dup_src]])
    day = np.concatenate([day, dup_day])
    m = person.shape[0]
    sec = day * SECONDS_PER_DAY + _diurnal(rng.random(m))
    # keep a duplicate after its original
    sec[is_dup] = np.maximum(sec[is_dup], sec[original[is_dup]] + 600)
    day = sec // SECONDS_PER_DAY
    known_mask = person >= 0
    waves_a0 = np.array([a0 for _, a0, _ in waves], np.int64)
    record = np.full(m, -1)
    if known_mask.any():
        record[known_mask] = world.pick_record(rng, person[known_mask], waves_a0[wave[known_mask]])
    record[is_dup] = record[original[is_dup]]  # a repeat respondent answers under the same record
    lv = np.empty((m, len(LATENTS)))
    lv[known_mask] = world.lv[person[known_mask]]
    lv[~known_mask] = _latents(rng, int((~known_mask).sum()), params.acsi_paths)

    items: dict[str, np.ndarray] = {}
    for item, latent in ITEM_LATENT.items():
        lam = params.acsi_loadings[item]
        z = lam * lv[:, LATENTS.index(latent)] + math.sqrt(1 - lam * lam) * rng.standard_normal(m)
        if item == "complaint":
            items[item] = (z > statistics.NormalDist().inv_cdf(1 - params.complaint_share)).astype(np.int64)
        elif item == "recommend":
            items[item] = _likert(params.acsi_item_means["LOYALTY"] - 0.2, params.acsi_item_sd + 0.3, z, 0, 10)
        elif item == "price_tolerance":
            items[item] = _likert(params.acsi_item_means["LOYALTY"] - 1.2, params.acsi_item_sd, z)
        else:
            items[item] = _likert(params.acsi_item_means[latent], params.acsi_item_sd, z)
    pq_lv = lv[:, LATENTS.index("PQ")]
    for attr in SERVICE_ATTRIBUTES:
        items[f"imp_{attr}"] = _likert(params.ipa_importance[attr], params.ipa_sd, rng.standard_normal(m))
        z = 0.5 * pq_lv + math.sqrt(0.75) * rng.standard_normal(m)
        items[f"perf_{attr}"] = _likert(params.ipa_performance[attr], params.ipa_sd, z)
        planted = KANO_CATEGORIES.index(params.kano[attr])
        noise = _choice(rng, [params.kano_noise.get(c, 0.0) for c in KANO_CATEGORIES], m)
        category = np.where(rng.random(m) < params.kano_share, planted, noise)
        f_ans, d_ans = _kano_pairs(rng, category)
        items[f"kano_f_{attr}"], items[f"kano_d_{attr}"] = f_ans, d_ans
    duration = np.maximum(
        np.round(params.duration_median_s * np.exp(params.duration_sigma * rng.standard_normal(m))), 90
    ).astype(np.int64)
    attention = np.full(m, 7, np.int64)

    # quality flags, disjoint, on responses that are not duplicates
    pool = rng.permutation(np.flatnonzero(~is_dup))
    counts = [round(s * m) for s in (params.speeder_share, params.straightliner_share, params.attention_fail_share)]
    cut = np.cumsum([0, *counts])
    speeders, straight, attn = (np.sort(pool[cut[i] : cut[i + 1]]) for i in range(3))
    duration[speeders] = rng.integers(15, 60, speeders.shape[0])
    grid_value = np.array([10, 8, 7, 5, 1])[_choice(rng, [0.4, 0.2, 0.15, 0.15, 0.1], straight.shape[0])]
    for item in FEEDS["surveys"].grid_columns:
        items[item][straight] = grid_value
    attention[attn] = np.array([1, 2, 3, 4, 5, 6, 8, 9, 10])[rng.integers(0, 9, attn.shape[0])]

    # comments by tone of the respondent's satisfaction
    sat = lv[:, LATENTS.index("SAT")]
    pools = [names.COMMENTS_NEGATIVE, names.COMMENTS_NEUTRAL, names.COMMENTS_POSITIVE, names.COMMENTS_SPECIAL]
    texts = [""] + [c for p in pools for c in p]
    first = np.cumsum([1] + [len(p) for p in pools])[:-1]
    tone = np.where(sat < -0.5, 0, np.where(sat > 0.5, 2, 1))
    tone = np.where(rng.random(m) < params.comment_special_share, 3, tone)
    sizes = np.array([len(p) for p in pools])
    comment = first[tone] + (rng.random(m) * sizes[tone]).astype(np.int64)
    comment = np.where(rng.random(m) < params.comment_share, comment, 0)
    rid = _response_ids(rng, m)
    order = np.lexsort((np.arange(m), sec))
    return dict(
        waves=waves,
        person=person,
        wave=wave,
        sec=sec,
        day=day,
        record=record,
        items=items,
        duration=duration,
        attention=attention,
        comment=comment,
        comment_texts=texts,
        rid=rid,
        order=order,
        is_dup=is_dup,
        dup_original=dup_src,
        speeders=speeders,
        straight=straight,
        attn=attn,
        lv=lv,
    )


def _kano_pairs(rng: np.random.Generator, category: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A (functional, dysfunctional) answer pair per response that the Kano table maps to `category`."""
    cells: dict[int, list[tuple[int, int]]] = {k: [] for k in range(len(KANO_CATEGORIES))}
    for f, row in enumerate(KANO_TABLE):
        for d, cat in enumerate(row):
            cells[KANO_CATEGORIES.index(cat)].append((f + 1, d + 1))
    f_ans = np.empty(category.shape[0], np.int64)
    d_ans = np.empty(category.shape[0], np.int64)
    for k, options in cells.items():
        mask = category == k
        pick = np.asarray(options)[rng.integers(0, len(options), int(mask.sum()))]
        f_ans[mask], d_ans[mask] = pick[:, 0], pick[:, 1]
    return f_ans, d_ans


_ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


def _response_ids(rng: np.random.Generator, m: int) -> _Block:
    """Survey-tool response ids like R_3kT9xQ2mWb7LpZa (unique)."""
    data = np.empty((m, 17), np.uint8)
    data[:, 0], data[:, 1] = ord("R"), ord("_")
    data[:, 2:] = _ALNUM[rng.integers(0, 62, (m, 15))]
    keys = data.view("V17")[:, 0]
    while np.unique(keys).shape[0] < m:  # practically never
        _, first = np.unique(keys, return_index=True)
        again = np.setdiff1d(np.arange(m), first)
        data[again, 2:] = _ALNUM[rng.integers(0, 62, (again.shape[0], 15))]
        keys = data.view("V17")[:, 0]
    return _Block(data, np.full(m, 17, np.int64))


def _surveys_feed(world: _World, s: dict[str, Any]) -> _Feed:
    o = s["order"]
    m = o.shape[0]
    items = s["items"]
    known = s["record"][o] >= 0
    contract = FEEDS["surveys"]
    texts = s["comment_texts"]
    newline_count = np.array([t.count("\n") for t in texts])
    small = _number_table(11, suffix=",")
    waves = [w for w, _, _ in s["waves"]] or [""]
    by_column: dict[str, list[_Part]] = {
        "response_id": [_block_part(_take(s["rid"], o), ",")],
        "customer_ref": _ref_parts(world, np.maximum(s["record"][o], 0), ",", known),
        "survey_id": [_text(["SAT"], np.zeros(m, np.int64), ",")],
        "version": [_text(["1", "2"], (s["wave"][o] >= world.params.version2_from_wave).astype(np.int64), ",")],
        "wave": [_text(waves, s["wave"][o], ",")],
        "started_at": _ts_parts(s["sec"][o], world.start, ","),
        "duration_s": _int_parts(s["duration"][o], ","),
        "complaint": [_text(["false", "true"], items["complaint"][o], ",")],
        "attention_check": [_Part(small.data, small.lens, s["attention"][o])],
        "comment": [_text([_quote_minimal(t) for t in texts], s["comment"][o], "\n")],
    }
    for name in contract.column_names:
        if name not in by_column:
            by_column[name] = [_Part(small.data, small.lens, items[name][o])]
    parts = [p for c in contract.column_names for p in by_column[c]]
    nl = newline_count[s["comment"][o]] if m else np.zeros(0, np.int64)
    return _Feed(parts, s["day"][o], nl if nl.any() else None)


def _interactions(world: _World, rng: np.random.Generator) -> dict[str, Any]:
    params = world.params
    n = world.n
    active_end = np.where(world.alive, world.days, np.nan_to_num(world.death_t, nan=world.days))
    span = np.maximum(active_end - world.birth_t, 0)
    mult = np.where(world.kind != 0, params.org_interaction_multiplier, 1.0)
    people, times, types = [], [], []
    for k, name in enumerate(INTERACTION_TYPES):
        latent, effect = params.interaction_effects[name]
        rate = params.interaction_rates[name] * mult * np.exp(effect * world.lv[:, LATENTS.index(latent)])
        count = rng.poisson(rate * span)
        who = np.repeat(np.arange(n), count)
        people.append(who)
        times.append(world.birth_t[who] + span[who] * rng.random(who.shape[0]))
        types.append(np.full(who.shape[0], k))
    person = np.concatenate(people)
    sec = _to_seconds(np.concatenate(times))
    kind = np.concatenate(types)
    order = np.argsort(sec, kind="stable")
    person, sec, kind = person[order], sec[order], kind[order]
    org = world.kind[person] != 0
    channel = np.where(
        org,
        _choice(rng, (0.35, 0.35, 0.1, 0.05, 0.05, 0.1), person.shape[0]),
        _choice(rng, (0.2, 0.08, 0.1, 0.17, 0.1, 0.35), person.shape[0]),
    )
    record = world.pick_record(rng, person, sec // SECONDS_PER_DAY)
    return dict(person=person, sec=sec, type=kind, channel=channel, record=record)


def _interactions_feed(world: _World, ix: dict[str, Any]) -> _Feed:
    m = ix["person"].shape[0]
    pairs = [f"{t},{c}" for t in INTERACTION_TYPES for c in CONTACT_CHANNELS]
    parts = [
        *_id_parts("IX", world.shard.ids(np.arange(1, m + 1)), ","),
        *_ref_parts(world, ix["record"], ","),
        *_ts_parts(ix["sec"], world.start, ","),
        _text(pairs, ix["type"] * len(CONTACT_CHANNELS) + ix["channel"], "\n"),
    ]
    return _Feed(parts, ix["sec"] // SECONDS_PER_DAY)


# -- customers: names, phones, e-mails, tax ids -----------------------------------------------

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])
_ORGCODE_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])


def _tax_ids(world: _World, rng: np.random.Generator, who: np.ndarray) -> _Block:
    """18-character unified social credit codes with valid check characters."""
    m = who.shape[0]
    codes = np.array([int(c) for _, _, cities in names.REGIONS for _, c in cities])
    first_city = np.cumsum([0] + [len(c) for _, _, c in names.REGIONS])[:-1]
    city_code = codes[first_city[world.region[who]] + world.city[who]]
    v = np.zeros((m, 18), np.int64)
    gov = world.kind[who] == KINDS.index("government")
    v[:, 0] = np.where(gov, 1, 9)
    v[:, 1] = 1
    division = city_code * 100 + rng.integers(1, 13, m)
    v[:, 2:8] = _digit_matrix(division, 6, True)[0] - 48
    body = _scramble(world.shard.first_person + who, 10**8, 7_654_321, 13_579_246)
    v[:, 8:16] = _digit_matrix(body, 8, True)[0] - 48
    c9 = 11 - (v[:, 8:16] @ _ORGCODE_WEIGHTS) % 11
    v[:, 16] = np.where(c9 == 11, 0, np.where(c9 == 10, _USCC_CHARS.index("X"), c9))
    c18 = 31 - (v[:, :17] @ _USCC_WEIGHTS) % 31
    v[:, 17] = np.where(c18 == 31, 0, c18)
    data = np.frombuffer(_USCC_CHARS.encode(), np.uint8)[v]
    return _Block(np.ascontiguousarray(data), np.full(m, 18, np.int64))


def _individual_names(rng: np.random.Generator, m: int) -> tuple[_Block, tuple[np.ndarray, ...]]:
    """m Chinese personal names (surname + one or two given characters) and the draws they
    are made of (surname, first and second given character, two-character flag), from
    which pinyin e-mail addresses are built."""
    sur = _strings([s for s, _, _ in names.SURNAMES])
    giv = _strings([c for c, _ in names.GIVEN_CHARS])
    s = _choice(rng, [w for _, _, w in names.SURNAMES], m)
    g1 = rng.integers(0, giv.data.shape[0], m)
    g2 = rng.integers(0, giv.data.shape[0], m)
    two = rng.random(m) < 0.65
    return _concat([_take(sur, s), _take(giv, g1), _blank(_take(giv, g2), two)], m), (s, g1, g2, two)


def _org_names(
    rng: np.random.Generator, okind: np.ndarray, region: np.ndarray, city_idx: np.ndarray
) -> tuple[_Block, tuple[np.ndarray, ...]]:
    """Names of organisations (enterprise: city + brand + industry word + legal form;
    government: city + 市 + body; partner: city + brand + trade word + 有限公司) and the
    draws they are made of (brand characters b1 and b2, enterprise industry, government body)."""
    m = okind.shape[0]
    cities = [c for _, _, cs in names.REGIONS for c, _ in cs]
    first_city = np.cumsum([0] + [len(c) for _, _, c in names.REGIONS])[:-1]
    city = _take(_strings(cities), first_city[region] + city_idx)
    brand = _strings([c for c, _ in names.BRAND_CHARS])
    b1 = rng.integers(0, brand.data.shape[0], m)
    b2 = rng.integers(0, brand.data.shape[0], m)
    industry = _choice(rng, [w for _, w in names.INDUSTRIES.values()], m)
    word = _take(_strings([w for w, _ in names.INDUSTRIES.values()]), industry)
    suffix = _take(
        _strings([s for s, _ in names.ENTERPRISE_SUFFIXES]), _choice(rng, [w for _, w in names.ENTERPRISE_SUFFIXES], m)
    )
    partner_word = _take(_strings(names.PARTNER_WORDS), rng.integers(0, len(names.PARTNER_WORDS), m))
    body = rng.integers(0, len(names.GOVERNMENT_BODIES), m)
    gov_name = _concat([city, _const("市"), _take(_strings([b for b, _ in names.GOVERNMENT_BODIES]), body)], m)
    ent_name = _concat([city, _take(brand, b1), _take(brand, b2), word, suffix], m)
    par_name = _concat([city, _take(brand, b1), _take(brand, b2), partner_word, _const("有限公司")], m)
    sub = [
        (okind == KINDS.index(k), blk)
        for k, blk in (("enterprise", ent_name), ("government", gov_name), ("partner", par_name))
    ]
    return _select(m, [(mask, _take(blk, np.flatnonzero(mask))) for mask, blk in sub]), (b1, b2, industry, body)


def _org_industry(rng: np.random.Generator, okind: np.ndarray, industry: np.ndarray, body: np.ndarray) -> np.ndarray:
    """Industry code index (into INDUSTRIES + public_administration) of organisations:
    a government body's own, a trade for partners (resellers), else the enterprise's."""
    industries = list(names.INDUSTRIES)
    gov_industry = np.array(
        [industries.index(i) if i in industries else len(industries) for _, i in names.GOVERNMENT_BODIES]
    )
    resellers = np.array([industries.index(i) for i in ("wholesale", "retail", "logistics")])
    partner_industry = resellers[_choice(rng, (0.6, 0.25, 0.15), okind.shape[0])]
    return np.select(
        [okind == KINDS.index("government"), okind == KINDS.index("partner")],
        [gov_industry[body], partner_industry],
        industry,
    )


def _person_names(world: _World, rng: np.random.Generator) -> tuple[_Block, _Block]:
    """Name (Chinese) and lower-case e-mail per person."""
    n = world.n
    kind = world.kind
    pid = world.shard.first_person + np.arange(n)
    sur_py = _strings([p for _, p, _ in names.SURNAMES])
    giv_py = _strings([p for _, p in names.GIVEN_CHARS])
    unique = _int_block(_scramble(pid, 10 ** max(5, len(str(world.shard.persons)) + 1), 7919, 4321))
    cases: list[tuple[np.ndarray, _Block]] = []
    mails: list[tuple[np.ndarray, _Block]] = []

    ind = np.flatnonzero(kind == 0)
    m = ind.shape[0]
    name, (s, g1, g2, two) = _individual_names(rng, m)
    cases.append((ind, name))
    domains = [d for d, _ in names.MAIL_DOMAINS]
    dom = _choice(rng, [w for _, w in names.MAIL_DOMAINS], m)
    qq = dom == domains.index("qq.com")
    local = _concat([_take(giv_py, g1), _blank(_take(giv_py, g2), two), _take(sur_py, s), _take(unique, ind)], m)
    qq_local = _int_block(10_000_000 + _scramble(pid[ind], 10**9, 104_729, 55_555))
    local = _select(m, [(~qq, _take(local, np.flatnonzero(~qq))), (qq, _take(qq_local, np.flatnonzero(qq)))])
    mails.append((ind, _concat([local, _const("@"), _take(_strings(domains), dom)], m)))

    org = np.flatnonzero(kind != 0)
    m = org.shape[0]
    okind = kind[org]
    org_name, (b1, b2, industry, body) = _org_names(rng, okind, world.region[org], world.city[org])
    cases.append((org, org_name))
    brand_py = _strings([p for _, p in names.BRAND_CHARS])
    role = _take(_strings(names.ORG_MAIL_ROLES), rng.integers(0, len(names.ORG_MAIL_ROLES), m))
    mails.append(
        (
            org,
            _concat(
                [role, _const("@"), _take(brand_py, b1), _take(brand_py, b2), _take(unique, org), _const(".com.cn")], m
            ),
        )
    )
    ind_code = np.full(n, -1)
    ind_code[org] = _org_industry(rng, okind, industry, body)
    world.extra["industry"] = ind_code
    return _select(n, cases), _select(n, mails)


def _customers_feed(world: _World, rng: np.random.Generator) -> _Feed:
    params = world.params
    n = world.n
    # records in the order they are delivered: by signup day, then system and number
    o = np.lexsort((world.rec_num, world.rec_system, world.rec_day))
    rp = world.rec_person[o]
    system = world.rec_system[o]
    nrec = rp.shape[0]
    name, mail = _person_names(world, rng)
    # phone: one mobile number per person, formatted differently per record
    pref = _strings(names.MOBILE_PREFIXES).data
    person_digits = np.concatenate(
        [
            pref[rng.integers(0, len(names.MOBILE_PREFIXES), n)],
            _digit_matrix(_scramble(world.shard.first_person + np.arange(n), 10**8, 104_723, 98_765), 8, True)[0],
        ],
        axis=1,
    )
    # kept for the leads of persons who became customers (they carry the same contacts)
    world.extra.update(person_name=name, person_mail=mail, person_phone=person_digits)
    digits = person_digits[rp]
    sp, dash = np.full((nrec, 1), ord(" "), np.uint8), np.full((nrec, 1), ord("-"), np.uint8)
    formats = [
        digits,
        np.concatenate([digits[:, :3], sp, digits[:, 3:7], sp, digits[:, 7:]], axis=1),
        np.concatenate(
            [
                np.broadcast_to(np.frombuffer(b"+86-", np.uint8), (nrec, 4)),
                digits[:, :3],
                dash,
                digits[:, 3:7],
                dash,
                digits[:, 7:],
            ],
            axis=1,
        ),
        np.concatenate([np.broadcast_to(np.frombuffer(b"(+86)", np.uint8), (nrec, 5)), digits], axis=1),
    ]
    fmt = _choice(rng, (0.55, 0.20, 0.15, 0.10), nrec)
    phone = _select(
        nrec,
        [(fmt == k, _Block(f[fmt == k], np.full(int((fmt == k).sum()), f.shape[1]))) for k, f in enumerate(formats)],
    )
    phone = _blank(phone, rng.random(nrec) >= params.phone_missing)
    email = _take(mail, rp)
    case = _choice(rng, (0.6, 0.2, 0.2), nrec)
    email = _upper(_upper(email, case == 2), case == 1, first_only=True)
    email = _blank(email, rng.random(nrec) >= params.email_missing)
    org = world.kind[rp] != 0
    orgs = np.flatnonzero(world.kind != 0)
    tax_person = np.zeros((n, 18), np.uint8)
    tax_person[orgs] = _tax_ids(world, rng, orgs).data
    web_store = np.isin(system, [SYSTEMS.index("web"), SYSTEMS.index("store")])
    has_tax = org & ~(web_store & (rng.random(nrec) < params.tax_id_missing))
    tax = _blank(_Block(tax_person[rp], np.full(nrec, 18, np.int64)), has_tax)
    industries = [*names.INDUSTRIES, "public_administration"]
    # organisations' size: the same figures on every record of the organisation
    emp_median = np.array([0, 50, 150, 20])[world.kind]
    employees = np.maximum(np.round(emp_median * np.exp(1.1 * rng.standard_normal(n))), 1).astype(np.int64)
    revenue = np.round(employees * 400_000 * np.exp(0.6 * rng.standard_normal(n)) / 1000).astype(np.int64) * 1000
    has_size = org & (rng.random(nrec) >= 0.05)
    channel = np.where(
        org,
        _choice(rng, (0, 0.15, 0, 0.15, 0.2, 0.35, 0.15), nrec),
        _choice(rng, (0.35, 0.25, 0.25, 0.15, 0, 0, 0), nrec),
    )
    median_cost = np.array([params.acquisition_cost_median[c] for c in ACQUISITION_CHANNELS], np.float64)[channel]
    cost = np.round(median_cost * 100 * np.exp(0.6 * rng.standard_normal(nrec))).astype(np.int64)
    parts = [
        *_ref_parts(world, o, ","),
        _text(SYSTEMS, system, ","),
        _block_part(_take(name, rp), ","),
        _block_part(phone, ","),
        _block_part(email, ","),
        _block_part(tax, ","),
        _text(KINDS, world.kind[rp], ","),
        _text([r for r, _, _ in names.REGIONS], world.region[rp], ","),
        _text(industries, np.maximum(world.extra["industry"][rp], 0), ",", org),
        *_int_parts(employees[rp], ",", has_size),
        *_money_parts(revenue[rp] * 100, ",", has_size),
        *_date_parts(world.rec_day[o], world.start, ","),
        _text(ACQUISITION_CHANNELS, channel, ","),
        *_money_parts(cost, "\n"),
    ]
    inverse = np.empty(nrec, np.int64)
    inverse[o] = np.arange(nrec)
    world.extra["acquisition_channel"] = channel[inverse]
    world.extra["acquisition_cost"] = cost[inverse]
    return _Feed(parts, world.rec_day[o])


# -- leads: prospects with planted MAN evidence ----------------------------------------------

#: MAN code by 4*money + 2*authority + need (upper case = the condition holds)
MAN_CODES: tuple[str, ...] = ("man", "maN", "mAn", "mAN", "Man", "MaN", "MAn", "MAN")
_ROLE = {r: i for i, r in enumerate(CONTACT_ROLES)}
_NEED = {v: i for i, v in enumerate(NEED_LEVELS)}
_DECIDERS = np.array([_ROLE[r] for r in ("owner", "executive", "purchasing_manager")])


def _man_index(money: np.ndarray, authority: np.ndarray, need: np.ndarray) -> np.ndarray:
    return 4 * money.astype(np.int64) + 2 * authority.astype(np.int64) + need.astype(np.int64)


def _leads(world: _World, rng: np.random.Generator) -> dict[str, Any]:
    """Leads with planted MAN evidence, their contacts (converted leads share a future
    customer's phone and e-mail) and at most one restatement each."""
    params = world.params
    n, days = world.n, world.days
    day = np.repeat(np.arange(days), rng.poisson(params.leads_per_day_per_1000 * n / 1000, days))
    m = day.shape[0]
    sec = np.sort(day * SECONDS_PER_DAY + _diurnal(rng.random(m)))  # lead ids in order of creation
    day = sec // SECONDS_PER_DAY

    # converted: a person whose first purchase falls in the window after the lead (one lead per person)
    birth_day = np.floor(world.birth_t).astype(np.int64)
    by_birth = np.argsort(birth_day, kind="stable")
    lo = np.searchsorted(birth_day[by_birth], day + 1)
    hi = np.searchsorted(birth_day[by_birth], day + params.lead_conversion_days + 1)
    want = (rng.random(m) < params.lead_converted_share) & (hi > lo)
    pick = np.minimum(lo + (rng.random(m) * (hi - lo)).astype(np.int64), n - 1)
    person = np.where(want, by_birth[pick], -1)
    conv = np.flatnonzero(person >= 0)
    first = conv[np.unique(person[conv], return_index=True)[1]]
    person = np.where(np.isin(np.arange(m), first), person, -1)
    converted = person >= 0
    who = np.maximum(person, 0)

    kind = np.where(converted, world.kind[who], _choice(rng, [params.lead_kind_shares.get(k, 0.0) for k in KINDS], m))
    region = np.where(converted, world.region[who], _choice(rng, [w for _, w, _ in names.REGIONS], m))
    n_cities = np.array([len(c) for _, _, c in names.REGIONS])
    city = np.where(converted, world.city[who], (rng.random(m) * n_cities[region]).astype(np.int64))
    source = _choice(rng, [params.lead_source_shares.get(s, 0.0) for s in LEAD_SOURCES], m)

    # names: `drawn` is an individual prospect's own name and an organisation's contact person;
    # an individual is their own contact while they hold the authority, else a stand-in is
    drawn, (s, g1, g2, two) = _individual_names(rng, m)
    stand_in, _ = _individual_names(rng, m)
    own_org = np.flatnonzero(~converted & (kind != 0))
    org_name, (_, _, industry, body) = _org_names(rng, kind[own_org], region[own_org], city[own_org])
    industry_code = np.full(m, -1)
    industry_code[own_org] = _org_industry(rng, kind[own_org], industry, body)
    industry_code = np.where(converted, world.extra["industry"][who], industry_code)
    conv_idx = np.flatnonzero(converted)
    own_ind = np.flatnonzero(~converted & (kind == 0))
    organisation = _select(
        m,
        [
            (own_ind, _take(drawn, own_ind)),
            (own_org, org_name),
            (conv_idx, _take(world.extra["person_name"], person[conv_idx])),
        ],
    )

    # contacts: a converted lead's are the customer's; the others' match no customer record
    pref = _strings(names.MOBILE_PREFIXES).data
    own_phone = np.concatenate(
        [
            pref[rng.integers(0, len(names.MOBILE_PREFIXES), m)],
            # after every person's number: the whole population, then the leads of all shards
            _digit_matrix(
                _scramble(world.shard.persons + world.shard.ids(np.arange(1, m + 1)) - 1, 10**8, 104_723, 98_765),
                8,
                True,
            )[0],
        ],
        axis=1,
    )
    digits = np.where(converted[:, None], world.extra["person_phone"][who], own_phone)
    dash = np.full((m, 1), ord("-"), np.uint8)
    dashed = np.concatenate([digits[:, :3], dash, digits[:, 3:7], dash, digits[:, 7:]], axis=1)
    fmt = rng.random(m) < 0.3
    phone = _select(m, [(~fmt, _Block(digits[~fmt], np.full(int((~fmt).sum()), 11))),
                        (fmt, _Block(dashed[fmt], np.full(int(fmt.sum()), 13)))])  # fmt: skip
    domains = [d for d, _ in names.MAIL_DOMAINS]
    dom = _choice(rng, [w for _, w in names.MAIL_DOMAINS], m)
    giv_py = _strings([p for _, p in names.GIVEN_CHARS])
    # a dot in the local part: customers' addresses never have one, so no accidental match
    own_mail = _concat(
        [
            _take(giv_py, g1),
            _blank(_take(giv_py, g2), two),
            _const("."),
            _take(_strings([p for _, p, _ in names.SURNAMES]), s),
            _int_block(rng.integers(1, 1000, m)),
            _const("@"),
            _take(_strings(domains), dom),
        ],
        m,
    )
    own = np.flatnonzero(~converted)
    email = _select(m, [(own, _take(own_mail, own)), (conv_idx, _take(world.extra["person_mail"], person[conv_idx]))])
    has_phone = rng.random(m) >= params.lead_phone_missing
    has_email = rng.random(m) >= params.lead_email_missing
    has_phone |= converted & ~has_email

    # MAN evidence of the first version
    shares = params.lead_man_shares
    has_m, has_a, has_n = (rng.random(m) < shares.get(c, 0.0) for c in ("money", "authority", "need"))
    threshold = round(params.lead_budget_threshold * 100)  # cents

    def above(spread: float) -> np.ndarray:  # budgets at or above the threshold, whole thousands of CNY
        return (np.ceil(threshold * np.exp(rng.uniform(0, spread, m)) / 100_000) * 100_000).astype(np.int64)

    via_budget = has_m & (rng.random(m) < params.lead_budget_share)
    below = (np.floor(threshold * rng.uniform(0.02, 0.9, m) / 10_000) * 10_000).astype(np.int64)
    budget = np.where(via_budget, above(2.0), below)
    has_budget = via_budget | (rng.random(m) >= params.lead_budget_missing)
    via_rating = has_m & ~via_budget
    rating = np.select([via_rating, via_budget], [rng.integers(0, 2, m), rng.integers(0, 5, m)], rng.integers(2, 5, m))
    has_rating = via_rating | (rng.random(m) >= params.lead_rating_missing)
    ind = kind == 0
    decider = np.where(ind, _ROLE["owner"], _DECIDERS[_choice(rng, (0.2, 0.4, 0.4), m)])
    other = np.where(ind, _choice(rng, (0, 0, 0, 0, 0.2, 0.8), m), _choice(rng, (0, 0, 0, 0.45, 0.35, 0.2), m))
    role = np.where(has_a, decider, other)
    quote_only = has_n & (rng.random(m) < 0.25)
    need = np.where(
        has_n & ~quote_only,
        np.where(rng.random(m) < 0.25, _NEED["urgent"], _NEED["stated_need"]),
        np.where(rng.random(m) < 0.7, _NEED["interest"], _NEED["none"]),
    )
    quote = quote_only | (has_n & (rng.random(m) < 0.4))

    # one restatement: a missing condition appears (at random among the missing), or M+A+N firms up
    delay_lo, delay_hi = params.lead_restate_days
    restate_day = day + rng.integers(delay_lo, delay_hi + 1, m)
    restated = (rng.random(m) < params.lead_restated_share) & (restate_day < days)
    missing = np.stack([~has_m, ~has_a, ~has_n], axis=1)
    change = np.where(missing.any(axis=1), (rng.random((m, 3)) * missing).argmax(axis=1), 3)
    budget2, has_budget2, role2, need2, quote2 = (
        budget.copy(),
        has_budget.copy(),
        role.copy(),
        need.copy(),
        quote.copy(),
    )
    new_budget = above(1.0)
    up = change == 0
    budget2[up], has_budget2[up] = new_budget[up], True
    role2[change == 1] = decider[change == 1]
    need2[change == 2] = _NEED["stated_need"]
    firm = change == 3
    more_need = firm & (need != _NEED["urgent"])
    need2[more_need] = _NEED["urgent"]
    more_quote = firm & ~more_need & ~quote
    quote2[more_quote] = True
    raise_budget = firm & ~more_need & ~more_quote
    budget2[raise_budget] = np.where(has_budget, budget + 100_000, new_budget)[raise_budget]  # +1000 CNY
    has_budget2[raise_budget] = True
    first_code = _man_index(has_m, has_a, has_n)
    final_code = np.where(restated, _man_index(has_m | (change == 0), has_a | (change == 1), has_n | (change == 2)),
                          first_code)  # fmt: skip

    # rows: every first version, then the restatements, in delivery order
    again = np.flatnonzero(restated)
    lead = np.concatenate([np.arange(m), again])
    version = np.concatenate([np.zeros(m, np.int64), np.ones(again.shape[0], np.int64)])
    row_sec = np.concatenate([sec, restate_day[again] * SECONDS_PER_DAY + _diurnal(rng.random(again.shape[0]))])
    order = np.lexsort((np.arange(lead.shape[0]), row_sec))
    lead, version, row_sec = lead[order], version[order], row_sec[order]
    later = version == 1

    def of_row(first_value: np.ndarray, second_value: np.ndarray) -> np.ndarray:
        return np.where(later, second_value[lead], first_value[lead])

    return dict(
        n=m,
        sec=sec,
        day=day,
        person=person,
        kind=kind,
        region=region,
        source=source,
        industry=industry_code,
        organisation=organisation,
        contact=drawn,
        stand_in=stand_in,
        phone=_blank(phone, has_phone),
        email=_blank(email, has_email),
        first_code=first_code,
        final_code=final_code,
        restated=restated,
        restate_day=restate_day,
        row_lead=lead,
        row_day=row_sec // SECONDS_PER_DAY,
        row_budget=of_row(budget, budget2),
        row_has_budget=of_row(has_budget, has_budget2),
        row_rating=rating[lead],
        row_has_rating=has_rating[lead],
        row_role=of_row(role, role2),
        row_need=of_row(need, need2),
        row_quote=of_row(quote, quote2),
    )


def _leads_feed(world: _World, ld: dict[str, Any]) -> _Feed:
    lead = ld["row_lead"]
    industries = [*names.INDUSTRIES, "public_administration"]
    industry = ld["industry"][lead]
    individual = ld["kind"][lead] == 0
    own = individual & np.isin(ld["row_role"], _DECIDERS)  # an individual deciding for themself
    stand_in = individual & ~own
    contact = _select(
        lead.shape[0],
        [
            (own, _take(ld["organisation"], lead[own])),
            (stand_in, _take(ld["stand_in"], lead[stand_in])),
            (~individual, _take(ld["contact"], lead[~individual])),
        ],
    )
    parts = [
        *_id_parts("LD", world.shard.ids(lead + 1), ","),
        *_ts_parts(ld["sec"][lead], world.start, ","),
        _text(LEAD_SOURCES, ld["source"][lead], ","),
        _block_part(_take(ld["organisation"], lead), ","),
        _block_part(contact, ","),
        _block_part(_take(ld["phone"], lead), ","),
        _block_part(_take(ld["email"], lead), ","),
        _text(KINDS, ld["kind"][lead], ","),
        _text([r for r, _, _ in names.REGIONS], ld["region"][lead], ","),
        _text(industries, np.maximum(industry, 0), ",", industry >= 0),
        *_money_parts(ld["row_budget"], ",", ld["row_has_budget"]),
        _text(CREDIT_RATINGS, ld["row_rating"], ",", ld["row_has_rating"]),
        _text(CONTACT_ROLES, ld["row_role"], ","),
        _text(NEED_LEVELS, ld["row_need"], ","),
        _text(["false", "true"], ld["row_quote"].astype(np.int64), "\n"),
    ]
    return _Feed(parts, ld["row_day"])


# ---------------------------------------------------------------------------------------------
# Planted defects
# ---------------------------------------------------------------------------------------------


def _csv_line(values: Sequence[str], delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(values)
    return out.getvalue()


def _parse(record: str) -> list[str]:
    return next(csv.reader(io.StringIO(record)))


_FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _shift_day(value: str, days: int) -> str:
    d = date.fromisoformat(value[:10]) + timedelta(days=days)
    return d.isoformat() + value[10:]


class _Ctx:
    """State shared by the defect planters of one feed: fresh keys, unknown references."""

    def __init__(
        self,
        feed: FeedContract,
        rng: np.random.Generator,
        world: _World,
        counters: dict[str, int],
        existing_ids: set[str],
    ) -> None:
        self.feed = feed
        self.rng = rng
        self.world = world
        self.counters = counters
        self.existing = existing_ids
        self.col = {c: i for i, c in enumerate(feed.column_names)}

    def fresh(self, prefix: str) -> str:
        self.counters[prefix] += 1
        if prefix == "R_":
            while True:
                rid = "R_" + "".join(chr(c) for c in _ALNUM[self.rng.integers(0, 62, 15)])
                if rid not in self.existing:
                    self.existing.add(rid)
                    return rid
        if prefix in SYSTEM_PREFIX.values():
            return f"{prefix}-{self.world.shard.ids(self.counters[prefix]):0{self.world.ref_width}d}"
        return f"{prefix}{self.world.shard.ids(self.counters[prefix]):0{ID_DIGITS}d}"

    def never(self, prefix: str) -> str:
        """An id of the usual shape that no row ever carries (counted down from the top)."""
        self.counters["never"] += 1
        if prefix in SYSTEM_PREFIX.values():
            return f"{prefix}-{10**self.world.ref_width - self.counters['never']:0{self.world.ref_width}d}"
        return f"{prefix}{10**ID_DIGITS - self.counters['never']:0{ID_DIGITS}d}"

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]


_KEY_PREFIX = {"orders": "SO", "payments": "INV", "surveys": "R_", "interactions": "IX", "leads": "LD"}
_MISSING = {
    "orders": ("product_id", "quantity", "unit_price", "currency", "channel", "customer_ref", "status"),
    "customers": ("name", "kind", "region", "source_system", "acquisition_channel", "acquisition_cost"),
    "payments": ("order_id", "amount", "due_date", "customer_ref"),
    "surveys": ("survey_id", "wave", "duration_s", "sat_1", "recommend", "complaint", "version"),
    "interactions": ("type", "channel", "customer_ref"),
    "leads": ("source", "organisation", "contact_name", "kind", "region", "contact_role", "need", "requested_quote"),
}
_CAST = {
    "orders": (
        ("quantity", "abc"),
        ("quantity", "two"),
        ("unit_price", "12.3.4"),
        ("discount", "N/A"),
        ("ordered_at", "{y}-02-30T10:15:00+08:00"),
    ),
    "customers": (("employees", "abc"), ("signup_date", "{y}-02-30"), ("acquisition_cost", "N/A")),
    "payments": (("amount", "abc"), ("invoice_date", "{y}-02-30"), ("due_date", "{y}-13-01")),
    "surveys": (
        ("duration_s", "abc"),
        ("sat_1", "seven"),
        ("complaint", "maybe"),
        ("started_at", "{y}-02-30T10:15:00+08:00"),
    ),
    "interactions": (("at", "{y}-02-30T10:15:00+08:00"), ("at", "{y}-13-01T09:00:00+08:00")),
    "leads": (
        ("created_at", "{y}-02-30T10:15:00+08:00"),
        ("declared_budget", "50k"),
        ("requested_quote", "maybe"),
    ),
}
_DOMAIN = {
    "orders": (
        (reasons.UNKNOWN_CURRENCY, "currency", "USD"),
        (reasons.UNKNOWN_CURRENCY, "currency", "XYZ"),
        (reasons.NON_POSITIVE_AMOUNT, "quantity", "0"),
        (reasons.NON_POSITIVE_AMOUNT, "quantity", "-1"),
        (reasons.NON_POSITIVE_AMOUNT, "unit_price", "-12.00"),
        (reasons.NON_POSITIVE_AMOUNT, "unit_price", "0.00"),
        (reasons.NON_POSITIVE_AMOUNT, "discount", "-5.00"),
        (reasons.INVALID_VALUE, "status", "shipped"),
        (reasons.INVALID_VALUE, "channel", "fax"),
        (reasons.INVALID_VALUE, "line_no", "0"),
    ),
    "customers": (
        (reasons.INVALID_VALUE, "source_system", "sap"),
        (reasons.INVALID_VALUE, "kind", "vip"),
        (reasons.INVALID_VALUE, "acquisition_channel", "tv"),
        (reasons.INVALID_VALUE, "employees", "-5"),
        (reasons.NON_POSITIVE_AMOUNT, "acquisition_cost", "-10.00"),
    ),
    "payments": ((reasons.NON_POSITIVE_AMOUNT, "amount", "0.00"), (reasons.NON_POSITIVE_AMOUNT, "amount", "-88.00")),
    "surveys": (
        (reasons.LIKERT_OUT_OF_RANGE, "sat_1", "11"),
        (reasons.LIKERT_OUT_OF_RANGE, "qual_2", "0"),
        (reasons.LIKERT_OUT_OF_RANGE, "recommend", "11"),
        (reasons.LIKERT_OUT_OF_RANGE, "kano_f_price", "6"),
        (reasons.LIKERT_OUT_OF_RANGE, "imp_staff", "0"),
        (reasons.INVALID_VALUE, "version", "0"),
        (reasons.INVALID_VALUE, "duration_s", "-5"),
    ),
    "interactions": ((reasons.INVALID_VALUE, "type", "refund"), (reasons.INVALID_VALUE, "channel", "fax")),
    "leads": (
        (reasons.INVALID_VALUE, "source", "tv_ad"),
        (reasons.INVALID_VALUE, "kind", "vip"),
        (reasons.INVALID_VALUE, "contact_role", "intern"),
        (reasons.INVALID_VALUE, "need", "desperate"),
        (reasons.INVALID_VALUE, "credit_rating", "AAA"),
        (reasons.NON_POSITIVE_AMOUNT, "declared_budget", "-5000.00"),
    ),
}
#: Mutable feeds whose conflicts are planted as two new records that disagree on this
#: column (a real record is never held back: orders refer to customers, and the leads'
#: MAN ground truth must hold on what is loaded).
_NEW_KEY_CONFLICT = {"customers": "acquisition_cost", "leads": "need"}
#: conflicting copy: column and how to change it to another *valid* value
_CONFLICT = {
    "orders": "channel",
    "payments": "amount",
    "surveys": "sat_1",
    "interactions": "channel",
}


class _Plan(NamedTuple):
    """One planted row: an extra record or an in-place rewrite of a real one."""

    row: int  # global index of the real row it copies, rewrites or follows
    text: str | None  # the record (with its newline); None for entries about a real row as is
    expected: str
    note: str
    mode: str  # "insert" (extra record at `slot`), "end" (extra, last), "rewrite", "mark" (real row as is)
    key: dict[str, str]  # the row's key values, NFKC-normalised
    slot: int = 0  # "insert": placed before the day's real record number `slot` (or at the end)


def _key_of(feed: FeedContract, values: list[str]) -> dict[str, str]:
    col = {c: i for i, c in enumerate(feed.column_names)}
    return {k: unicodedata.normalize("NFKC", values[col[k]]) if col[k] < len(values) else "" for k in feed.key}


def _fresh_key(ctx: _Ctx, v: list[str]) -> list[str]:
    """A copy of the row under a key no other row has."""
    v = list(v)
    name = ctx.feed.name
    if name == "orders":
        v[ctx.col["order_id"]] = ctx.fresh("RT" if v[ctx.col["status"]] == "returned" else "SO")
        v[ctx.col["line_no"]] = "1"
    elif name == "customers":
        v[0] = ctx.fresh(v[0][:3])
    else:
        v[0] = ctx.fresh(_KEY_PREFIX[name])
    return v


def _plant_row(kind: str, ctx: _Ctx, v: list[str], day: date) -> tuple[str, str, str, dict[str, str]] | None:
    """One defective copy of row `v` under a fresh key: (record, expected reason, note, key) or None."""
    w = _fresh_key(ctx, v)
    built = _defect_text(kind, ctx, w, day)
    return None if built is None else (*built, _key_of(ctx.feed, w))


def _defect_text(kind: str, ctx: _Ctx, w: list[str], day: date) -> tuple[str, str, str] | None:
    """Alter `w` (in place) to carry exactly one defect: (record text, expected reason, note)."""
    feed = ctx.feed
    col = ctx.col
    ev = feed.event_column
    is_ts = feed.column(ev).type == "timestamp"
    if kind == "malformed":
        # a broken line must not contain a quoted newline: the reader recovers line by line
        w[:] = ["" if "\n" in x else x for x in w]
        variant = ctx.pick(("missing_field", "extra_field"))
        if variant == "missing_field":
            return _csv_line(w[:-1]), reasons.MALFORMED_ROW, "one field missing (field count)"
        return _csv_line(w).rstrip("\n") + ",extra\n", reasons.MALFORMED_ROW, "one field too many"
    if kind == "quote":
        if any('"' in x or "," in x or "\n" in x for x in w):
            return None
        target = ctx.pick([c for c in feed.column_names[1:-1] if w[col[c]]])
        w[col[target]] = '"' + w[col[target]]
        return ",".join(w) + "\n", reasons.MALFORMED_ROW, f"unbalanced quote opening {target} (last record)"
    if kind == "missing":
        target = ctx.pick([c for c in _MISSING[feed.name] if w[col[c]]])
        w[col[target]] = ""
        return _csv_line(w), reasons.MISSING_REQUIRED, f"{target} empty"
    if kind == "cast":
        target, bad = ctx.pick(_CAST[feed.name])
        w[col[target]] = bad.format(y=day.year)
        return _csv_line(w), reasons.CAST_ERROR, f"{target} = {w[col[target]]!r}"
    if kind == "naive":
        local = w[col[ev]][:19]
        w[col[ev]] = local.replace("T", " ") if ctx.rng.random() < 0.5 else local
        return _csv_line(w), reasons.NAIVE_TIMESTAMP, f"{ev} without UTC offset"
    if kind.startswith("domain:"):
        options = [(r, c, x) for r, c, x in _DOMAIN[feed.name] if r == kind[7:]]
        reason, target, bad = ctx.pick(options)
        if target == "amount" and bad.startswith("-"):
            bad = "-" + w[col["amount"]]
        w[col[target]] = bad
        return _csv_line(w), reason, f"{target} = {bad}"
    if kind == "future":
        for c in (ev, *feed.checked_dates, *feed.range_only_dates):
            if w[col[c]]:
                w[col[c]] = _shift_day(w[col[c]], 3)
        if all(w[col[c]][:10] <= day.isoformat() for c in (ev, *feed.checked_dates) if w[col[c]]):
            # a restatement of an older record (leads): move its event past the file's day
            w[col[ev]] = (day + timedelta(days=3)).isoformat() + w[col[ev]][10:]
        return _csv_line(w), reasons.FUTURE_DATE, f"{ev} three days after the file's day"
    if kind == "ancient":
        w[col[ev]] = "1970-01-01T08:00:00+08:00" if is_ts else "1970-01-01"
        return _csv_line(w), reasons.DATE_OUT_OF_RANGE, f"{ev} = 1970-01-01"
    if kind == "orphan":
        w[col["order_id"]] = ctx.fresh("RT")
        w[col["status"]] = "returned"
        w[col["original_order_id"]] = ctx.never("SO")
        return _csv_line(w), reasons.ORPHAN_RETURN, "return of an order that never existed"
    if kind == "unknown_customer":
        w[col["customer_ref"]] = ctx.never(ctx.pick(list(SYSTEM_PREFIX.values())))
        return _csv_line(w), reasons.UNKNOWN_CUSTOMER, "customer_ref that no record has"
    raise ValueError(kind)


def _row_kinds(feed: FeedContract) -> list[str]:
    """The defect kinds that make sense for a feed (one reason each)."""
    kinds = ["malformed", "quote", "missing", "cast"]
    if feed.column(feed.event_column).type == "timestamp":
        kinds.append("naive")
    kinds += sorted({f"domain:{r}" for r, _, _ in _DOMAIN[feed.name]})
    kinds += ["future", "ancient", "conflict", "duplicate", "clean"]
    if feed.name == "orders":
        kinds.append("orphan")
    if feed.customer_column:
        kinds.append("unknown_customer")
    return kinds


def _clean_variant(ctx: _Ctx, v: list[str]) -> tuple[list[str], str] | None:
    """Rewrite a real row so it differs on the wire but is equal after NFKC and lower-casing."""
    col = ctx.col
    options = {
        "orders": (("quantity", "fullwidth"), ("order_id", "fullwidth"), ("category", "upper"), ("status", "title")),
        "customers": (("phone", "fullwidth"), ("employees", "fullwidth"), ("source_system", "upper")),
        "payments": (("amount", "fullwidth"), ("invoice_id", "fullwidth")),
        "surveys": (("sat_1", "fullwidth"), ("recommend", "fullwidth"), ("duration_s", "fullwidth")),
        "interactions": (("type", "title"), ("interaction_id", "fullwidth"), ("channel", "upper")),
        "leads": (("lead_id", "fullwidth"), ("source", "upper"), ("need", "title"), ("declared_budget", "fullwidth")),
    }[ctx.feed.name]
    usable = [(c, how) for c, how in options if v[col[c]]]
    if not usable:
        return None
    target, how = ctx.pick(usable)
    w = list(v)
    value = w[col[target]]
    w[col[target]] = {"fullwidth": value.translate(_FULLWIDTH), "upper": value.upper(), "title": value.title()}[how]
    return w, f"{target} = {w[col[target]]!r} ({'full-width digits' if how == 'fullwidth' else 'case'})"


def _conflict_copy(ctx: _Ctx, v: list[str]) -> list[str]:
    w = list(v)
    name = ctx.feed.name
    c = ctx.col[_CONFLICT[name]]
    if name == "payments":
        cents = round(float(w[c]) * 100) + 100
        w[c] = f"{cents // 100}.{cents % 100:02d}"
    elif name == "surveys":
        w[c] = str(int(w[c]) % 10 + 1)
    else:
        choices = ORDER_CHANNELS if name == "orders" else CONTACT_CHANNELS
        w[c] = ctx.pick([x for x in choices if x != w[c]])
    return w


def _plan_row_defects(
    feed: FeedContract,
    fd: _Feed,
    rate: float,
    ctx: _Ctx,
    start: date,
    reserved_days: set[int],
    victims_ok: np.ndarray | None,
) -> list[_Plan]:
    """Choose rows and defect kinds: about `rate` of the feed's rows, every kind at least once.

    Positions are chosen here too, so that writing the files needs no randomness."""
    if rate <= 0 or fd.n == 0:
        return []
    rng = ctx.rng
    kinds = _row_kinds(feed)
    n_ops = max(len(kinds), round(rate * fd.n))
    candidates = np.flatnonzero(~np.isin(fd.day, sorted(reserved_days)))
    if candidates.size == 0:
        return []
    bounds = np.searchsorted(fd.day, np.arange(int(fd.day.max()) + 2))
    sources = rng.choice(candidates, n_ops, replace=candidates.size < n_ops)
    used: set[int] = set()
    ops: list[tuple[str, int]] = []
    for i in range(n_ops):
        kind, src = kinds[i % len(kinds)], int(sources[i])
        if kind in ("conflict", "duplicate", "clean"):
            # these touch a real row, and each real row at most once
            for _ in range(50):
                if src not in used and (kind != "conflict" or victims_ok is None or victims_ok[src]):
                    break
                src = int(candidates[rng.integers(candidates.size)])
            else:
                continue
            used.add(src)
        ops.append((kind, src))
    rows = sorted({src for _, src in ops})
    texts = dict(zip(rows, fd.texts(np.array(rows, np.int64)), strict=True))
    quote_days: set[int] = set()
    plans: list[_Plan] = []

    def add(src: int, text: str | None, expected: str, note: str, key: dict[str, str], mode: str = "insert",
            after: bool = False) -> None:  # fmt: skip
        d = int(fd.day[src])
        count = int(bounds[d + 1] - bounds[d])
        low = src - int(bounds[d]) + 1 if after else 0
        slot = count if mode == "end" else int(rng.integers(low, count + 1))
        plans.append(_Plan(src, text, expected, note, mode, key, slot))

    for kind, src in ops:
        text = texts[src]
        v = _parse(text)
        day = start + timedelta(days=int(fd.day[src]))
        if kind == "duplicate":
            add(src, text, reasons.DEDUPLICATED, "exact copy of an earlier line", _key_of(feed, v), after=True)
        elif kind == "clean":
            res = _clean_variant(ctx, v)
            if res is not None:
                w, note = res
                add(src, _csv_line(w), "CLEAN", note, _key_of(feed, w), mode="rewrite")
        elif kind == "conflict" and feed.name in _NEW_KEY_CONFLICT:
            # two new records that disagree: a real record is never held back
            a = _fresh_key(ctx, v)
            b = list(a)
            column = _NEW_KEY_CONFLICT[feed.name]
            c = ctx.col[column]
            if column == "acquisition_cost":
                b[c] = f"{float(a[c]) + 1:.2f}"
            else:
                b[c] = ctx.pick([x for x in NEED_LEVELS if x != a[c]])
            note = f"two new records with the same {feed.key[0]} and different {column}"
            add(src, _csv_line(a), reasons.DUPLICATE_CONFLICT, note, _key_of(feed, a))
            add(src, _csv_line(b), reasons.DUPLICATE_CONFLICT, note, _key_of(feed, a))
        elif kind == "conflict":
            note = f"same key as a real row, {_CONFLICT[feed.name]} differs (both versions held back)"
            key = _key_of(feed, v)
            add(src, None, reasons.DUPLICATE_CONFLICT, note + " [original]", key, mode="mark")
            add(src, _csv_line(_conflict_copy(ctx, v)), reasons.DUPLICATE_CONFLICT, note + " [copy]", key)
        else:
            mode = "insert"
            if kind == "quote" and int(fd.day[src]) not in quote_days:
                mode = "end"
            built = _plant_row("malformed" if kind == "quote" and mode != "end" else kind, ctx, v, day)
            if built is None:  # unfit for an unbalanced quote (the row has quotes of its own)
                mode = "insert"
                built = _plant_row("malformed", ctx, v, day)
            assert built is not None
            if mode == "end":
                quote_days.add(int(fd.day[src]))
            text, expected, note, key = built
            add(src, text, expected, note, key, mode=mode)
    return plans


# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# Writing the landing zone
# ---------------------------------------------------------------------------------------------


def _header(feed: FeedContract) -> bytes:
    return (",".join(feed.column_names) + "\n").encode()


def _split_records(text: str, newlines: np.ndarray | None) -> list[str]:
    lines = text.split("\n")[:-1]
    if newlines is None or not newlines.any():
        return [ln + "\n" for ln in lines]
    out, i = [], 0
    for k in newlines.tolist():
        out.append("\n".join(lines[i : i + k + 1]) + "\n")
        i += k + 1
    return out


def _day_records(buf: np.ndarray, off: np.ndarray, a: int, b: int, newlines: np.ndarray | None) -> list[str]:
    text = buf[off[a] : off[b]].tobytes().decode("utf-8")
    return _split_records(text, None if newlines is None else newlines[a:b])


def _assemble_day(records: list[str], plans: Sequence[_Plan], first_row: int) -> tuple[list[str], list[int], list[int]]:
    """Apply a day's rewrites and insert its extra records at their planned slots.

    Returns the final records, the physical line each starts on (header = line 1,
    embedded newlines counted) and, per plan, the index of its record.
    """
    n = len(records)
    records = list(records)
    slots: list[list[int]] = [[] for _ in range(n + 1)]
    tail: list[int] = []
    marks: dict[int, int] = {}
    for k, p in enumerate(plans):
        if p.mode in ("rewrite", "mark"):
            marks[p.row - first_row] = k
            if p.mode == "rewrite":
                records[p.row - first_row] = p.text  # type: ignore[assignment]
        elif p.mode == "end":
            tail.append(k)
        else:
            slots[p.slot].append(k)
    final: list[str] = []
    where = [0] * len(plans)
    for i in range(n + 1):
        for k in slots[i]:
            where[k] = len(final)
            final.append(plans[k].text)  # type: ignore[arg-type]
        if i < n:
            if i in marks:
                where[marks[i]] = len(final)
            final.append(records[i])
    for k in tail:
        where[k] = len(final)
        final.append(plans[k].text)  # type: ignore[arg-type]
    starts, line = [], 2
    for rec in final:
        starts.append(line)
        line += rec.count("\n")
    return final, starts, where


_FILE_DEFECTS: tuple[tuple[str, str], ...] = (
    (reasons.ENCODING_ERROR, "undecodable"),
    (reasons.PARTIAL_FILE, "truncated"),
    (reasons.EMPTY_FILE, "empty"),
    (reasons.SCHEMA_MISMATCH, "extra_column"),
    (reasons.SCHEMA_MISMATCH, "missing_column"),
    (reasons.WRONG_DELIMITER, "semicolon"),
    (reasons.NOT_IN_MANIFEST, "unlisted"),
)
_BAD_BYTES = b"\xff\xfe\x00\x80\xff"


@dataclass
class _FilePlan:
    """Where the file-level problems go, filled feed by feed (see `_plan_files`)."""

    extras: dict[str, dict[int, list[tuple[str, int]]]] = field(default_factory=dict)  # feed -> day -> (kind, src)
    encodings: dict[str, dict[int, str]] = field(default_factory=dict)  # feed -> day -> codec
    reserved: dict[str, set[int]] = field(default_factory=dict)  # feed -> days kept free of row defects
    used: set[int] = field(default_factory=set)  # days that already hold a planted extra file


#: real files written in another encoding that must still load
_ENCODED_FEEDS = {"gb18030": ("customers", "surveys"), "utf-8-sig": ("orders", "payments", "interactions")}
#: Feeds that share the file-level problems round-robin, in the order they were planned
#: first. A feed added later gets a set of its own (one file per kind, one GB18030 file),
#: so that adding a feed moves no other feed's files.
_SHARED_FILE_FEEDS = ("customers", "orders", "payments", "surveys", "interactions")
_OWN_ENCODING = {"leads": "gb18030"}


def _plan_files(
    plan: _FilePlan, feed: str, nonempty: list[int], days: int, params: DemoParams, rng: np.random.Generator
) -> None:
    """Plan one feed's file-level problems: extra broken files (each kind in a handful of
    days, spread over the feeds and over different days), re-deliveries of earlier orders
    files, and real files written as GB18030 or with a BOM. Feeds are planned in FEEDS order."""
    extras: dict[int, list[tuple[str, int]]] = {}
    reserved: set[int] = set()
    encodings: dict[int, str] = {}
    if feed == "orders":
        sources = [d for d in nonempty if d < days - 1]
        for s in sorted(rng.permutation(sources)[: params.file_defects_per_kind].tolist()):
            reserved.add(s)
            extras.setdefault(int(rng.integers(s + 1, days)), []).append(("redelivery", s))
    if feed in _SHARED_FILE_FEEDS:
        slots = [kind for _, kind in _FILE_DEFECTS for _ in range(params.file_defects_per_kind)]
        kinds = slots[_SHARED_FILE_FEEDS.index(feed) :: len(_SHARED_FILE_FEEDS)]
    else:
        kinds = [kind for _, kind in _FILE_DEFECTS]
    for kind in kinds:
        options = [d for d in nonempty if d not in plan.used] or nonempty
        if options:
            d = int(options[int(rng.integers(len(options)))])
            plan.used.add(d)
            extras.setdefault(d, []).append((kind, d))
    for codec, targets in _ENCODED_FEEDS.items():
        for i in range(params.encoded_files):
            if targets[i % len(targets)] == feed:
                options = [d for d in nonempty if d not in encodings and d not in reserved]
                if options:
                    encodings[int(options[int(rng.integers(len(options)))])] = codec
    if feed in _OWN_ENCODING:
        options = [d for d in nonempty if d not in reserved]
        if options:
            encodings[int(options[int(rng.integers(len(options)))])] = _OWN_ENCODING[feed]
    plan.extras[feed], plan.reserved[feed], plan.encodings[feed] = extras, reserved, encodings


def _encode(text: str, codec: str | None) -> bytes:
    if codec == "utf-8-sig":
        return b"\xef\xbb\xbf" + text.encode("utf-8")
    return text.encode(codec or "utf-8")


class _FeedOutput:
    """Files, manifests and defect records of one feed (filled by the writer thread).

    A shard of a larger population tags its file names and keeps its manifest entries
    (`manifests`, by day) for the manifests that list every shard's files."""

    def __init__(self, out: Path, feed: FeedContract, shard: _Shard) -> None:
        self.out = out
        self.feed = feed
        self.tag = shard.tag
        self.manifests: dict[str, list[ManifestEntry]] | None = {} if shard.count > 1 else None
        self.defects: list[dict[str, Any]] = []
        self.files = 0
        self.bytes = 0
        self.rows = 0
        self.saved: dict[int, tuple[str, list[str]]] = {}  # re-delivery sources: day -> (file, records)
        self.saved_files: dict[str, pa.Buffer] = {}  # Parquet re-delivery sources: file -> bytes
        self.empty_parquet: pa.Buffer | None = None  # the Parquet file of a day without rows
        self.saved_tables: dict[int, pa.Table] = {}  # Parquet re-delivery sources: day -> rows
        self._entries: list[ManifestEntry] = []

    def write(
        self,
        folder: str,
        name: str,
        parts: Sequence[bytes | memoryview],
        rows: int,
        *,
        listed: bool = True,
        encoding: str | None = None,
        manifest: tuple[int, str] | None = None,
    ) -> None:
        h = hashlib.sha256()
        with open(os.path.join(folder, name), "wb") as f:
            for part in parts:
                f.write(part)
                h.update(part)
                self.bytes += len(part)
        self.files += 1
        if listed:
            rows, digest = manifest or (rows, h.hexdigest())
            self._entries.append(ManifestEntry(name, rows, digest, encoding))

    def defect(
        self, day: str, file: str, line: int | None, key: dict[str, str] | None, expected: str, note: str
    ) -> None:
        self.defects.append(
            {
                "feed": self.feed.name,
                "business_date": day,
                "file": file,
                "line": line,
                "key": key,
                "expected": expected,
                "note": note,
            }
        )

    def close_day(self, folder: str, day: str) -> None:
        if self.manifests is not None:
            self.manifests[day] = self._entries
        else:
            write_manifest(Path(folder), self._entries, feed=self.feed.name, day=day)
            self.files += 1
        self._entries = []


def _write_extra(fo: _FeedOutput, records: list[str], folder: str, ds: str, name: str, kind: str, origin: str) -> None:
    """One planted extra file in a day folder: a file-level defect, or a re-delivery of
    an earlier day's file (`records` are then that day's)."""
    feed = fo.feed
    header = _header(feed).decode()
    if kind == "redelivery":
        fo.write(folder, name, [(header + "".join(records)).encode()], len(records))
        line = 2
        for rec in records:
            fo.defect(
                ds, name, line, _key_of(feed, _parse(rec)), reasons.DEDUPLICATED, f"re-delivered copy of {origin}"
            )
            line += rec.count("\n")
        return
    records = records[:20]
    body = header + "".join(records)
    rows = len(records)
    listed, manifest = True, None
    if kind == "undecodable":
        raw = body.encode()
        data = raw[: len(raw) // 2] + _BAD_BYTES + raw[len(raw) // 2 :]
        reason, note = reasons.ENCODING_ERROR, "bytes that are neither UTF-8 nor GB18030 in the middle"
    elif kind == "truncated":
        raw = body.encode()
        manifest = (rows, hashlib.sha256(raw).hexdigest())
        cut = max(len(header) + 5, int(len(raw) * 0.6))
        while cut < len(raw) and raw[cut - 1 : cut] == b"\n":
            cut += 1
        data = raw[:cut]
        reason, note = reasons.PARTIAL_FILE, f"cut at byte {cut} of {len(raw)}; the manifest describes the full file"
    elif kind == "empty":
        data, rows = b"", 0
        reason, note = reasons.EMPTY_FILE, "0 bytes"
    elif kind == "extra_column":
        data = (header.rstrip("\n") + ",remark\n" + "".join(r[:-1] + ",\n" for r in records)).encode()
        reason, note = reasons.SCHEMA_MISMATCH, "extra column 'remark'"
    elif kind == "missing_column":
        drop = len(feed.column_names) - 2
        parsed = [_parse(r) for r in [header, *records]]
        data = "".join(_csv_line(v[:drop] + v[drop + 1 :]) for v in parsed).encode()
        reason, note = reasons.SCHEMA_MISMATCH, f"column {feed.column_names[drop]!r} missing"
    elif kind == "semicolon":
        data = "".join(_csv_line(_parse(r), ";") for r in [header, *records]).encode()
        reason, note = reasons.WRONG_DELIMITER, "semicolon-delimited"
    else:
        data, listed = body.encode(), False
        reason, note = reasons.NOT_IN_MANIFEST, "file not listed in the day's manifest"
    fo.write(folder, name, [data], rows, listed=listed, manifest=manifest)
    fo.defect(ds, name, None, None, f"FILE_REJECTED:{reason}", note)


def _write_days(
    fo: _FeedOutput,
    buf: np.ndarray,
    off: np.ndarray,
    newlines: np.ndarray | None,
    first: int,
    d0: int,
    d1: int,
    bounds: np.ndarray,
    plans: Mapping[int, list[_Plan]],
    files: _FilePlan | None,
    start: date,
) -> None:
    """Write the day folders d0..d1-1 of a feed from one rendered chunk (rows from `first`):
    the day's file, planted extra files, then the manifest. Runs in the writer thread."""
    feed = fo.feed
    header = _header(feed)
    encodings = files.encodings.get(feed.name, {}) if files else {}
    extras = files.extras.get(feed.name, {}) if files else {}
    keep = files.reserved.get(feed.name, set()) if files else set()
    for d in range(d0, d1):
        a, b = int(bounds[d]) - first, int(bounds[d + 1]) - first
        day = start + timedelta(days=d)
        ds = day.isoformat()
        folder = os.path.join(fo.out, feed.name, ds)
        os.makedirs(folder, exist_ok=True)
        name = f"{feed.name}_{day:%Y%m%d}{fo.tag}.csv"
        day_plans = plans.get(d, [])
        codec = encodings.get(d)
        day_extras = extras.get(d, [])
        records: list[str] = []
        if day_plans or codec or d in keep or any(kind != "redelivery" for kind, _ in day_extras):
            records = _day_records(buf, off, a, b, newlines)
        if not day_plans and codec is None:
            fo.write(folder, name, [header, memoryview(buf[off[a] : off[b]])], b - a)
            fo.rows += b - a
        else:
            final, starts, where = _assemble_day(records, day_plans, int(bounds[d]))
            fo.write(folder, name, [_encode(header.decode() + "".join(final), codec)], len(final), encoding=codec)
            fo.rows += len(final)
            for k, p in enumerate(day_plans):
                fo.defect(ds, name, starts[where[k]], p.key, p.expected, p.note)
            if codec:
                fo.defect(ds, name, None, None, "CLEAN_FILE", codec)
        if d in keep:
            fo.saved[d] = (f"{feed.name}/{ds}/{name}", records)
        for k, (kind, source) in enumerate(day_extras, start=2):
            origin, recs = fo.saved[source] if kind == "redelivery" else (name, records)
            _write_extra(fo, recs, folder, ds, f"{feed.name}_{day:%Y%m%d}_{k}{fo.tag}.csv", kind, origin)
        fo.close_day(folder, ds)


#: rows rendered at a time (whole days): small buffers that stay in cache and are recycled
CHUNK_ROWS = 1 << 16


def _stream_feed(
    pool: ThreadPoolExecutor,
    out: Path,
    feed: FeedContract,
    fd: _Feed,
    start: date,
    days: int,
    plans: Sequence[_Plan],
    files: _FilePlan | None,
    shard: _Shard,
) -> tuple[_FeedOutput, list[Future[None]]]:
    """Render a feed chunk by chunk on this thread while the writer thread writes the
    previous chunks (at most two chunks wait, so memory stays flat)."""
    fo = _FeedOutput(out, feed, shard)
    bounds = np.searchsorted(fd.day, np.arange(days + 1), side="left")
    by_day: dict[int, list[_Plan]] = {}
    for p in plans:
        by_day.setdefault(int(fd.day[p.row]), []).append(p)
    futures: list[Future[None]] = []
    d0 = 0
    while d0 < days:
        d1 = min(max(int(np.searchsorted(bounds, bounds[d0] + CHUNK_ROWS, side="right")) - 1, d0 + 1), days)
        i0, i1 = int(bounds[d0]), int(bounds[d1])
        buf, off = _render(fd.parts, slice(i0, i1))
        newlines = None if fd.newlines is None else fd.newlines[i0:i1]
        futures.append(pool.submit(_write_days, fo, buf, off, newlines, i0, d0, d1, bounds, by_day, files, start))
        if len(futures) > 2:
            futures[-3].result()
        d0 = d1
    return fo, futures


# ---------------------------------------------------------------------------------------------
# Writing the landing zone as Parquet
#
# The same parts, split into columns: every part table is cut at its separators (CSV quoting
# undone), so each contract column gets the sub-tables it is made of. A column that is one
# small table becomes an Arrow dictionary array straight from the per-row index (the writer
# stores its dictionary page as is); any other column is laid out by the byte engine into an
# Arrow string buffer with its offsets. Empty values are nulls. Days are slices of a chunk's
# table, so the only per-row Python is in days that hold planted defects.
# ---------------------------------------------------------------------------------------------

FORMATS: tuple[str, ...] = ("csv", "parquet")
#: rows turned into Arrow arrays at a time (whole days)
PARQUET_CHUNK_ROWS = 1 << 18
#: a one-table column with at most this many distinct values is written as a dictionary
PARQUET_DICTIONARY_MAX = 512
PARQUET_COMPRESSION = "snappy"
#: file-level problems that only a text file can have: not planted in Parquet mode
_TEXT_ONLY_FILE_DEFECTS = frozenset({"undecodable", "semicolon"})


def _fields_of(text: str) -> list[str]:
    """Split a CSV fragment at unquoted separators (',' and newline) and undo the quoting."""
    fields, cur, quoted = [], [], False
    for ch in text:  # per entry of a small dictionary table, never per row
        if ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch in ",\n" and not quoted:
            fields.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur))
    return [f[1:-1].replace('""', '"') if len(f) > 1 and f[0] == f[-1] == '"' else f for f in fields]


def _sub_part(table: np.ndarray, start: np.ndarray, length: np.ndarray, idx: np.ndarray | None) -> _Part | None:
    """Bytes start..start+length of every entry, as a zero-padded table (None if all empty)."""
    width = int(length.max(initial=0))
    if width == 0:
        return None
    cols = np.arange(width)
    if not start.any():
        data = table[:, :width].copy()
    else:
        data = np.take_along_axis(table, np.minimum(start[:, None] + cols, table.shape[1] - 1), axis=1)
    data[cols >= length[:, None]] = 0
    return _Part(np.ascontiguousarray(data), length.astype(np.int64), idx)


def _split_part(part: _Part) -> list[_Part | None]:
    """The fields a part's entries touch, one sub-part each (None where always empty): the
    first continues the current column, the last starts the next one. Tables are
    zero-padded, so a separator byte is always inside its entry."""
    table, lens, idx = part
    k = table.shape[0]
    used = np.ones(k, bool) if idx is None else np.bincount(idx, minlength=k) > 0
    if np.count_nonzero(table == ord('"')):
        if idx is None or k > 10_000:
            raise ValueError("quoted values are only supported in small dictionary tables")
        split = [_fields_of(table[i, : lens[i]].tobytes().decode("utf-8")) for i in range(k)]
        c = len(split[int(np.argmax(used))])
        if any(len(s) != c for s, u in zip(split, used.tolist(), strict=True) if u):
            raise ValueError("a part's entries must hold the same number of fields")
        split = [s if len(s) == c else [""] * c for s in split]  # unused odd entries: empty
        out: list[_Part | None] = []
        for j in range(c):
            block = _strings([s[j] for s in split])
            out.append(_Part(block.data, block.lens, idx) if block.lens.any() else None)
        return out
    sep = (table == ord(",")) | (table == ord("\n"))
    rows = np.arange(k)
    if idx is None and k and (lens > 0).all() and sep[rows, lens - 1].all() and np.count_nonzero(sep) == k:
        # a per-row block with the separator appended (the usual case): cut it off
        width = int(lens.max()) - 1
        data = table[:, :width].copy()
        inner = lens - 1 < width
        data[rows[inner], lens[inner] - 1] = 0
        return [_Part(data, lens - 1, None) if width else None, None]
    count = sep.sum(axis=1)
    c = int(count[used][0]) if used.any() else 0
    odd = count != c  # only entries no row uses may differ (a dictionary's unused empty value)
    if (odd & used).any():
        raise ValueError("a part's entries must hold the same number of fields")
    pos = np.zeros((k, c), np.int64)
    if c:
        pos[~odd] = np.nonzero(sep[~odd])[1].reshape(-1, c)  # row-major: each entry's separators in order
    starts = np.concatenate([np.zeros((k, 1), np.int64), pos + 1], axis=1)
    ends = np.concatenate([pos, lens[:, None]], axis=1)
    starts[odd], ends[odd] = 0, 0
    return [_sub_part(table, starts[:, j], ends[:, j] - starts[:, j], idx) for j in range(c + 1)]


class _Column(NamedTuple):
    """A contract column as the parts it is made of. A column that is one table of few
    distinct values has `dictionary` (those values) and `codes` (table entry -> dictionary
    index, -1 for the empty value); one that is another single table has `values` (its
    entries as an Arrow array)."""

    parts: list[_Part]
    dictionary: pa.Array | None = None
    codes: np.ndarray | None = None
    values: pa.Array | None = None


def _string_array(table: np.ndarray, lens: np.ndarray) -> pa.Array:
    """A zero-padded table as an Arrow string array (entries as they are, '' included)."""
    data = table[np.arange(table.shape[1]) < lens[:, None]]
    off = np.zeros(lens.shape[0] + 1, np.int64)
    np.cumsum(lens, out=off[1:])
    if off[-1] >= 2**31:
        raise ValueError("column chunk too large for 32-bit offsets")
    offsets = pa.py_buffer(off.astype(np.int32))
    return pa.Array.from_buffers(pa.string(), lens.shape[0], [None, offsets, pa.py_buffer(data)])


def _columns(names: Sequence[str], parts: Sequence[_Part]) -> list[_Column]:
    """The feed's parts regrouped into its columns (`names`, in order)."""
    pieces: list[list[_Part]] = [[] for _ in names]
    at = 0
    for part in parts:
        fields_ = _split_part(part)
        for j, sub in enumerate(fields_):
            if sub is not None:
                pieces[at + j].append(sub)
        at += len(fields_) - 1
    if at != len(pieces):
        raise ValueError(f"the parts hold {at} fields, not {len(pieces)} ({', '.join(names)})")
    out = []
    for col in pieces:
        if len(col) != 1 or col[0].idx is None:
            out.append(_Column(col))
            continue
        table, lens, _ = col[0]
        if table.shape[0] <= 4 * PARQUET_DICTIONARY_MAX:
            _, first, inverse = np.unique(_void(table), return_index=True, return_inverse=True)
            if first.shape[0] <= PARQUET_DICTIONARY_MAX:
                codes = np.where(lens > 0, inverse.reshape(-1), -1).astype(np.int32)
                out.append(_Column(col, _string_array(table[first], lens[first]), codes))
                continue
        out.append(_Column(col, values=_string_array(table, lens)))
    return out


def _with_nulls(values: pa.Array, valid: np.ndarray) -> pa.Array:
    """A string array (offset 0, no nulls) with the rows where `valid` is false set to null."""
    nulls = valid.shape[0] - int(np.count_nonzero(valid))
    if not nulls:
        return values
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(pa.string(), len(values), [bitmap, *values.buffers()[1:]], nulls)


def _scatter_exact(buf: np.ndarray, pos: np.ndarray, table: np.ndarray, lens: np.ndarray, entry: np.ndarray) -> None:
    """Write table entries at `pos` without their padding, one pass per entry length."""
    for length in np.flatnonzero(np.bincount(lens)).tolist():
        if length:
            sel = lens == length
            src = _void(np.ascontiguousarray(table[:, :length]))
            _window(buf, length)[pos[sel]] = src[entry[sel]]


def _column_array(col: _Column, rows: slice) -> pa.Array:
    """The column's values for the selected rows, empty values as nulls."""
    if not col.parts:  # empty in every row (possible in a small population)
        return pa.nulls(rows.stop - rows.start, pa.string())
    first = col.parts[0]
    if col.dictionary is not None and col.codes is not None and first.idx is not None:
        codes = col.codes[first.idx[rows]]
        valid = codes >= 0
        nulls = codes.shape[0] - int(np.count_nonzero(valid))
        bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
        indices = pa.Array.from_buffers(pa.int32(), codes.shape[0], [bitmap, pa.py_buffer(codes)], nulls)
        return pa.DictionaryArray.from_arrays(indices, col.dictionary)
    if col.values is not None and first.idx is not None:
        idx = np.ascontiguousarray(first.idx[rows], np.int64)
        taken = col.values.take(pa.Array.from_buffers(pa.int64(), idx.shape[0], [None, pa.py_buffer(idx)]))
        return _with_nulls(taken, first.lens[idx] > 0)
    if len(col.parts) == 1:
        table, lens = first.table[rows], first.lens[rows]
        return _with_nulls(_string_array(table, lens), lens > 0)
    # several parts: laid out by the byte engine, the rows with a value only
    sel = [
        (p.table, p.lens, p.idx[rows]) if p.idx is not None else (p.table[rows], p.lens[rows], None) for p in col.parts
    ]
    lens = [tlens if idx is None else tlens[idx] for _, tlens, idx in sel]
    total = np.sum(lens, axis=0)
    n = total.shape[0]
    off = np.zeros(n + 1, np.int64)
    np.cumsum(total, out=off[1:])
    size = int(off[-1])
    if size >= 2**31:
        raise ValueError("column chunk too large for 32-bit offsets")
    valid = total > 0
    keep = None if valid.all() else np.flatnonzero(valid)
    buf = np.zeros(size + max(t.shape[1] for t, _, _ in sel) + 1, np.uint8)
    cur = off[:-1] if keep is None else off[keep]
    after = total if keep is None else total[keep]
    for table, tlens, idx in sel:
        entry = (np.arange(n) if keep is None else keep) if idx is None else (idx if keep is None else idx[keep])
        ln = tlens[entry]
        after = after - ln  # bytes of the value after this part
        width = table.shape[1]
        if width:
            padded = width - ln <= after  # the zero padding lands on bytes written later in the value
            if padded.all():
                _window(buf, width)[cur] = _void(table)[entry]
            else:
                _window(buf, width)[cur[padded]] = _void(table)[entry[padded]]
                rest = ~padded
                _scatter_exact(buf, cur[rest], table, ln[rest], entry[rest])
        cur = cur + ln
    values = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(off.astype(np.int32)), pa.py_buffer(buf[:size])])
    return _with_nulls(values, valid)


def _plain(table: pa.Table) -> pa.Table:
    """All columns as plain strings (dictionary columns decoded)."""
    return table.cast(pa.schema([pa.field(name, pa.string()) for name in table.column_names]))


def _parquet_bytes(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        use_dictionary=[f.name for f in table.schema if pa.types.is_dictionary(f.type)],
        write_statistics=False,
        store_schema=False,  # read back as plain strings, whatever the in-memory encoding
    )
    return sink.getvalue()


def _planted_table(feed: FeedContract, records: Sequence[str]) -> pa.Table:
    """CSV records of planted rows as a string table ('' -> null)."""
    values = [_parse(r) for r in records]
    width = len(feed.column_names)
    if any(len(v) != width for v in values):
        raise ValueError("a planted Parquet row must have every contract column")
    return pa.table({c: pa.array([v[j] or None for v in values], pa.string()) for j, c in enumerate(feed.column_names)})


def _assemble_table(
    feed: FeedContract, table: pa.Table, plans: Sequence[_Plan], first_row: int
) -> tuple[pa.Table, list[int]]:
    """`_assemble_day` for a day's table: rewrites applied and extra rows inserted at their
    slots, by slices (no per-row Python). Returns the table and, per plan, its row index."""
    n = table.num_rows
    plain = _plain(table)
    texts = [(k, p.text) for k, p in enumerate(plans) if p.text is not None]  # all but "mark"
    planted = _planted_table(feed, [text for _, text in texts])
    at = {k: i for i, (k, _) in enumerate(texts)}
    slots: dict[int, list[int]] = {}
    marks: dict[int, int] = {}
    tail: list[int] = []
    for k, p in enumerate(plans):
        if p.mode in ("rewrite", "mark"):
            marks[p.row - first_row] = k
        elif p.mode == "end":
            tail.append(k)
        else:
            slots.setdefault(p.slot, []).append(k)
    pieces: list[pa.Table] = []
    where = [0] * len(plans)
    pos = 0

    def real(lo: int, hi: int) -> None:
        nonlocal pos
        if hi > lo:
            pieces.append(plain.slice(lo, hi - lo))
            pos += hi - lo

    def extra(k: int) -> None:
        nonlocal pos
        where[k] = pos
        pieces.append(planted.slice(at[k], 1))
        pos += 1

    prev = 0
    for i in sorted(set(slots) | set(marks)):
        real(prev, i)
        prev = i
        for k in slots.get(i, []):
            extra(k)
        if i in marks:
            k = marks[i]
            if plans[k].mode == "rewrite":
                extra(k)
            else:
                where[k] = pos
                real(i, i + 1)
            prev = i + 1
    real(prev, n)
    for k in tail:
        extra(k)
    return pa.concat_tables(pieces), where


def _table_keys(feed: FeedContract, table: pa.Table) -> list[dict[str, str]]:
    columns = [table.column(k).to_pylist() for k in feed.key]
    return [
        {k: unicodedata.normalize("NFKC", v or "") for k, v in zip(feed.key, values, strict=True)}
        for values in zip(*columns, strict=True)
    ]


def _write_parquet_extra(
    fo: _FeedOutput, rows: pa.Table, folder: str, ds: str, name: str, kind: str, origin: str
) -> None:
    """`_write_extra` for Parquet: `rows` are the day's clean rows, or for a re-delivery the
    source day's (whose file bytes are in `fo.saved_files`)."""
    feed = fo.feed
    if kind == "redelivery":
        fo.write(folder, name, [memoryview(fo.saved_files[origin])], rows.num_rows)
        for line, key in enumerate(_table_keys(feed, rows), start=1):
            fo.defect(ds, name, line, key, reasons.DEDUPLICATED, f"re-delivered copy of {origin}")
        return
    head = _plain(rows.slice(0, 20))
    count = head.num_rows
    listed, manifest = True, None
    if kind == "truncated":
        raw = _parquet_bytes(head).to_pybytes()
        manifest = (count, hashlib.sha256(raw).hexdigest())
        cut = int(len(raw) * 0.6)
        data = raw[:cut]
        reason, note = reasons.PARTIAL_FILE, f"cut at byte {cut} of {len(raw)}; the manifest describes the full file"
    elif kind == "empty":
        data, count = b"", 0
        reason, note = reasons.EMPTY_FILE, "0 bytes"
    elif kind == "extra_column":
        data = _parquet_bytes(head.append_column("remark", pa.nulls(count, pa.string()))).to_pybytes()
        reason, note = reasons.SCHEMA_MISMATCH, "extra column 'remark'"
    elif kind == "missing_column":
        drop = len(feed.column_names) - 2
        data = _parquet_bytes(head.remove_column(drop)).to_pybytes()
        reason, note = reasons.SCHEMA_MISMATCH, f"column {feed.column_names[drop]!r} missing"
    else:
        data, listed = _parquet_bytes(head).to_pybytes(), False
        reason, note = reasons.NOT_IN_MANIFEST, "file not listed in the day's manifest"
    fo.write(folder, name, [data], count, listed=listed, manifest=manifest)
    fo.defect(ds, name, None, None, f"FILE_REJECTED:{reason}", note)


def _write_days_parquet(
    fo: _FeedOutput,
    table: pa.Table,
    first: int,
    d0: int,
    d1: int,
    bounds: np.ndarray,
    plans: Mapping[int, list[_Plan]],
    files: _FilePlan | None,
    start: date,
) -> None:
    """`_write_days` for Parquet: one file per day from a slice of the chunk's table (rows
    from `first`), planted extra files, then the manifest. Runs in the writer thread.
    Malformed rows, other encodings and text-only file problems have no Parquet form."""
    feed = fo.feed
    extras = files.extras.get(feed.name, {}) if files else {}
    keep = files.reserved.get(feed.name, set()) if files else set()
    for d in range(d0, d1):
        a, b = int(bounds[d]) - first, int(bounds[d + 1]) - first
        day = start + timedelta(days=d)
        ds = day.isoformat()
        folder = os.path.join(fo.out, feed.name, ds)
        os.makedirs(folder, exist_ok=True)
        name = f"{feed.name}_{day:%Y%m%d}{fo.tag}.parquet"
        rows = table.slice(a, b - a)
        day_plans = [p for p in plans.get(d, []) if p.expected != reasons.MALFORMED_ROW]
        final, where = _assemble_table(feed, rows, day_plans, int(bounds[d])) if day_plans else (rows, [])
        if final.num_rows:
            data = _parquet_bytes(final)
        else:  # a day without rows (surveys between waves): the same bytes every time
            if fo.empty_parquet is None:
                fo.empty_parquet = _parquet_bytes(final)
            data = fo.empty_parquet
        fo.write(folder, name, [memoryview(data)], final.num_rows)
        fo.rows += final.num_rows
        for k, p in enumerate(day_plans):
            fo.defect(ds, name, where[k] + 1, p.key, p.expected, p.note)
        if d in keep:
            source = f"{feed.name}/{ds}/{name}"
            fo.saved[d] = (source, [])
            fo.saved_files[source] = data
            fo.saved_tables[d] = rows
        for k, (kind, src) in enumerate(extras.get(d, []), start=2):
            if kind in _TEXT_ONLY_FILE_DEFECTS:
                continue
            origin, extra_rows = (fo.saved[src][0], fo.saved_tables[src]) if kind == "redelivery" else (name, rows)
            name_k = f"{feed.name}_{day:%Y%m%d}_{k}{fo.tag}.parquet"
            _write_parquet_extra(fo, extra_rows, folder, ds, name_k, kind, origin)
        fo.close_day(folder, ds)


def _write_feed_parquet(
    fo: _FeedOutput,
    fd: _Feed,
    start: date,
    days: int,
    plans: Mapping[int, list[_Plan]],
    files: _FilePlan | None,
) -> None:
    """Lay a feed out as Arrow tables of whole days, a chunk at a time, and write each
    chunk's day files. Runs in the feed's writer thread."""
    feed = fo.feed
    bounds = np.searchsorted(fd.day, np.arange(days + 1), side="left")
    columns = _columns(feed.column_names, fd.parts) if fd.n else None  # no rows: nothing to split
    d0 = 0
    while d0 < days:
        d1 = min(max(int(np.searchsorted(bounds, bounds[d0] + PARQUET_CHUNK_ROWS, side="right")) - 1, d0 + 1), days)
        i0, i1 = int(bounds[d0]), int(bounds[d1])
        if columns is None:
            table = pa.table({name: pa.array([], pa.string()) for name in feed.column_names})
        else:
            arrays = [_column_array(c, slice(i0, i1)) for c in columns]
            table = pa.Table.from_arrays(arrays, names=list(feed.column_names))
        _write_days_parquet(fo, table, i0, d0, d1, bounds, plans, files, start)
        d0 = d1


def _stream_feed_parquet(
    pool: ThreadPoolExecutor,
    out: Path,
    feed: FeedContract,
    fd: _Feed,
    start: date,
    days: int,
    plans: Sequence[_Plan],
    files: _FilePlan | None,
    shard: _Shard,
) -> tuple[_FeedOutput, list[Future[None]]]:
    """`_stream_feed` for Parquet: the feed's writer thread builds the Arrow tables from
    the parts and writes the files, while this thread simulates the next feed (the
    parts are in memory already, so nothing waits)."""
    fo = _FeedOutput(out, feed, shard)
    by_day: dict[int, list[_Plan]] = {}
    for p in plans:
        by_day.setdefault(int(fd.day[p.row]), []).append(p)
    return fo, [pool.submit(_write_feed_parquet, fo, fd, start, days, by_day, files)]


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------


def _ref_strings(world: _World) -> pa.Array:
    """customer_ref of every record, as strings (rendered by the same engine)."""
    nrec = world.rec_person.shape[0]
    buf, _ = _render(_ref_parts(world, np.arange(nrec), "\n"), slice(None))
    return pa.array(buf.tobytes().decode("ascii").split("\n")[:-1], pa.string())


def _truth_table(world: _World) -> pa.Table:
    """One row per customer record: the record's person and the person's latent parameters."""
    rp = world.rec_person
    days = world.days
    epoch = np.datetime64(world.start.isoformat(), "D")
    death_day = np.floor(np.nan_to_num(world.death_t, nan=0)).astype(np.int64)
    alive = world.alive[rp]
    return pa.table(
        {
            "customer_ref": _ref_strings(world),
            "person_id": pa.array(world.shard.first_person + rp),
            "source_system": pa.DictionaryArray.from_arrays(pa.array(world.rec_system.astype(np.int32)), list(SYSTEMS)),
            "signup_date": pa.array(epoch + world.rec_day.astype("timedelta64[D]")),
            "kind": pa.DictionaryArray.from_arrays(pa.array(world.kind[rp].astype(np.int32)), list(KINDS)),
            "credit_grade": pa.DictionaryArray.from_arrays(pa.array(world.grade[rp].astype(np.int32)), list(GRADES)),
            "acquisition_channel": pa.DictionaryArray.from_arrays(
                pa.array(world.extra["acquisition_channel"].astype(np.int32)), list(ACQUISITION_CHANNELS)
            ),
            "acquisition_cost": pa.array(world.extra["acquisition_cost"] / 100),
            "lambda": pa.array(world.lam[rp]),
            "p": pa.array(world.p[rp]),
            "nu": pa.array(world.nu[rp]),
            "expected_order_value": pa.array(world.params.gg_p / world.nu[rp]),
            "birth_t": pa.array(world.birth_t[rp]),
            "first_purchase_date": pa.array(epoch + np.floor(world.birth_t[rp]).astype("timedelta64[D]")),
            "T_days": pa.array(days - world.birth_t[rp]),
            "n_repeat": pa.array(world.n_repeat[rp]),
            "alive_at_end": pa.array(alive),
            "dropout_t": pa.array(world.death_t[rp], mask=alive),
            "dropout_date": pa.array(epoch + death_day[rp].astype("timedelta64[D]"), mask=alive),
            **{f"latent_{name.lower()}": pa.array(world.lv[rp, j]) for j, name in enumerate(LATENTS)},
        }
    )


def _json_text(value: Any, indent: int, level: int = 0) -> str:
    """`json.dumps(value, indent=indent, ensure_ascii=False)`, byte for byte, several times
    faster: the ground truth lists every converted lead and flagged response (millions of
    values at scale), and the standard encoder yields a token at a time when it indents."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is dict:
        if not value:
            return "{}"
        items = [f"{_json_string(k)}: {_json_leaf(v) or _json_text(v, indent, level + 1)}" for k, v in value.items()]
        opening, closing = "{", "}"
    elif kind is list or kind is tuple:
        if not value:
            return "[]"
        items = [_json_leaf(v) or _json_text(v, indent, level + 1) for v in value]
        opening, closing = "[", "]"
    else:
        return _json_leaf(value) or json.dumps(value)  # other types fail as in json.dumps
    pad = "\n" + " " * (indent * (level + 1))
    return opening + pad + ("," + pad).join(items) + "\n" + " " * (indent * level) + closing


def _json_leaf(value: Any) -> str:
    """A string or a plain number as JSON, '' for anything else."""
    kind = type(value)
    if kind is str:
        return _json_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value) if value is None or kind is bool or kind is float else ""


_json_string = json.encoder.encode_basestring  # type: ignore[attr-defined]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _ipa_quadrants(params: DemoParams) -> dict[str, dict[str, Any]]:
    imp, perf = params.ipa_importance, params.ipa_performance
    mi, mp = statistics.fmean(imp.values()), statistics.fmean(perf.values())
    return {
        a: {"importance": imp[a], "performance": perf[a], "quadrant": ipa_area(imp[a], perf[a], mi, mp)}
        for a in SERVICE_ATTRIBUTES
    }


def _truth(
    world: _World,
    o: dict[str, Any],
    pay: dict[str, Any],
    s: dict[str, Any],
    ix: dict[str, Any],
    rows: dict[str, int],
    clean_rows: dict[str, int],
    conflicts: list[dict[str, Any]],
    seed: int,
) -> dict[str, Any]:
    params, start, days = world.params, world.start, world.days
    rp = world.rec_person
    # same person, two orders on one day
    key = o["person"] * (days + 1) + o["day"]
    key.sort()
    same_day = int((np.diff(key) == 0).sum())
    sales_lines = o["line_order"].shape[0]
    n_orders = o["person"].shape[0]
    imp_map = {"A": "early or on time", "B": "around the due date", "C": "late", "D": "very late or never"}
    flags = {
        "speeders": s["rid_text"][s["speeders"]].tolist(),
        "straight_liners": s["rid_text"][s["straight"]].tolist(),
        "duplicates": s["rid_text"][np.flatnonzero(s["is_dup"])].tolist(),
        "attention_failed": s["rid_text"][s["attn"]].tolist(),
    }
    truth = {
        "generator": "analytics.synth",
        "seed": seed,
        "period": {
            "start": start.isoformat(),
            "days": days,
            "end": (start + timedelta(days=days - 1)).isoformat(),
            "end_is_inclusive": True,
            "time_zone": TIME_ZONE,
            "utc_offset": UTC_OFFSET,
        },
        "bgnbd": {
            "r": params.r,
            "alpha": params.alpha,
            "a": params.a,
            "b": params.b,
            "time_unit": "days",
            "description": "lambda ~ Gamma(r, scale 1/alpha) per day, p ~ Beta(a, b); first purchase at "
            "birth, Poisson(lambda) repeat purchases while alive, dropout after each repeat purchase "
            "w.p. p. Orders (all statuses, not returns) are the transactions; T = days - birth_t.",
        },
        "gamma_gamma": {
            "p": params.gg_p,
            "q": params.gg_q,
            "gamma": params.gg_gamma,
            "currency": "CNY",
            "mean_order_value": params.gg_p * params.gg_gamma / (params.gg_q - 1),
            "description": "nu ~ Gamma(q, rate gamma) per person; the net value of every order "
            "(first and repeat, sum over its lines of quantity*unit_price - discount) ~ "
            "Gamma(p, rate nu), rounded to cents (minimum 1.00).",
        },
        "acsi": {
            "paths": dict(params.acsi_paths),
            "loadings": dict(params.acsi_loadings),
            "item_means": dict(params.acsi_item_means),
            "item_sd": params.acsi_item_sd,
            "latents": list(LATENTS),
            "item_latent": ITEM_LATENT,
            "residual_variances": dict(zip(LATENTS, _latent_covariance(params.acsi_paths)[1].tolist(), strict=True)),
            "complaint_share": params.complaint_share,
            "description": "Standardised latent variables (unit variance); item = round(mean + sd * "
            "(loading*LV + sqrt(1-loading^2)*noise)) clipped to 1..10 (recommend 0..10); complaint = "
            "item above the (1 - complaint_share) normal quantile. Persons keep their latents across "
            "waves; anonymous responses draw fresh ones.",
        },
        "kano": dict(params.kano),
        "kano_share": params.kano_share,
        "ipa": _ipa_quadrants(params),
        "credit": {
            "grade_shares": _jsonable(params.grade_shares),
            "payment_terms_days": params.payment_terms_days,
            "lateness_after_due_days": _jsonable(params.grade_lateness),
            "meaning": imp_map,
            "realised_by_kind": {
                k: {g: int(((world.kind == i) & (world.grade == j)).sum()) for j, g in enumerate(GRADES)}
                for i, k in enumerate(KINDS)
            },
        },
        "survey": {
            "waves": [w for w, _, _ in s["waves"]],
            "survey_id": "SAT",
            "version2_from_wave": (
                s["waves"][params.version2_from_wave][0] if params.version2_from_wave < len(s["waves"]) else None
            ),
        },
        "survey_flags": flags,
        "counts": {
            "persons": world.n,
            "records": int(rp.shape[0]),
            "persons_by_kind": {k: int((world.kind == i).sum()) for i, k in enumerate(KINDS)},
            "rows": rows,
            "clean_rows": clean_rows,
            "orders": n_orders,
            "order_lines": sales_lines,
            "cancelled_orders": int(o["cancelled"].sum()),
            "return_rows": int(o["ret"].shape[0]),
            "same_day_order_pairs": same_day,
            "invoices": int(pay["inv"].shape[0]),
            "unpaid_invoices_at_end": int((pay["paid"] < 0).sum()),
            "survey_responses": int(s["person"].shape[0]),
            "anonymous_responses": int((s["person"] < 0).sum()),
            "interactions_by_type": {t: int((ix["type"] == i).sum()) for i, t in enumerate(INTERACTION_TYPES)},
        },
        "realised": {
            "share_zero_repeat": float((world.n_repeat == 0).mean()),
            "expected_share_zero_repeat": float(
                np.mean((params.alpha / (params.alpha + days - world.birth_t)) ** params.r)
            ),
            "share_alive_at_end": float(world.alive.mean()),
            "mean_order_value": float(o["value"].mean() / 100) if n_orders else None,
        },
        "conflicted_keys": conflicts,
        "parameters": {
            f.name: {"value": _jsonable(getattr(params, f.name)), "description": f.metadata["doc"]}
            for f in fields(params)
        },
        "files": {"customers": "ground_truth_customers.parquet", "defects": "defects.json"},
    }
    return truth


def _leads_truth(world: _World, ld: dict[str, Any]) -> dict[str, Any]:
    """The planted MAN truth of the leads (counts per MAN code of the first versions and of
    the versions standing at the period's end), the restatements and the converted leads."""
    params = world.params

    def counts(codes: np.ndarray) -> dict[str, int]:
        per = np.bincount(codes, minlength=len(MAN_CODES))
        return {code: int(per[i]) for i, code in enumerate(MAN_CODES)}

    conv = np.flatnonzero(ld["person"] >= 0)
    first = world.shard.first_person
    person = ld["person"][conv]
    count = world.rec_count[person]
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    buf, _ = _render(_ref_parts(world, np.repeat(world.rec_start[person], count) + offset, "\n"), slice(None))
    refs = buf.tobytes().decode("ascii").split("\n")[:-1]
    bounds = np.concatenate([[0], np.cumsum(count)]).tolist()
    threshold = f"{params.lead_budget_threshold:g}"
    return {
        "leads": int(ld["n"]),
        "rows": int(ld["row_lead"].shape[0]),
        "restated": int(ld["restated"].sum()),
        "rule": {
            "money": f"declared_budget >= {threshold} CNY or credit_rating in (A, B)",
            "authority": "contact_role in (owner, executive, purchasing_manager)",
            "need": "need in (stated_need, urgent) or requested_quote",
        },
        "man_counts_first_version": counts(ld["first_code"]),
        "man_counts_at_end": counts(ld["final_code"]),
        "converted": [
            {"lead_id": f"LD{world.shard.ids(i + 1):0{ID_DIGITS}d}", "person_id": first + p, "customer_refs": refs[a:b]}
            for i, p, a, b in zip(conv.tolist(), person.tolist(), bounds[:-1], bounds[1:], strict=True)
        ],
        "description": "MAN codes: upper case = the condition holds (M money, A authority, N need) under the "
        "rule above, which is ProspectParams' default. man_counts_at_end counts each lead's newest version "
        "delivered by the period's last day (restatements only add a condition). Converted leads are persons "
        "who made their first purchase within lead_conversion_days after the lead: the lead carries the "
        "phone number and e-mail address of that person's customer records (ground_truth_customers.parquet).",
    }


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


#: persons simulated together: a larger population is cut into shards of at most this many
#: (a shard's peak memory is about 3.5 GB per million persons, so two workers stay under 8 GB)
SHARD_SIZE = 1_000_000
#: where shards leave their part of ground_truth_customers.parquet until it is merged
_SHARD_PARTS = "_synth_shards"


def generate(
    out: Path,
    *,
    customers: int = 5000,
    days: int = 540,
    seed: int = 7,
    defects: float = 0.0,
    start: date = date(2025, 1, 1),
    params: DemoParams | None = None,
    log: Callable[[str], Any] = print,
    fmt: str = "csv",
    shard_size: int = SHARD_SIZE,
    workers: int | None = None,
) -> dict[str, Any]:
    """Write a landing zone of demo feeds under `out`, and the ground truth beside it.

    Deterministic: the same arguments give byte-identical files. The clean process does
    not depend on `defects` (planted problems use random streams of their own). Feed
    folders already under `out` are replaced.

    `fmt` is the landing files' format: "csv" (UTF-8 text, the default) or "parquet" (one
    `<feed>_<YYYYMMDD>.parquet` per feed and day, every contract column a string, empty
    values null; a planted row's `line` is its 1-based row number). Parquet has the same
    rows and the same planted defects except those only a text file can have: malformed
    rows, files in GB18030 or with a BOM, undecodable bytes and a wrong delimiter.

    A population of more than `shard_size` persons is simulated as independent shards
    (see `_Shard`), `workers` processes at a time (default: one per core), so that memory
    is bounded by workers x shard size and every core works. Each shard writes its own
    file per feed and day (`orders_20250301.s003.parquet`), every day's manifest lists all
    of them, and the ground truth is merged (its "shards" entry says how).
    """
    if customers < 1 or days < 1:
        raise ValueError("customers and days must be positive")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    if not 0 <= defects < 0.5:
        raise ValueError("defects is a share of rows: 0 <= defects < 0.5")
    if shard_size < 1 or (workers is not None and workers < 1):
        raise ValueError("shard_size and workers must be positive")
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in (*FEEDS, _SHARD_PARTS):
        shutil.rmtree(out / name, ignore_errors=True)
    job = _ShardJob(out, _Shard(persons=customers), customers, days, seed, defects, start, params or DemoParams(), fmt)
    if customers <= shard_size:
        res = _run_shard(job, log)
    else:
        res = _generate_shards(job, shard_size, workers or _cores(), log)
    truth, defect_list, n_files = res.truth, res.defects, res.files + 3
    (out / "defects.json").write_text(_json_text(defect_list, 1), encoding="utf-8")
    (out / "ground_truth.json").write_text(_json_text(truth, 2), encoding="utf-8")
    seconds = time.perf_counter() - t0
    lines = res.clean_rows["orders"]
    summary = {
        "out": str(out),
        "format": fmt,
        "rows": res.rows,
        "files": n_files,
        "bytes": res.bytes,
        "defects": len(defect_list),
        "seconds": round(seconds, 3),
        "lines_per_second": round(lines / seconds) if seconds > 0 else None,
    }
    log(
        f"wrote {n_files} files ({res.bytes / 1e6:.0f} MB): {lines} order lines in {seconds:.1f} s "
        f"({summary['lines_per_second']:,} lines/s), {len(defect_list)} planted defects"
    )
    return summary


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class _ShardJob(NamedTuple):
    out: Path
    shard: _Shard
    customers: int  # persons in this shard
    days: int
    seed: int
    defects: float
    start: date
    params: DemoParams
    fmt: str


class _ShardResult(NamedTuple):
    rows: dict[str, int]
    clean_rows: dict[str, int]
    files: int
    bytes: int
    defects: list[dict[str, Any]]
    truth: dict[str, Any]
    manifests: dict[str, dict[str, list[ManifestEntry]]]  # feed -> day -> entries (shards only)


#: what later feeds and the ground truth read of a feed's simulation once its rows are out
_STILL_NEEDED = {
    "orders": ("person", "day", "record", "value", "cancelled", "line_order", "ret"),
    "payments": ("inv", "paid"),
    "surveys": ("waves", "person", "rid_text", "speeders", "straight", "attn", "is_dup"),
    "interactions": ("type",),
    "leads": ("n", "person", "first_code", "final_code", "restated", "row_lead"),
}


def _run_shard(job: _ShardJob, log: Callable[[str], Any] | None = None) -> _ShardResult:
    """Simulate a shard (or the whole population) and write its feed files and its ground
    truth table; the ground truth, defects and (for a shard) manifest entries are returned."""
    t0 = time.perf_counter()
    out, shard, customers, days, start, params = job.out, job.shard, job.customers, job.days, job.start, job.params
    defects = job.defects
    # a stream per process part (adding one moves no other); a shard's are children of its own
    entropy = job.seed if shard.count == 1 else np.random.SeedSequence(job.seed, spawn_key=(shard.index,))
    streams = np.random.default_rng(entropy).spawn(9)
    world = _simulate(customers, days, start, params, streams[0], shard)
    world.extra["ref_keys"] = _ref_keys(world)
    if log:
        log(f"simulated {customers} persons over {days} days ({time.perf_counter() - t0:.1f} s)")
    sim: dict[str, dict[str, Any]] = {}
    top = int(world.rec_num.max(initial=0))
    counters = {prefix: top for prefix in SYSTEM_PREFIX.values()} | {"R_": 0, "never": 0}
    existing: set[str] = set()

    def build(name: str) -> _Feed:
        """Simulate what a feed needs (each part of the process from its own random stream)
        and lay it out; feeds come in FEEDS order, so customers are written meanwhile."""
        if name == "customers":
            return _customers_feed(world, streams[1])
        if name == "orders":
            o = sim[name] = _orders(world, streams[2])
            counters.update(SO=o["person"].shape[0], RT=int(o["ret"].shape[0]))
            return _orders_feed(world, o)
        if name == "payments":
            pay = sim[name] = _payments(world, sim["orders"], streams[3])
            counters["INV"] = int(pay["inv"].shape[0])
            return _payments_feed(world, sim["orders"], pay)
        if name == "surveys":
            s = sim[name] = _surveys(world, streams[4])
            s["rid_text"] = np.array(s["rid"].data.view("S17")[:, 0].astype("U17"), dtype=object)
            existing.update(s["rid_text"].tolist())
            return _surveys_feed(world, s)
        if name == "interactions":
            ix = sim[name] = _interactions(world, streams[5])
            counters["IX"] = int(ix["person"].shape[0])
            return _interactions_feed(world, ix)
        if name == "leads":
            ld = sim[name] = _leads(world, streams[8])
            counters["LD"] = ld["n"]
            return _leads_feed(world, ld)
        raise ValueError(f"no demo process for feed {name!r}")

    files = _FilePlan() if defects > 0 else None
    results: dict[str, _FeedOutput] = {}
    futures: list[Future[Any]] = []
    conflicts: list[dict[str, Any]] = []
    clean_rows: dict[str, int] = {}
    with contextlib.ExitStack() as stack:
        # one writer thread per feed: a feed's files are written in order, feeds side by side
        writers = {
            name: stack.enter_context(ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"synth-{name}"))
            for name in FEEDS
        }
        for name, feed in FEEDS.items():
            fd = build(name)
            clean_rows[name] = fd.n
            plans: list[_Plan] = []
            if files is not None:
                _plan_files(files, name, np.unique(fd.day).tolist(), days, params, streams[7])
                ctx = _Ctx(feed, streams[6], world, counters, existing)
                victims = _victims(name, sim.get("orders"), sim.get("surveys"))
                plans = _plan_row_defects(feed, fd, defects, ctx, start, files.reserved[name], victims)
                conflicts += [{"feed": name, "key": p.key} for p in plans if p.mode == "mark"]
            stream = _stream_feed_parquet if job.fmt == "parquet" else _stream_feed
            results[name], jobs = stream(writers[name], out, feed, fd, start, days, plans, files, shard)
            futures += jobs
            del fd
            if name in sim:  # memory: keep only what later feeds and the ground truth read
                sim[name] = {k: sim[name][k] for k in _STILL_NEEDED[name]}
        truth_table = _truth_table(world)
        part = out / "ground_truth_customers.parquet"
        if shard.count > 1:
            part = out / _SHARD_PARTS / f"ground_truth_customers{shard.tag}.parquet"
        futures.append(writers["customers"].submit(pq.write_table, truth_table, part))
        for f in futures:
            f.result()
    o, pay, s, ix = sim["orders"], sim["payments"], sim["surveys"], sim["interactions"]
    rows = {name: results[name].rows for name in FEEDS}
    truth = _truth(world, o, pay, s, ix, rows, clean_rows, conflicts, job.seed)
    truth["leads"] = _leads_truth(world, sim["leads"])
    return _ShardResult(
        rows=rows,
        clean_rows=clean_rows,
        files=sum(r.files for r in results.values()),
        bytes=sum(r.bytes for r in results.values()),
        defects=[d for name in FEEDS for d in results[name].defects],
        truth=truth,
        manifests={name: r.manifests for name, r in results.items() if r.manifests is not None},
    )


def _generate_shards(job: _ShardJob, shard_size: int, workers: int, log: Callable[[str], Any]) -> _ShardResult:
    """Run the shards of a population larger than `shard_size`, `workers` processes at a
    time, then write what covers all of them: the manifests, ground_truth_customers.parquet
    (the shards' parts in order) and, returned, the merged ground truth and defects."""
    customers, out = job.customers, job.out
    count = -(-customers // shard_size)
    sizes = [customers // count + (k < customers % count) for k in range(count)]
    firsts = np.cumsum([0, *sizes[:-1]]).tolist()
    width = max(7, len(str(2 * 3 * max(sizes) * count)))  # customer_ref digits: twice the most records
    digits = max(3, len(str(count - 1)))
    jobs = [
        job._replace(customers=size, shard=_Shard(k, count, first, customers, width, f".s{k:0{digits}d}"))
        for k, (size, first) in enumerate(zip(sizes, firsts, strict=True))
    ]
    (out / _SHARD_PARTS).mkdir()
    results: list[_ShardResult] = []
    with contextlib.ExitStack() as stack:
        done: Iterable[_ShardResult] = map(_run_shard, jobs)
        if workers > 1:
            # forked workers start with everything imported; the shards themselves hold no state
            context = multiprocessing.get_context("fork")
            done = stack.enter_context(ProcessPoolExecutor(min(workers, count), mp_context=context)).map(
                _run_shard, jobs
            )
        writer: pq.ParquetWriter | None = None
        for sub, res in zip(jobs, done, strict=True):  # in shard order, as they finish
            part = out / _SHARD_PARTS / f"ground_truth_customers{sub.shard.tag}.parquet"
            table = pq.read_table(part)
            if writer is None:
                writer = stack.enter_context(pq.ParquetWriter(out / "ground_truth_customers.parquet", table.schema))
            writer.write_table(table)
            part.unlink()
            results.append(res)
            log(f"shard {len(results)}/{count}: {sub.customers} persons, {res.clean_rows['orders']} order lines")
    (out / _SHARD_PARTS).rmdir()
    manifests = 0
    for name in FEEDS:
        for day in results[0].manifests[name]:
            entries = [e for r in results for e in r.manifests[name][day]]
            write_manifest(out / name / day, entries, feed=name, day=day)
            manifests += 1
    truth = _merge_truths([r.truth for r in results])
    truth["shards"] = {
        "count": count,
        "persons": sizes,
        "first_person_id": firsts,
        "description": "The population was simulated as independent shards, each from its own random "
        "stream (numpy SeedSequence(seed).spawn(count)[k]). Persons are consecutive blocks of person_id; "
        "every other sequence (customer record numbers per system, order, return, invoice, interaction and "
        "lead ids) is interleaved: local number i of shard k is (i - 1) * count + k + 1. A person's records, "
        "orders, leads, survey answers and planted defects stay within its shard, each shard writes its own "
        "file per feed and day (name suffix .sNNN) and plants its own file-level problems "
        "(file_defects_per_kind and encoded_files apply per shard). Counts are sums over the shards, lists are "
        "concatenated in shard order, realised shares and means are weighted by persons (mean_order_value by "
        "orders); every other entry is equal in all shards.",
    }
    return _ShardResult(
        rows={name: sum(r.rows[name] for r in results) for name in FEEDS},
        clean_rows={name: sum(r.clean_rows[name] for r in results) for name in FEEDS},
        files=sum(r.files for r in results) + manifests,
        bytes=sum(r.bytes for r in results),
        defects=[d for r in results for d in r.defects],
        truth=truth,
        manifests={},
    )


#: ground-truth entries that are sums over shards and lists concatenated in shard order;
#: "realised" holds means (weighted, see _merge_truths); every other entry is shared
_TRUTH_SUMS = (
    "counts",
    "credit.realised_by_kind",
    "leads.leads",
    "leads.rows",
    "leads.restated",
    "leads.man_counts_first_version",
    "leads.man_counts_at_end",
)
_TRUTH_LISTS = ("survey_flags", "conflicted_keys", "leads.converted")
_TRUTH_MEAN_WEIGHTS = {
    "share_zero_repeat": "persons",
    "expected_share_zero_repeat": "persons",
    "share_alive_at_end": "persons",
    "mean_order_value": "orders",
}


def _merge_truths(truths: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The ground truth of the whole population from its shards' ground truths."""

    def under(path: str, roots: Sequence[str]) -> bool:
        return any(path == r or path.startswith(r + ".") for r in roots)

    def mean(key: str) -> float | None:
        pairs = [(t["realised"][key], t["counts"][_TRUTH_MEAN_WEIGHTS[key]]) for t in truths]
        pairs = [(v, w) for v, w in pairs if v is not None and w]
        return sum(v * w for v, w in pairs) / sum(w for _, w in pairs) if pairs else None

    def merge(values: list[Any], path: str) -> Any:
        first = values[0]
        if path == "realised":
            return {key: mean(key) for key in first}
        if under(path, _TRUTH_LISTS) and isinstance(first, list):
            return [x for v in values for x in v]
        if isinstance(first, dict):
            return {k: merge([v[k] for v in values], f"{path}.{k}" if path else k) for k in first}
        if under(path, _TRUTH_SUMS):
            return sum(values)
        if any(v != first for v in values[1:]):
            raise ValueError(f"shards disagree on the ground truth's {path}")
        return first

    return merge(list(truths), "")


def _victims(name: str, o: dict[str, Any] | None, s: dict[str, Any] | None) -> np.ndarray | None:
    """Rows that may lose a planted conflict without changing anything else: no order line
    that a return points at, no survey response that carries a quality flag."""
    if name == "orders" and o is not None:
        rows = o["rows"]
        lo = o["line_order"]
        has_return = np.zeros(o["person"].shape[0], bool)
        has_return[lo[o["ret"]]] = True
        src = rows["src_line"]
        return ~rows["is_ret"] & ~o["cancelled"][lo[src]] & ~has_return[lo[src]]
    if name == "surveys" and s is not None:
        flagged = np.zeros(s["person"].shape[0], bool)
        for key in ("speeders", "straight", "attn"):
            flagged[s[key]] = True
        flagged |= s["is_dup"]
        flagged[s["dup_original"]] = True
        return ~flagged[s["order"]]
    return None

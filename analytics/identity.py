"""Identity resolution: every source customer record → one stable, pseudonymous
`customer_key` (DOMAIN.md §1, "recognise the customer every time").

Rules, deterministic and in this order:

1. Each record is taken in its newest version delivered by the as-of date.
2. Three identifiers are normalised:
   - phone: digits only; a leading country code 86 / 0086 is dropped (``+86-139-1234-5678``,
     ``(+86)13912345678`` and ``139 1234 5678`` are one number); fewer than 7 digits is no phone;
   - e-mail: trimmed and lower-cased; kept only if it looks like ``local@domain.tld``;
   - tax id (unified social credit code): spaces and dashes removed, upper-cased; kept
     only at its 18 characters.
3. Two records that share any normalised identifier are the same customer, and so,
   transitively, are all records connected through shared identifiers (union-find,
   computed as connected components by label propagation so that it runs inside the
   engine). A value shared by more than `IdentityParams.max_shared_records` records
   (a switchboard number, a shared mailbox) is treated as generic and links nothing;
   such values are counted per record in `generic_values_ignored`.
4. The customer's *anchor* is its earliest record (signup date, then record id). The
   key is HMAC-SHA256(secret, anchor record id), hex, shortened to 20 characters: it
   stays the same as long as the anchor does (a newer record joining a customer never
   changes its key), and it cannot be reversed or recomputed without the secret, so
   the marts and BI never see a raw identifier. When two customers merge, the one whose
   anchor is older keeps its key.

The evidence of every merge is kept: for each record and identifier, the id of
another record that shares it (the earliest such record).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from analytics.asof import known, newest
from analytics.portable import strip
from analytics.schema import Col, MartSchema, as_of_col, version_col

RULES: tuple[str, ...] = ("phone", "email", "tax_id")
KEY_LENGTH = 20


@dataclass(frozen=True)
class IdentityParams:
    """Identity-resolution rules."""

    #: Identifiers used to link records, in this order of evidence.
    rules: tuple[str, ...] = RULES
    #: A normalised value shared by more records than this links none of them (generic).
    max_shared_records: int = 10
    #: Upper bound on label-propagation rounds (the longest chain of linked records).
    max_rounds: int = 50

    def __post_init__(self) -> None:
        unknown = sorted(set(self.rules) - set(RULES))
        if unknown or not self.rules:
            raise ValueError(f"identity rules must be a non-empty subset of {RULES}; got unknown {unknown}")
        if self.max_shared_records < 2:
            raise ValueError("max_shared_records must be at least 2 (two records must be able to match)")
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be positive")


CUSTOMER_IDENTITY = MartSchema(
    table="marts.customer_identity",
    description=(
        "Identity resolution: every source customer record and the customer_key it belongs to, with the "
        "evidence of each merge. Internal crosswalk: holds source record ids, never raw personal data."
    ),
    key=("customer_ref",),
    columns=(
        as_of_col(),
        Col("customer_ref", "VARCHAR", "Source customer record id."),
        Col("source_system", "VARCHAR", "System the record comes from."),
        Col("customer_key", "VARCHAR", "Pseudonymous customer key: HMAC-SHA256(secret, anchor_ref), 20 hex chars."),
        Col("anchor_ref", "VARCHAR", "The customer's earliest record (signup date, then id); its HMAC is the key."),
        Col("records_in_customer", "BIGINT", "Records merged into this customer."),
        Col(
            "match_rules",
            "VARCHAR",
            "Identifiers shared with another record, e.g. phone,email; empty if none.",
        ),
        Col("phone_match_ref", "VARCHAR", "Earliest other record with the same normalised phone, if any."),
        Col("email_match_ref", "VARCHAR", "Earliest other record with the same normalised e-mail, if any."),
        Col("tax_id_match_ref", "VARCHAR", "Earliest other record with the same tax id, if any."),
        Col("generic_values_ignored", "BIGINT", "Identifiers of this record shared too widely to be evidence."),
        version_col(),
    ),
)


# --- normalisation (Ibis) ------------------------------------------------------------------


def normalise_phone(phone: ir.StringValue) -> ir.StringValue:
    digits = phone.re_replace(r"[^0-9]", "")
    national = ibis.cases(
        (digits.startswith("0086") & (digits.length() > 13), digits.substr(4)),
        (digits.startswith("86") & (digits.length() == 13), digits.substr(2)),
        else_=digits,
    )
    return ibis.ifelse(national.length() >= 7, national, ibis.null("string"))


def normalise_email(email: ir.StringValue) -> ir.StringValue:
    e = strip(email).lower()
    return ibis.ifelse(e.re_search(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), e, ibis.null("string"))


def normalise_tax_id(tax_id: ir.StringValue) -> ir.StringValue:
    t = tax_id.re_replace(r"[\s-]", "").upper()
    return ibis.ifelse(t.length() == 18, t, ibis.null("string"))


NORMALISERS = {"phone": normalise_phone, "email": normalise_email, "tax_id": normalise_tax_id}


# --- records as of each date --------------------------------------------------------------


def current_records(customers: ir.Table, as_of: ir.Table) -> ir.Table:
    """The newest version of every customer record delivered by each as-of date."""
    return newest(known(customers, as_of), "customer_ref")


def _identifiers(records: ir.Table, params: IdentityParams) -> ir.Table:
    """Long table (as_of_date, customer_ref, rule, value, shared, generic)."""
    parts = [
        records.select(
            as_of_date=records.as_of_date,
            customer_ref=records.customer_ref,
            rule=ibis.literal(rule),
            value=NORMALISERS[rule](records[rule]),
        )
        for rule in params.rules
    ]
    ids = ibis.union(*parts).filter(lambda t: t.value.notnull())
    shared = ids.count().over(group_by=[ids.as_of_date, ids.rule, ids.value])
    ids = ids.mutate(shared=shared)
    return ids.mutate(generic=ids.shared > params.max_shared_records)


class Scratch:
    """Temporary tables on the backend, dropped together (`with Scratch(con) as s:`).

    The propagation rounds must be materialised (each round reads the previous one),
    and Ibis' own cache is released by the garbage collector, possibly after the
    connection is closed; explicit temporary tables are dropped while it is open."""

    def __init__(self, con: ibis.BaseBackend) -> None:
        self.con = con
        self.names: list[str] = []

    def keep(self, expr: ir.Table) -> ir.Table:
        return self.keep_parts([expr])

    def keep_parts(self, parts: Sequence[ir.Table]) -> ir.Table:
        """One temporary table written from disjoint parts, one query each: for a result whose
        query does not fit the memory budget in one piece (DuckDB spills most operators,
        but not every aggregate state)."""
        name = f"_scratch_{uuid.uuid4().hex[:12]}"
        self.names.append(name)
        table = self.con.create_table(name, parts[0], temp=True)
        for part in parts[1:]:
            self.con.insert(name, part)
        return table

    def drop(self, table: ir.Table) -> None:
        """Drop one kept table before the others (one superseded by a newer round)."""
        name = table.get_name()
        if name in self.names:
            self.names.remove(name)
            self.con.drop_table(name, force=True)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in reversed(self.names):
            self.con.drop_table(name, force=True)
        self.names.clear()


def _components(scratch: Scratch, records: ir.Table, links: ir.Table, max_rounds: int) -> ir.Table:
    """(as_of_date, customer_ref, label): the smallest anchor label reachable through links.

    Label propagation: each record starts with its own label; each round every linking
    value takes the smallest label of its records and every record the smallest label
    of its values. Rounds stop when nothing changes (at most the longest chain). Only the
    records that have a link take part (a record without one is its own component), and each
    round's table is dropped once the next one exists."""
    linked = links.select("as_of_date", "customer_ref").distinct()
    start = records.join(linked, ["as_of_date", "customer_ref"])
    labels = scratch.keep(start.select("as_of_date", "customer_ref", label=start._anchor_order))
    for _ in range(max_rounds):
        tagged = links.join(labels, ["as_of_date", "customer_ref"])
        by_value = tagged.group_by(["as_of_date", "rule", "value"]).aggregate(vlabel=tagged.label.min())
        back = links.join(by_value, ["as_of_date", "rule", "value"])
        best = back.group_by(["as_of_date", "customer_ref"]).aggregate(best=back.vlabel.min())
        joined = labels.left_join(best, ["as_of_date", "customer_ref"])
        new = scratch.keep(
            joined.select(
                "as_of_date",
                "customer_ref",
                label=ibis.least(joined.label, joined.best.fill_null(joined.label)),
                _changed=joined.best.notnull() & (joined.best < joined.label),
            )
        )
        scratch.drop(labels)
        labels = new
        if int(new._changed.sum().fill_null(0).execute()) == 0:
            break
    else:
        raise RuntimeError(f"identity resolution did not converge in {max_rounds} rounds; raise max_rounds")
    every = records.left_join(labels, ["as_of_date", "customer_ref"])
    return every.select("as_of_date", "customer_ref", label=every.label.fill_null(every._anchor_order))


def customer_key(anchor_ref: str, secret: bytes) -> str:
    """The pseudonymous key of a customer whose anchor record is `anchor_ref`."""
    return hmac.new(secret, anchor_ref.encode("utf-8"), hashlib.sha256).hexdigest()[:KEY_LENGTH]


#: Anchors hashed per slice: only a slice's anchors exist as Python strings at once.
KEY_SLICE = 500_000


def customer_keys(anchors: pa.ChunkedArray, secret: bytes) -> pa.Table:
    """(anchor_ref, customer_key) for distinct anchors, as Arrow: at 100M order lines there are
    16.6M anchors, and two Python strings per anchor in a pandas frame held ~3 GB."""
    anchors = anchors.cast(pa.string())
    keys = [
        pa.array([customer_key(a, secret) for a in anchors.slice(start, KEY_SLICE).to_pylist()], pa.string())
        for start in range(0, len(anchors), KEY_SLICE)
    ]
    return pa.table({"anchor_ref": anchors, "customer_key": pa.chunked_array(keys, pa.string())})


def customer_identity(
    scratch: Scratch, records: ir.Table, params: IdentityParams, secret: bytes, *, settings_version: str = ""
) -> ir.Table:
    """marts.customer_identity for every as-of date in `records` (from `current_records`).

    Executes the propagation rounds (the only iterative step) in temporary tables of
    `scratch`, and computes the HMAC of the distinct anchors in Python; the result is an
    Ibis table on the same backend, valid until the scratch tables are dropped."""
    if not secret:
        raise ValueError("the identity secret must not be empty")
    records = scratch.keep(
        records.select(
            "as_of_date",
            "customer_ref",
            "source_system",
            *params.rules,
            _anchor_order=records.signup_date.cast("string") + "|" + records.customer_ref,
        )
    )
    ids = scratch.keep(_identifiers(records, params))
    links = ids.filter(~ids.generic & (ids.shared > 1)).select("as_of_date", "customer_ref", "rule", "value")
    labels = _components(scratch, records, links, params.max_rounds)
    labels = labels.mutate(anchor_ref=labels.label.substr(11)).drop("label")  # after "YYYY-MM-DD|"

    keys = ibis.memtable(customer_keys(labels.select("anchor_ref").distinct().to_pyarrow()["anchor_ref"], secret))
    labels = labels.join(keys, "anchor_ref")
    size = labels.count().over(group_by=[labels.as_of_date, labels.anchor_ref])
    labels = labels.mutate(records_in_customer=size)

    # evidence: per record and rule, the earliest other record sharing the value
    order = ibis.row_number().over(group_by=[links.as_of_date, links.rule, links.value], order_by=links.customer_ref)
    ranked = links.mutate(_n=order)
    first = ranked.filter(ranked._n == 0).select("as_of_date", "rule", "value", _first=ranked.customer_ref)
    second = ranked.filter(ranked._n == 1).select("as_of_date", "rule", "value", _second=ranked.customer_ref)
    ev = ranked.join(first, ["as_of_date", "rule", "value"]).join(second, ["as_of_date", "rule", "value"])
    ev = ev.select("as_of_date", "customer_ref", "rule", match=ibis.ifelse(ev._n == 0, ev._second, ev._first))
    wide = ev.group_by(["as_of_date", "customer_ref"]).aggregate(
        **{f"{rule}_match_ref": ev.match.min(where=ev.rule == rule) for rule in RULES}
    )
    generic = (
        ids.filter(ids.generic)
        .group_by(["as_of_date", "customer_ref"])
        .aggregate(generic_values_ignored=lambda t: t.count())
    )
    out = (
        records.select("as_of_date", "customer_ref", "source_system")
        .join(labels, ["as_of_date", "customer_ref"])
        .left_join(wide, ["as_of_date", "customer_ref"])
        .left_join(generic, ["as_of_date", "customer_ref"])
    )
    rules_text = ibis.literal("")
    for rule in RULES:
        present = out[f"{rule}_match_ref"].notnull()
        rules_text = rules_text + ibis.ifelse(present, "," + ibis.literal(rule), "")
    return out.select(
        as_of_date=out.as_of_date,
        customer_ref=out.customer_ref,
        source_system=out.source_system,
        customer_key=out.customer_key,
        anchor_ref=out.anchor_ref,
        records_in_customer=out.records_in_customer.cast("int64"),
        match_rules=rules_text.re_replace("^,", ""),
        phone_match_ref=out.phone_match_ref,
        email_match_ref=out.email_match_ref,
        tax_id_match_ref=out.tax_id_match_ref,
        generic_values_ignored=out.generic_values_ignored.fill_null(0).cast("int64"),
        settings_version=ibis.literal(settings_version, type="string"),
    )

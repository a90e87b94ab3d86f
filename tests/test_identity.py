"""Identity resolution: normalisation, union-find merges with evidence, generic values,
stable HMAC keys; on demo data the planted duplicates are merged and nothing else."""

import datetime as dt
import re

import pandas as pd
import pyarrow as pa
import pytest

from analytics import identity
from analytics.identity import (
    CUSTOMER_IDENTITY,
    IdentityParams,
    Scratch,
    current_records,
    customer_identity,
    customer_key,
    customer_keys,
)

SECRET = b"test-secret"
D1, D2 = dt.date(2025, 3, 1), dt.date(2025, 3, 10)


def record(ref, *, phone=None, email=None, tax_id=None, day=D1, signup=None, system="crm", line=2):
    return {
        "customer_ref": ref,
        "source_system": system,
        "phone": phone,
        "email": email,
        "tax_id": tax_id,
        "signup_date": signup or day,
        "business_date": signup or day,
        "_partition_date": day,
        "_source_file": f"customers/{day}/c.csv",
        "_source_line": line,
    }


def resolve(con, rows, days=(D1,), params=None, secret=SECRET):
    frame = pd.DataFrame(rows)
    for c in ("signup_date", "business_date", "_partition_date"):
        frame[c] = pd.to_datetime(frame[c]).dt.date
    for c in ("phone", "email", "tax_id"):
        frame[c] = frame[c].astype("string")
    name = f"customers_{abs(hash(tuple(map(str, rows)))) % 10**9}"
    table = con.create_table(name, frame, overwrite=True)
    as_of = con.create_table(
        name + "_days", pd.DataFrame({"as_of_date": list(days)}), schema={"as_of_date": "date"}, overwrite=True
    )
    with Scratch(con) as scratch:
        records = current_records(table, as_of)
        expr = customer_identity(scratch, records, params or IdentityParams(), secret, settings_version="v")
        assert list(expr.columns) == CUSTOMER_IDENTITY.names
        out = con.execute(expr)
    return out.sort_values(["as_of_date", "customer_ref"]).reset_index(drop=True)


def keys(out, day=D1):
    snap = out[out.as_of_date == pd.Timestamp(day)]
    return dict(zip(snap.customer_ref, snap.customer_key, strict=True))


@pytest.mark.parametrize(
    "phones",
    [("13912345678", "139 1234 5678", "+86-139-1234-5678", "(+86)13912345678", "0086 139 1234 5678")],
)
def test_phone_formats_are_one_number(con, phones):
    rows = [record(f"R{i}", phone=p) for i, p in enumerate(phones)]
    out = resolve(con, rows)
    assert out.customer_key.nunique() == 1
    assert set(out.match_rules) == {"phone"}


def test_email_case_and_tax_id_spacing_match_but_junk_does_not(con):
    rows = [
        record("A", email="Wei.Zhang@Example.com"),
        record("B", email=" wei.zhang@example.COM "),
        record("C", tax_id="91310000 MA1K-12345X"),
        record("D", tax_id="91310000MA1K12345X"),
        record("E", email="not-an-email", phone="12345"),
        record("F", email="not-an-email", phone="12345"),
    ]
    k = keys(resolve(con, rows))
    assert k["A"] == k["B"] and k["C"] == k["D"]
    assert len({k["A"], k["C"], k["E"], k["F"]}) == 4


def test_records_sharing_any_key_merge_transitively_with_evidence(con):
    rows = [
        record("A", phone="13900000001", signup=dt.date(2025, 1, 5)),
        record("B", phone="139 0000 0001", email="x@y.cn", signup=dt.date(2025, 1, 3)),
        record("C", email="X@Y.CN", tax_id="911100000000000001", signup=dt.date(2025, 2, 1)),
        record("D", tax_id="911100000000000001", signup=dt.date(2025, 2, 2)),
        record("E", phone="13900000002"),
    ]
    out = resolve(con, rows).set_index("customer_ref")
    cluster = out.loc[["A", "B", "C", "D"]]
    assert cluster.customer_key.nunique() == 1 and out.loc["E", "customer_key"] not in set(cluster.customer_key)
    # the anchor is the earliest record (B signed up first); the key is its HMAC
    assert set(cluster.anchor_ref) == {"B"}
    assert out.loc["A", "customer_key"] == customer_key("B", SECRET)
    assert (cluster.records_in_customer == 4).all() and out.loc["E", "records_in_customer"] == 1
    assert out.loc["A", "match_rules"] == "phone" and out.loc["B", "match_rules"] == "phone,email"
    assert out.loc["C", "match_rules"] == "email,tax_id" and out.loc["E", "match_rules"] == ""
    assert out.loc["A", "phone_match_ref"] == "B" and out.loc["B", "phone_match_ref"] == "A"
    assert out.loc["C", "email_match_ref"] == "B" and out.loc["D", "tax_id_match_ref"] == "C"
    assert pd.isna(out.loc["A", "email_match_ref"])


def test_a_generic_value_links_nobody(con):
    rows = [record(f"R{i:02d}", phone="4008 123 456") for i in range(12)]
    rows += [record("S1", email="a@b.cn", phone="4008123456"), record("S2", email="a@b.cn")]
    out = resolve(con, rows, params=IdentityParams(max_shared_records=10)).set_index("customer_ref")
    assert out.loc[[f"R{i:02d}" for i in range(12)], "customer_key"].nunique() == 12
    assert (out.loc[[f"R{i:02d}" for i in range(12)], "generic_values_ignored"] == 1).all()
    assert out.loc["S1", "customer_key"] == out.loc["S2", "customer_key"]
    assert out.loc["S1", "match_rules"] == "email"


def test_key_is_stable_when_a_newer_record_joins_and_the_older_anchor_wins_a_merge(con):
    rows = [
        record("OLD", phone="13900000001", day=D1, signup=dt.date(2025, 1, 1)),
        record("NEW", email="n@x.cn", day=D1, signup=dt.date(2025, 2, 1)),
        record("LINK", phone="13900000001", email="n@x.cn", day=D2),
    ]
    out = resolve(con, rows, days=(D1, D2))
    before, after = keys(out, D1), keys(out, D2)
    assert before["OLD"] != before["NEW"]
    assert after["OLD"] == after["NEW"] == after["LINK"] == before["OLD"] == customer_key("OLD", SECRET)
    assert "LINK" not in before


def test_the_newest_version_of_a_record_counts(con):
    rows = [
        record("A", phone="13900000001", day=D1),
        record("B", phone="13900000001", day=D1),
        record("B", phone="13900000009", day=D2),
    ]
    out = resolve(con, rows, days=(D1, D2))
    assert keys(out, D1)["A"] == keys(out, D1)["B"]
    assert keys(out, D2)["A"] != keys(out, D2)["B"]


def test_shuffled_input_and_batched_dates_change_nothing(con):
    rows = [
        record("A", phone="13900000001"),
        record("B", phone="13900000001", email="b@x.cn", day=D2),
        record("C", email="B@x.cn", day=D2),
        record("D", tax_id="911100000000000001"),
    ]
    both = resolve(con, rows, days=(D1, D2))
    shuffled = resolve(con, list(reversed(rows)), days=(D1, D2))
    pd.testing.assert_frame_equal(both, shuffled)
    one = pd.concat([resolve(con, rows, days=(D1,)), resolve(con, rows, days=(D2,))], ignore_index=True)
    pd.testing.assert_frame_equal(both, one)


def test_secret_is_required_and_changes_every_key(con):
    rows = [record("A", phone="13900000001")]
    assert keys(resolve(con, rows))["A"] != keys(resolve(con, rows, secret=b"other"))["A"]
    with pytest.raises(ValueError, match="secret"):
        resolve(con, rows, secret=b"")
    with pytest.raises(ValueError, match="rules"):
        IdentityParams(rules=("name",))


def test_keys_hashed_in_slices_equal_keys_hashed_one_by_one(monkeypatch):
    monkeypatch.setattr(identity, "KEY_SLICE", 2)
    anchors = pa.chunked_array([["r1", "r2", "r3"], ["r4", "r5"]])
    table = customer_keys(anchors, SECRET)
    assert table.column("anchor_ref").to_pylist() == ["r1", "r2", "r3", "r4", "r5"]
    assert table.column("customer_key").to_pylist() == [customer_key(f"r{i}", SECRET) for i in range(1, 6)]
    empty = customer_keys(pa.chunked_array([], pa.string()), SECRET)
    assert empty.num_rows == 0 and empty.schema.types == [pa.string(), pa.string()]


# --- demo data: planted duplicates merged, nothing else -------------------------------------


def _py_phone(p):
    d = re.sub(r"[^0-9]", "", p if isinstance(p, str) else "")
    if d.startswith("0086") and len(d) > 13:
        d = d[4:]
    elif d.startswith("86") and len(d) == 13:
        d = d[2:]
    return d if len(d) >= 7 else None


def _py_union_find(frame):
    parent = {r: r for r in frame.customer_ref}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    values = {
        "phone": frame.phone.map(_py_phone),
        "email": frame.email.fillna("").str.strip().str.lower().where(lambda s: s.str.contains("@")),
        "tax_id": frame.tax_id.fillna("")
        .str.replace(r"[\s-]", "", regex=True)
        .str.upper()
        .where(lambda s: s.str.len() == 18),
    }
    for series in values.values():
        first: dict[str, str] = {}
        for ref, v in zip(frame.customer_ref, series, strict=True):
            if isinstance(v, str) and v:
                if v in first:
                    parent[find(ref)] = find(first[v])
                else:
                    first[v] = ref
    return {r: find(r) for r in frame.customer_ref}


def test_demo_duplicates_are_merged_and_nothing_else(con, tmp_path):
    from analytics import synth

    synth.generate(tmp_path, customers=400, days=40, seed=11, log=lambda *a: None)
    files = sorted((tmp_path / "customers").glob("*/*.csv"))
    frame = pd.concat(
        [pd.read_csv(f, dtype=str, keep_default_na=False).assign(_partition_date=f.parent.name) for f in files],
        ignore_index=True,
    )
    frame = frame.astype(object).where(frame != "", None)
    truth = pd.read_parquet(tmp_path / "ground_truth_customers.parquet")[["customer_ref", "person_id"]]
    rows = [
        record(
            r["customer_ref"],
            phone=r["phone"],
            email=r["email"],
            tax_id=r["tax_id"],
            day=dt.date.fromisoformat(r["_partition_date"]),
            signup=dt.date.fromisoformat(r["signup_date"]),
            system=r["source_system"],
        )
        for r in frame.to_dict("records")
    ]
    last = dt.date.fromisoformat(max(frame._partition_date))
    out = resolve(con, rows, days=(last,)).merge(truth, on="customer_ref")
    assert len(out) == len(frame) == len(truth)
    # nothing else: no key spans two planted persons
    assert (out.groupby("customer_key").person_id.nunique() == 1).all()
    # every planted duplicate with shared evidence is merged: same partition as a plain union-find
    oracle = _py_union_find(frame)
    ours = dict(zip(out.customer_ref, out.customer_key, strict=True))
    groups = pd.DataFrame({"ref": list(oracle), "root": list(oracle.values())})
    groups["key"] = groups.ref.map(ours)
    assert (groups.groupby("root").key.nunique() == 1).all()
    assert (groups.groupby("key").root.nunique() == 1).all()
    merged = out[out.records_in_customer > 1]
    assert len(merged) > 0.2 * len(out), "the demo plants many multi-record persons"

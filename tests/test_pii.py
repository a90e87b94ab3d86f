"""Personal-data protection (quality/pii.py): scrubbing free text, masking evidence, and
scanning outputs (DuckDB files, Parquet exports) for anything that looks personal.

Every expected output below is written by hand from the rules in the module docstring.
Phone numbers, ids and addresses in these tests are made up.
"""

from __future__ import annotations

import glob
from pathlib import Path

import duckdb
import ibis
import pandas as pd
import pytest

from analytics import _names as names
from quality.contracts import FEEDS
from quality.pii import (
    INTEGER_PHONE_RULE,
    NAME_RULE,
    SCRUB_RULES,
    Finding,
    mask,
    parquet_tables,
    personal_column_rule,
    scan_duckdb,
    scan_frame,
    scan_parquet,
    scrub_expr,
    scrub_text,
)

#: (free text, what it must become)
SCRUBBED: list[tuple[str, str]] = [
    ("请联系我 13812345678，邮箱 zhang.wei@example.com", "请联系我 [phone]，邮箱 [email]"),
    # the generator's phone formats: plain, 3-4-4 with spaces, +86 with dashes, (+86) glued
    ("电话 139 1234 5678 或 +86-138-1234-5678", "电话 [phone] 或 [phone]"),
    ("手机(+86)13912345678，0086 137 1234 5678 也行", "手机[phone]，[phone] 也行"),
    ("回电8613812345678谢谢", "回电[phone]谢谢"),
    ("(13812345678)，＋86 139 1234 5678", "([phone])，[phone]"),
    # numbers one comma apart: a match must not consume the comma the next one starts after
    ("13812345678,13912345678,13712345678", "[phone],[phone],[phone]"),
    ("座机 010-62345678，深圳 (0755)23456789", "座机 [phone]，深圳 [phone]"),
    # resident ids: 18 digits ending in X (upper and lower case) or a digit, 15-digit old format
    ("身份证号11010519491231002X，请核对", "身份证号[id]，请核对"),
    ("身份证 11010519491231002x", "身份证 [id]"),
    ("身份证：110105194912310021。", "身份证：[id]。"),
    ("旧身份证 110105491231002", "旧身份证 [id]"),
    # bank cards: 16 digits glued to Chinese text, 19 digits in groups of four
    ("退款到卡6222021234567890元", "退款到卡[card]元"),
    ("卡号 6222 0212 3456 7890 123 谢谢", "卡号 [card] 谢谢"),
    ("卡号6222-0212-3456-7890，另一张 6212345678901234567", "卡号[card]，另一张 [card]"),
    ("卡号 6222 0212 3456 7890 12元", "卡号 [card] 12元"),  # 12 is not the card's
    ("统一社会信用代码 91340110158014701K", "统一社会信用代码 [tax_id]"),
    # e-mails, including a 139.com address whose local part is a mobile number
    ("邮箱 13812345678@139.com 或 12359593@qq.com", "邮箱 [email] 或 [email]"),
    ("My email is Li.Na+crm@Example.COM.cn.", "My email is [email]."),
    # full-width digits, as typed with a Chinese input method
    ("号码 １３８１２３４５６７８ 谢谢", "号码 [phone] 谢谢"),
    ("建议：\n13812345678\n谢谢", "建议：\n[phone]\n谢谢"),
]

#: texts that hold numbers, but no contact detail: they must come out unchanged
UNCHANGED: list[str] = [
    "金额 1234.50 元",
    "日期 2025-03-01，时间 2025-03-01T10:00:00+08:00",
    "2025-03-01 至 2025-03-31",
    "邮编 100080",
    "订单号 SO20250301001 和 SO0000000209",
    "发票 INV0000000206 金额 103.98",
    '型号 "X-200", 颜色: 黑',
    "等了 3 天，退款 12345678 分",  # 8 digits: too short for any rule
    "a4cd74297f762cb133dc",  # a customer_key: 20 hex characters
    "1234567890123456ab12",  # a customer_key that starts with 16 digits
    "call13812345678now",  # glued to Latin letters: an identifier, not a phone (documented price)
    "",
]


# --- scrubbing --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), SCRUBBED)
def test_contact_details_in_chinese_free_text_become_placeholders(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", UNCHANGED)
def test_amounts_dates_postcodes_and_order_numbers_are_left_alone(text: str) -> None:
    assert scrub_text(text) == text


def test_email_goes_before_phone_and_resident_id_before_card() -> None:
    # 13812345678@139.com: the phone rule alone would leave "[phone]@139.com"
    assert scrub_text("13812345678@139.com") == "[email]"
    # 18 digits are in the card range (16-19); the birth date 1949-12-31 makes it an id
    assert scrub_text("110105194912310021") == "[id]"
    # 18 digits whose "birth date" is month 13: not an id, so a card
    assert scrub_text("110105194913310021") == "[card]"
    order = [r.placeholder for r in SCRUB_RULES]
    assert order == ["[email]", "[id]", "[id]", "[card]", "[tax_id]", "[phone]", "[phone]"]


def test_none_stays_none() -> None:
    assert scrub_text(None) is None


def test_python_and_ibis_scrub_give_identical_results() -> None:
    cases = [t for t, _ in SCRUBBED] + UNCHANGED + [None]
    frame = pd.DataFrame({"i": range(len(cases)), "text": pd.Series(cases, dtype=object)})
    t = ibis.memtable(frame)
    con = ibis.duckdb.connect()
    got = con.execute(t.mutate(scrubbed=scrub_expr(t.text)).order_by("i"))["scrubbed"].tolist()
    expected = [scrub_text(c) for c in cases]
    assert got[:-1] == expected[:-1]
    assert got[-1] is None or pd.isna(got[-1])  # NULL in, NULL out


# --- masking ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812345678", "138******78"),  # first 3, 6 stars, last 2
        ("+86-138-1234-5678", "138******78"),  # separators and country code dropped
        ("(+86)13912345678", "139******78"),
        ("１３８１２３４５６７８", "138******78"),
        ("11010519491231002X", "110*************2X"),  # 18 - 5 = 13 stars
        ("010-62345678", "010******78"),
        ("zhang.wei@example.com", "z***@example.com"),
        ("张伟", "张***"),
        ("客服@店铺 很好", "客***"),  # an @ in free text is not an e-mail: the text rule
        ("12345", "*****"),
        ("x", "*"),
    ],
)
def test_mask_keeps_only_what_identifies_nobody(value: str, masked: str) -> None:
    assert mask(value) == masked


# --- column names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "token"),
    [
        ("name", "name"),
        ("contact_name", "contact"),
        ("customerName", "customer_name"),
        ("phone", "phone"),
        ("mobile_no", "mobile"),
        ("tel", "tel"),
        ("email", "email"),
        ("e_mail", "e_mail"),
        ("home_address", "address"),
        ("id_card_no", "id_card"),
        ("idNumber", "id_number"),
        ("tax_id", "tax_id"),
        ("comment", "comment"),
        ("customer_ref", "ref"),
        ("organisation", "organisation"),
        ("手机号", "手机"),
    ],
)
def test_personal_column_names_are_flagged(column: str, token: str) -> None:
    assert personal_column_rule(column) == token


@pytest.mark.parametrize(
    "column",
    [
        "customer_key",
        "category_name",
        "segment_name",
        "model",
        "attribute",
        "segment",
        "segment_zh",
        "revenue_12m",
        "lead_id",
        "product_id",
        "contact_role",  # describes the contact, is not the contact
        "hotel_nights",  # 'tel' is a token match, not a substring match
        "comment_scrubbed",  # the safe form: its values are still scanned
    ],
)
def test_label_and_key_columns_are_not_flagged(column: str) -> None:
    assert personal_column_rule(column) is None


def test_no_exported_mart_column_looks_personal_and_every_contract_pii_column_does() -> None:
    from pipelines.exports import INTERNAL_MARTS, all_marts

    exported = [(s.table, c) for s in all_marts() if s.table not in INTERNAL_MARTS for c in s.names]
    assert len(exported) > 400  # the check ran over the real list
    assert [(t, c) for t, c in exported if personal_column_rule(c)] == []
    pii = [(f, c.name) for f, ct in FEEDS.items() for c in ct.columns if c.pii]
    assert [(f, c) for f, c in pii if personal_column_rule(c) is None] == []


# --- scanning ---------------------------------------------------------------------------

CLEAN = pd.DataFrame(
    {
        "customer_key": ["a4cd74297f762cb133dc", "0bf437f58c12e157d86d", "1234567890123456ab12"],
        "segment": ["champions", "at_risk", "new"],
        "segment_zh": ["重要价值客户", "重要挽留客户", "新客户"],
        "category_name": ["office", "electronics", "books"],
        "revenue_12m": [1234.50, 13812345678.0, 99.9],  # a float, even if it looks like a phone
        "orders": [3, 13812345678, 7],  # one huge integer is not a phone column
        "as_of_date": pd.to_datetime(["2025-03-01"] * 3),
    }
)


def _planted() -> pd.DataFrame:
    return CLEAN.assign(note=["送货很快", "请联系 138-1234-5678 处理", None])


def test_a_clean_mart_has_no_findings() -> None:
    assert scan_frame(CLEAN, "marts.clean") == []


def test_a_planted_phone_is_found_named_and_masked() -> None:
    findings = scan_frame(_planted(), "marts.x")
    assert findings == [Finding("marts.x", "note", "phone", "138******78", 1)]
    assert "1234" not in str(findings[0])


def test_an_integer_column_of_mobiles_is_a_phone_column() -> None:
    # 2 of 3 values are 11-digit mobiles: at least half, so the column is flagged
    frame = pd.DataFrame({"msisdn": [13812345678, 13912345678, 42]})
    assert scan_frame(frame, "t") == [Finding("t", "msisdn", INTEGER_PHONE_RULE, "138******78", 2)]


def test_a_value_is_reported_under_the_rules_the_scrub_applies() -> None:
    # the 139.com address holds a mobile number: one e-mail finding, no phone finding;
    # the second value holds a phone and an id: one finding each
    frame = pd.DataFrame({"note": ["13812345678@139.com", "电话13912345678 身份证11010519491231002X"]})
    assert scan_frame(frame, "t") == [
        Finding("t", "note", "email", "1***@139.com", 1),
        Finding("t", "note", "id_number", "110*************2X", 1),
        Finding("t", "note", "phone", "139******78", 1),
    ]


def test_sampling_is_deterministic() -> None:
    frame = pd.DataFrame({"note": [f"第{i}条" for i in range(500)] + ["电话 13812345678"] * 3})
    first = scan_frame(frame, "t", sample_rows=50)
    assert first == scan_frame(frame, "t", sample_rows=50)
    assert scan_frame(frame, "t", sample_rows=10_000) == [Finding("t", "note", "phone", "138******78", 1)]


def _write_duckdb(path: Path, frame: pd.DataFrame) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA marts")
        con.register("frame", frame)
        con.execute("CREATE TABLE marts.x AS SELECT * FROM frame")
        con.execute("CREATE VIEW marts.x_latest AS SELECT * FROM marts.x")
    finally:
        con.close()


def test_scan_duckdb_finds_a_planted_phone_in_tables_and_views(tmp_path: Path) -> None:
    db = tmp_path / "bi.duckdb"
    _write_duckdb(db, _planted())
    before = db.read_bytes()
    findings = scan_duckdb(db)
    assert findings == [
        Finding("marts.x", "note", "phone", "138******78", 1),
        Finding("marts.x_latest", "note", "phone", "138******78", 1),
    ]
    assert db.read_bytes() == before  # opened read-only


def test_scan_duckdb_of_a_clean_file_is_empty(tmp_path: Path) -> None:
    db = tmp_path / "bi.duckdb"
    _write_duckdb(db, CLEAN)
    assert scan_duckdb(db) == []


def test_scan_parquet_finds_a_planted_phone_per_table(tmp_path: Path) -> None:
    for day, frame in (("2025-03-01", CLEAN), ("2025-03-02", _planted())):
        folder = tmp_path / "x" / f"as_of_date={day}"
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "data.parquet")
    (tmp_path / "clean").mkdir()
    CLEAN.to_parquet(tmp_path / "clean" / "data.parquet")
    assert {t: len(f) for t, f in parquet_tables(tmp_path).items()} == {"clean": 1, "x": 2}
    assert scan_parquet(tmp_path) == [Finding("x", "note", "phone", "138******78", 1)]


def test_bad_scanner_inputs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sample_rows must be a positive integer"):
        scan_frame(CLEAN, "t", sample_rows=0)
    with pytest.raises(ValueError, match="no DuckDB file"):
        scan_duckdb(tmp_path / "missing.duckdb")
    with pytest.raises(ValueError, match="no folder"):
        scan_parquet(tmp_path / "missing")


# --- the demo generator's data ------------------------------------------------------------


def test_the_generators_comment_pools_hold_no_contact_details() -> None:
    """COMMENTS_SPECIAL only adds CSV-hostile characters (commas, quotes, newlines): the
    scrub leaves every pooled comment as it is and the scanner finds nothing in them."""
    pools = names.COMMENTS_POSITIVE + names.COMMENTS_NEUTRAL + names.COMMENTS_NEGATIVE + names.COMMENTS_SPECIAL
    assert [c for c in pools if scrub_text(c) != c] == []
    assert scan_frame(pd.DataFrame({"comment_scrubbed": list(pools)}), "t") == []


def _landing(root: Path, feed: str) -> pd.DataFrame:
    files = sorted(glob.glob(str(root / feed / "*" / "*.csv")))
    return pd.concat([pd.read_csv(f, dtype=str, keep_default_na=False) for f in files], ignore_index=True)


def test_every_contact_detail_the_generator_makes_is_scrubbed_from_a_comment(tmp_path: Path) -> None:
    from analytics.synth import generate

    generate(tmp_path, customers=200, days=60, seed=3, log=lambda _: None)
    customers, leads = _landing(tmp_path, "customers"), _landing(tmp_path, "leads")
    details = [
        v for v in pd.concat([customers.phone, customers.email, customers.tax_id, leads.phone, leads.email]) if v != ""
    ]
    assert len(details) > 500
    comments = pd.DataFrame({"comment_scrubbed": [f"请联系{v}，谢谢" for v in details]})
    # before scrubbing, the scanner sees phones, e-mails and tax ids / card-like numbers
    assert {f.rule for f in scan_frame(comments, "t")} >= {"phone", "email"}
    scrubbed = comments.comment_scrubbed.map(scrub_text)
    assert [s for s, v in zip(scrubbed, details, strict=True) if v in s] == []
    assert set(scrubbed.str.extract(r"请联系(.*)，谢谢")[0]) <= {"[phone]", "[email]", "[id]", "[card]", "[tax_id]"}
    assert scan_frame(pd.DataFrame({"comment_scrubbed": scrubbed}), "t") == []
    # and the one finding on the column name of the raw feed, with masked evidence only
    raw = scan_frame(customers[["name", "phone"]], "staging.customers")
    assert {(f.column, f.rule) for f in raw} == {
        ("name", f"{NAME_RULE}:name"),
        ("phone", f"{NAME_RULE}:phone"),
        ("phone", "phone"),
    }
    shown = " ".join(str(f) for f in raw)
    assert not any(v in shown for v in details + customers.name.tolist())


def test_quarantine_evidence_masks_a_personal_data_column_and_shows_the_others() -> None:
    """reason_detail names the column and shows the value, except for a personal-data column,
    whose value is masked: a personal date of birth that fails its cast, a phone outside an
    allowed list; a non-personal code keeps its raw value for the data engineer."""
    import dataclasses

    from quality.contracts import CUSTOMERS, Column
    from quality.router import RouteContext, _Verdicts, cast, check_domain

    columns = (
        Column("birthday", "date", "Date of birth.", pii=True),
        Column("mobile", "id", "Phone.", allowed=("0",), pii=True),
        Column("kind", "enum", "Kind.", allowed=("individual",)),
    )
    contract = dataclasses.replace(CUSTOMERS, columns=columns)
    frame = pd.DataFrame(
        {"birthday": ["1985-13-45", "1990-01-02"], "mobile": ["0", "13812345678"], "kind": ["individual", "alien"]},
        dtype="str",
    )
    verdicts = _Verdicts(frame.index)
    typed = cast(frame, contract, RouteContext(), verdicts)
    check_domain(typed, contract, verdicts)
    assert verdicts.detail.tolist() == ["birthday is not a valid date: 198***45", "mobile not in ['0']: 138******78"]
    kind_only = _Verdicts(frame.index)
    check_domain(typed.assign(mobile="0"), contract, kind_only)
    assert kind_only.detail.tolist()[1] == "kind not in ['individual']: alien"

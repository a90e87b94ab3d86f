"""Contracts are complete and self-consistent; the decoder is strict."""

import pytest

from quality import reasons
from quality.contracts import FEEDS, SQL_TYPES
from quality.reader import FileRejected, check_header, decode


@pytest.mark.parametrize("feed", list(FEEDS))
def test_every_column_is_documented_and_typed(feed):
    contract = FEEDS[feed]
    assert contract.description
    for c in contract.columns:
        assert len(c.description) > 10, c.name
        assert c.type in SQL_TYPES
        assert c.domain_reason in reasons.ROW_REASONS
    names = contract.column_names
    assert len(set(names)) == len(names)
    for k in (*contract.key, contract.event_column, *contract.checked_dates, *contract.range_only_dates):
        assert k in names
        assert contract.column(k).required or k in contract.checked_dates


def test_personal_data_columns_are_marked():
    pii = {f"{f}.{c.name}" for f, ct in FEEDS.items() for c in ct.columns if c.pii}
    assert {"customers.name", "customers.phone", "customers.email", "customers.tax_id", "surveys.comment"} <= pii


def test_reason_codes_are_unique_and_described():
    assert set(reasons.REPROCESSABLE) <= set(reasons.ROW_REASONS)
    assert not set(reasons.ROW_REASONS) & set(reasons.FILE_REASONS)


@pytest.mark.parametrize(
    "data,text,enc",
    [
        ("客户,ok".encode(), "客户,ok", "utf-8"),
        (b"\xef\xbb\xbf" + "客户".encode(), "客户", "utf-8-sig"),
        ("客户".encode("gb18030"), "客户", "gb18030"),
    ],
)
def test_decode_strict_utf8_then_gb18030(data, text, enc):
    assert decode(data) == (text, enc)


def test_decode_never_falls_back_to_latin1():
    with pytest.raises(FileRejected) as err:
        decode(b"abc\xff\xfe\x80def")
    assert err.value.reason == reasons.ENCODING_ERROR


def test_declared_encoding_is_enforced():
    with pytest.raises(FileRejected):
        decode("客户".encode("gb18030"), declared="utf-8")


def test_header_in_any_order_is_accepted():
    cols = list(FEEDS["interactions"].column_names)
    check_header(list(reversed(cols)), FEEDS["interactions"])


def test_tab_delimited_header_is_named():
    with pytest.raises(FileRejected) as err:
        check_header(["\t".join(FEEDS["interactions"].column_names)], FEEDS["interactions"])
    assert err.value.reason == reasons.WRONG_DELIMITER

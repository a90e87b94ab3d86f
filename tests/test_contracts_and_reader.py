"""Contracts are complete and self-consistent; the decoder is strict; Parquet rows keep
their exact raw payload."""

import csv
import datetime as dt
import io
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quality import reasons
from quality.contracts import FEEDS, SQL_TYPES
from quality.landing import ManifestEntry, sha256_of
from quality.reader import FileRejected, _parse_one, check_header, decode, read_file, read_parquet_bytes


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


#: values json.dumps escapes (quotes, backslashes, control characters) or must leave alone
#: with ensure_ascii=False (Chinese, emoji, DEL, line/paragraph separators, BOM)
NASTY = [
    "",
    "plain",
    'say "hi"',
    "C:\\path\\x",
    '\\"already escaped\\"',
    "two\nlines\r\n",
    "tab\there",
    "\x00\x01\x08\x0b\x0c\x1b\x1f",
    "\x7f",
    "张三 北京市朝阳区 １２３",
    "emoji 😀",
    "\u2028\u2029",
    "\ufeffbom",
    "/slash",
    "'single', comma",
]


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=4)  # several row groups: several chunks per column
    return buf.getvalue()


def test_parquet_raw_payload_is_json_dumps_of_the_row():
    contract = FEEDS["interactions"]
    names = contract.column_names
    rows = [[NASTY[(i + k) % len(NASTY)] for k in range(len(names))] for i in range(len(NASTY))]
    rows.append([None, "x", None, "y", None])
    table = pa.table({c: pa.array([r[k] for r in rows], pa.string()) for k, c in enumerate(names)})
    frame = read_parquet_bytes(_parquet(table), contract)
    want = [json.dumps({c: v or "" for c, v in zip(names, r, strict=True)}, ensure_ascii=False) for r in rows]
    assert frame["_raw"].tolist() == want
    assert frame[list(names)].values.tolist() == [[v or "" for v in r] for r in rows]
    assert frame["_source_line"].tolist() == list(range(1, len(rows) + 1))


def test_a_parquet_file_read_in_pieces_gives_the_rows_read_whole(tmp_path):
    """A day spilled in key chunks reads a big Parquet file slice by slice: the same rows,
    line numbers running on across the slices, the count checked before any slice is made."""
    contract = FEEDS["interactions"]
    names = contract.column_names
    rows = [[NASTY[(i + k) % len(NASTY)] for k in range(len(names))] for i in range(len(NASTY))]
    table = pa.table({c: pa.array([r[k] for r in rows], pa.string()) for k, c in enumerate(names)})
    path = tmp_path / "interactions_20250301.parquet"
    path.write_bytes(_parquet(table))
    entry = ManifestEntry(path.name, len(rows), sha256_of(path))
    whole = read_file(path, contract, entry, "f")
    sliced = read_file(path, contract, entry, "f", piece_rows=3)
    assert whole.pieces is None and sliced.frame.empty and sliced.rows_read == whole.rows_read == len(rows)
    pieces = list(sliced.frames())
    assert [len(p) for p in pieces] == [3] * (len(rows) // 3) + ([len(rows) % 3] if len(rows) % 3 else [])
    pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole.frame)
    with pytest.raises(FileRejected, match="manifest says"):
        read_file(path, contract, ManifestEntry(path.name, len(rows) + 1, entry.sha256), "f", piece_rows=3)


def test_parquet_typed_values_read_as_csv_text():
    contract = FEEDS["interactions"]
    at = pa.array(
        [dt.datetime(2025, 3, 1, 1, 2, 3), dt.datetime(2025, 3, 1, 1, 2, 3, 450000), None], pa.timestamp("us")
    )
    table = pa.table(
        {
            "interaction_id": pa.array([7, None, -1], pa.int64()),
            "customer_ref": pa.array([True, False, None]),
            "at": at.cast(pa.timestamp("us", "Asia/Shanghai")),
            "type": at,
            "channel": pa.array([dt.date(2025, 3, 1), None, dt.date(1999, 12, 31)]),
        }
    )
    frame = read_parquet_bytes(_parquet(table), contract)
    assert frame[list(contract.column_names)].values.tolist() == [
        ["7", "true", "2025-03-01T09:02:03+08:00", "2025-03-01T01:02:03", "2025-03-01"],
        ["", "false", "2025-03-01T09:02:03.450000+08:00", "2025-03-01T01:02:03.450000", ""],
        ["-1", "", "", "", "1999-12-31"],
    ]
    assert json.loads(frame["_raw"][1]) == frame.loc[1, list(contract.column_names)].to_dict()


@pytest.mark.parametrize(
    "line",
    [
        "a,b,c",
        "a,,",
        ",",
        " a , b ",
        "张三,北京",
        "a\tb;c",
        'a,"b,c",d',
        'a,"b""c"',
        'a,"b\nc"',
        "a\rb",
        'bad"quote',
        '"open',
    ],
)
def test_parse_one_agrees_with_the_csv_module(line):
    try:
        rows = list(csv.reader(io.StringIO(line), strict=True))
    except csv.Error:
        rows = []
    assert _parse_one(line) == (rows[0] if len(rows) == 1 else None)

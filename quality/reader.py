"""Reading one landing file into rows of strings, or rejecting it whole.

Why so careful: a file that is half copied, in the wrong encoding or with a
drifted header must never be half loaded, and a single broken line must not take
the rest of the file with it. So:

- bytes are checked against the manifest first (size/checksum: a partial file is
  rejected before anything is parsed);
- decoding is strict: UTF-8 (BOM or not), then GB18030; never latin-1, which
  "succeeds" on any bytes and turns Chinese names into mojibake;
- the header must name exactly the contract's columns (any order);
- CSV records are parsed by the C `csv` module; if any record breaks (an
  unbalanced quote swallows the following lines), the file is re-read line by
  line so that only the broken line becomes a MALFORMED_ROW.

Everything returned is a string: normalising and casting is the router's job, so
CSV and Parquet files go through the same rules.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quality import reasons
from quality.contracts import FeedContract
from quality.landing import ManifestEntry

#: A quoted field may span lines (comments with newlines); beyond this many
#: physical lines an open quote is taken to be a broken line, not a long field.
MAX_RECORD_LINES = 50

ALTERNATIVE_DELIMITERS = (";", "\t", "|")


class FileRejected(Exception):
    """The whole file is refused; `reason` is a code from quality.reasons."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class FileRows:
    """The rows of one accepted file, all values as strings ('' = empty)."""

    source_file: str
    encoding: str
    frame: pd.DataFrame  # contract columns (str) + _source_line (int) + _raw (str)
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (line, raw, detail)
    #: the frame in slices instead (a Parquet file read with `piece_rows`; `frame` is then empty)
    pieces: Iterator[pd.DataFrame] | None = None
    #: rows in `frame`, or in `pieces` altogether
    data_rows: int = -1

    def __post_init__(self) -> None:
        if self.data_rows < 0:
            self.data_rows = len(self.frame)

    @property
    def rows_read(self) -> int:
        return self.data_rows + len(self.malformed)

    def frames(self) -> Iterator[pd.DataFrame]:
        """The rows, whole or slice by slice."""
        if self.pieces is None:
            yield self.frame
        else:
            yield from self.pieces


def decode(data: bytes, declared: str | None = None) -> tuple[str, str]:
    """Strictly decode feed bytes; return (text, encoding used)."""
    if declared:
        enc = declared.lower().replace("_", "-")
        if enc in ("utf-8", "utf8") and data.startswith(b"\xef\xbb\xbf"):
            enc = "utf-8-sig"
        try:
            return data.decode(enc, errors="strict"), enc
        except (UnicodeDecodeError, LookupError) as exc:
            raise FileRejected(reasons.ENCODING_ERROR, f"not valid {declared} as declared: {exc}") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data.decode("utf-8-sig", errors="strict"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise FileRejected(reasons.ENCODING_ERROR, f"UTF-8 BOM but invalid UTF-8: {exc}") from exc
    try:
        return data.decode("utf-8", errors="strict"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("gb18030", errors="strict"), "gb18030"
        except UnicodeDecodeError as exc:
            raise FileRejected(
                reasons.ENCODING_ERROR,
                f"neither UTF-8 ({utf8_error.reason} at byte {utf8_error.start}) nor GB18030 "
                f"({exc.reason} at byte {exc.start})",
            ) from exc


def check_header(header: list[str], contract: FeedContract) -> None:
    want = set(contract.column_names)
    have = [h.strip() for h in header]
    if set(have) == want and len(have) == len(want):
        return
    if len(have) == 1:
        for delim in ALTERNATIVE_DELIMITERS:
            if {h.strip() for h in have[0].split(delim)} == want:
                raise FileRejected(reasons.WRONG_DELIMITER, f"header is delimited by {delim!r}, not ','")
    missing = sorted(want - set(have))
    extra = sorted(set(have) - want)
    dupes = sorted({h for h in have if have.count(h) > 1})
    parts = []
    if missing:
        parts.append(f"missing columns {missing}")
    if extra:
        parts.append(f"unknown columns {extra}")
    if dupes:
        parts.append(f"repeated columns {dupes}")
    raise FileRejected(reasons.SCHEMA_MISMATCH, "; ".join(parts) or "header does not match the contract")


def _parse_one(text: str) -> list[str] | None:
    if text and len(text) <= csv.field_size_limit() and not any(ch in text for ch in '"\r\n'):
        return text.split(",")  # what the csv module makes of such a line, only faster
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _records_fast(text: str, width: int) -> list[tuple[int, list[str], str]] | None:
    """All records via the C parser, or None if any record is broken."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    lines = text.split("\n")
    out = []
    prev_end = 1  # physical line where the next record starts (header consumed below)
    try:
        header_seen = False
        for fields in reader:
            start, prev_end = prev_end, reader.line_num + 1
            if not header_seen:
                header_seen = True
                continue
            if not fields:
                continue
            if len(fields) != width:
                return None
            raw = "\n".join(lines[start - 1 : reader.line_num]).rstrip("\r")
            out.append((start, fields, raw))
    except csv.Error:
        return None
    return out


def _records_slow(text: str, width: int) -> tuple[list[tuple[int, list[str], str]], list[tuple[int, str, str]]]:
    """Line-by-line recovery: a record that cannot be closed within MAX_RECORD_LINES,
    or that has the wrong field count, costs only its first physical line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    good: list[tuple[int, list[str], str]] = []
    bad: list[tuple[int, str, str]] = []
    i = 1  # skip header (line 1)
    while i < len(lines):
        line = lines[i]
        if line.strip("\r") == "":
            i += 1
            continue
        buf, j = line, i + 1
        while buf.count('"') % 2 and j < len(lines) and j - i < MAX_RECORD_LINES:
            buf += "\n" + lines[j]
            j += 1
        if buf.count('"') % 2 == 0:
            fields = _parse_one(buf.rstrip("\r"))
            if fields is not None and len(fields) == width:
                good.append((i + 1, fields, buf.rstrip("\r")))
                i = j
                continue
            detail = f"{len(fields)} fields, expected {width}" if fields is not None else "quoting error"
        else:
            detail = "unbalanced quote"
        if j - i > 1 and buf.count('"') % 2 == 0:
            detail = f"{detail} (record spanning lines {i + 1}-{j})"
        bad.append((i + 1, line.rstrip("\r"), detail))
        i += 1
    return good, bad


def _frame(records: list[tuple[int, list[str], str]], header: list[str], contract: FeedContract) -> pd.DataFrame:
    names = [h.strip() for h in header]
    lines, fields, raws = zip(*records, strict=True) if records else ((), (), ())
    columns = dict(zip(names, zip(*fields, strict=True), strict=False))  # {} without records
    frame = pd.DataFrame({c: pd.Series(columns.get(c, ()), dtype="str") for c in contract.column_names})
    frame["_source_line"] = pd.Series(lines, dtype="int64")
    frame["_raw"] = pd.Series(raws, dtype="str")
    return frame


def read_csv_text(text: str, contract: FeedContract) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    first_line = text.split("\n", 1)[0].rstrip("\r")
    if not first_line.strip():
        raise FileRejected(reasons.EMPTY_FILE, "no header line")
    header = _parse_one(first_line)
    if header is None:
        raise FileRejected(reasons.SCHEMA_MISMATCH, "header line is not valid CSV")
    check_header(header, contract)
    width = len(header)
    records = _records_fast(text, width)
    malformed: list[tuple[int, str, str]] = []
    if records is None:
        records, malformed = _records_slow(text, width)
    return _frame(records, header, contract), malformed


def _arrow_to_strings(col: pa.ChunkedArray) -> pa.Array:
    """Parquet values as the text a CSV would carry (timestamps in ISO 8601, with the
    offset when the column has a time zone; nulls as ''), so both formats meet the same
    rules. Timestamps are formatted by pandas' `isoformat` once per distinct value."""
    if pa.types.is_timestamp(col.type):
        codes, uniques = pd.factorize(col.to_pandas())
        # code -1 (null) picks the trailing ''
        text = np.array([v.isoformat() for v in uniques] + [""], dtype=object)[codes]
        return pa.array(text, pa.string())
    return col.cast(pa.string()).fill_null("").combine_chunks()


#: a character json.dumps escapes: control characters, '"' and '\\'
_JSON_SPECIAL = r'[\x00-\x1f"\\]'
#: the same as bytes (all ASCII, so never part of a multi-byte UTF-8 character)
_JSON_SPECIAL_BYTE = np.isin(np.arange(256), [*range(0x20), ord('"'), ord("\\")])


def _json_bodies(values: pa.Array) -> pa.Array:
    """Each value as the inside of a JSON string literal, exactly as
    `json.dumps(value, ensure_ascii=False)` writes it: most values need no escaping,
    the few that do go through json.dumps itself."""
    data = values.buffers()[2]  # every value's bytes, back to back
    if data is None or not _JSON_SPECIAL_BYTE[np.frombuffer(data, np.uint8)].any():
        return values  # one pass over the bytes, far cheaper than a regex per value
    special = pc.match_substring_regex(values, _JSON_SPECIAL)
    escaped = [json.dumps(v, ensure_ascii=False)[1:-1] for v in pc.filter(values, special).to_pylist()]
    return pc.replace_with_mask(values, special, pa.array(escaped, pa.string()))


def _json_objects(columns: dict[str, pa.Array]) -> pa.Array:
    """Per row, `json.dumps(dict(zip(names, values)), ensure_ascii=False)` of string
    values: built column-wise by joining the escaped values between constant pieces."""
    pieces: list[str | pa.Array] = []
    for i, (name, values) in enumerate(columns.items()):
        pieces += [("{" if i == 0 else '", ') + json.dumps(name, ensure_ascii=False) + ': "', _json_bodies(values)]
    return pc.binary_join_element_wise(*pieces, '"}', "")


def _parquet_table(data: bytes, contract: FeedContract) -> pa.Table:
    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise FileRejected(reasons.UNREADABLE_FILE, f"not a readable Parquet file: {exc}") from exc
    check_header(table.column_names, contract)
    return table


def _parquet_frame(table: pa.Table, contract: FeedContract, first_row: int = 0) -> pd.DataFrame:
    """Rows of a Parquet table (a slice starting at row `first_row` of its file) as the reader's frame."""
    names = contract.column_names
    text = {c: _arrow_to_strings(table.column(c)) for c in names}
    frame = pd.DataFrame({c: pd.Series(text[c], dtype="str") for c in names})
    frame["_source_line"] = pd.Series(range(first_row + 1, first_row + table.num_rows + 1), dtype="int64")
    frame["_raw"] = pd.Series(_json_objects(text), dtype="str")
    return frame


def read_parquet_bytes(data: bytes, contract: FeedContract) -> pd.DataFrame:
    return _parquet_frame(_parquet_table(data, contract), contract)


def _parquet_slices(table: pa.Table, contract: FeedContract, piece_rows: int) -> Iterator[pd.DataFrame]:
    for start in range(0, table.num_rows, piece_rows):
        yield _parquet_frame(table.slice(start, piece_rows), contract, start)


def read_file(
    path: Path, contract: FeedContract, entry: ManifestEntry | None, source_name: str, piece_rows: int | None = None
) -> FileRows:
    """Read one file; raise FileRejected with a reason code if it must not load. With
    `piece_rows`, a Parquet file's rows come as `pieces` of that many, converted one at a time
    (the Arrow table is held, not the whole file as text); a CSV file is read whole."""
    path = Path(path)
    if entry is None:
        raise FileRejected(reasons.NOT_IN_MANIFEST, f"{path.name} is not listed in the day's manifest")
    data = path.read_bytes()
    if not data:
        raise FileRejected(reasons.EMPTY_FILE, "file has 0 bytes")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise FileRejected(
            reasons.PARTIAL_FILE,
            f"sha256 {digest[:12]}… differs from manifest {entry.sha256[:12]}… ({len(data)} bytes on disk)",
        )
    if path.suffix.lower() == ".parquet":
        table = _parquet_table(data, contract)
        del data
        if piece_rows and table.num_rows > piece_rows:
            pieces = _parquet_slices(table, contract, piece_rows)
            rows = FileRows(source_name, "parquet", pd.DataFrame(), [], pieces, table.num_rows)
        else:
            rows = FileRows(source_name, "parquet", _parquet_frame(table, contract))
    else:
        text, encoding = decode(data, entry.encoding)
        if "\x00" in text:
            raise FileRejected(reasons.ENCODING_ERROR, "NUL characters in text: binary or UTF-16 file")
        frame, malformed = read_csv_text(text, contract)
        rows = FileRows(source_name, encoding, frame, malformed)
    if rows.rows_read != entry.rows:
        raise FileRejected(reasons.PARTIAL_FILE, f"{rows.rows_read} data rows read, manifest says {entry.rows}")
    return rows

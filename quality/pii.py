"""Personal-data protection: scrub contact details out of free text, and scan outputs for
anything that still looks personal (issue 6, item 5).

Raw personal data (names, phones, e-mails, tax ids, comments) stays in staging; the marts,
`bi.duckdb` and the Parquet exports carry only the pseudonymous `customer_key`. Two
building blocks keep that promise:

- `scrub_text` (Python) and `scrub_expr` (Ibis, runs inside DuckDB) replace contact
  details in free text, e.g. survey comments, with placeholders, so a comment can reach a
  mart. They share one list of patterns and give identical results (the tests check it).
- `scan_frame`, `scan_duckdb` and `scan_parquet` look at what leaves the warehouse and
  report every column whose *name* or *values* look personal. A finding shows a masked
  example (`mask`), never the raw value, so the evidence itself leaks nothing.

The scrub rules, applied in this order (`SCRUB_RULES`), and why the order matters:

1. e-mail -> ``[email]``. First, because many Chinese mailboxes have a numeric local part:
   a QQ number, or the owner's mobile number at 139.com; a number rule run first would
   leave ``[phone]@139.com`` and label the address wrongly.
2. 18-digit resident id (6-digit area, birth date 18xx-20xx, 3-digit sequence, check digit
   0-9 or X) -> ``[id]``. Before cards: 18 digits are also in the card range (16-19), and
   the id rule is the more specific one (a plausible birth date).
3. 15-digit resident id of the old format (area, yymmdd, sequence) -> ``[id]``.
4. Bank-card-like runs of 16-19 digits, in one run or grouped 4-4-4-4(-3) by spaces or
   dashes -> ``[card]``. Before phones: longer numbers are claimed first, so a shorter rule never
   eats part of a longer number.
5. Unified social credit codes of organisations (18 characters: authority and type, a
   6-digit division code, 10 characters of 0-9 and A-Y without I O S V Z) -> ``[tax_id]``.
   Not personal for a company, but a sole trader's code identifies a person, and the
   contract marks the column personal. After cards, so an 18-digit bank card is a card.
6. Mainland mobile numbers 1[3-9]x xxxx xxxx, optionally with +86 / 0086 / (+86) / 86 and
   single spaces or dashes between the 3-4-4 groups -> ``[phone]``.
7. Landlines: 0 + 2-3-digit area code (optionally in brackets), optional space or dash,
   7-8-digit local number starting 2-9 -> ``[phone]``.

Every number rule requires the number to stand alone: the character before and after
must not be an ASCII letter or digit (nor ``_`` after it). That is what keeps ordinary numbers intact: an order
number ``SO20250301001`` (digits glued to letters), a date ``2025-03-01``, an amount
``1234.50``, a 6-digit postcode ``100080`` (too short for any rule), and also the 20-hex
`customer_key` (a digit run inside it is always next to a hex letter or another digit).
The price: a phone glued to Latin letters (``call13812345678now``) is not scrubbed.
Full-width digits (０-９), which Chinese input methods produce, count as digits.

RE2 (DuckDB) has no look-around. The character before a number is matched and written
back (``\\1[phone]``); the end is a zero-width word-boundary test (`_last`). It must not
consume the character after the number: in ``13812345678,13912345678`` that comma is the
second number's leading boundary, and in ``，0086 137 1234 5678`` a consumed comma would
leave the second match to start after ``0086`` and keep the country code in the text.
Zero-width at the end, one pass of each rule catches every number.

Column names are checked token by token (snake_case and camelCase split, lower-cased),
never by substring: ``category_name``, ``segment_name``, ``model`` and ``attribute`` are
not personal, ``contact_name`` and ``phone`` are. See `personal_column_rule`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import ibis.expr.types as ir
import pandas as pd

# --- patterns --------------------------------------------------------------------------

_FULLWIDTH_OFFSET = 0xFEE0  # '0' (U+0030) + offset = '０' (U+FF10)


def _digits(lo: str = "0", hi: str = "9") -> str:
    """Character class of the ASCII digits lo..hi and their full-width forms."""
    wide = (chr(ord(lo) + _FULLWIDTH_OFFSET), chr(ord(hi) + _FULLWIDTH_OFFSET))
    return f"[{lo}-{hi}{wide[0]}-{wide[1]}]"


def _literal(number: str) -> str:
    """A literal digit string in which every digit may also be full-width."""
    return "".join(_digits(c, c) for c in number)


_D = _digits()
_ASCII_DIGITS = {ord(c) + _FULLWIDTH_OFFSET: c for c in "0123456789"}
_SEP = "[ \\-－]?"  # one optional space, dash or full-width dash between digit groups
#: a character that may stand next to a number: anything but an ASCII letter or a digit.
_EDGE = "[^0-9０-９A-Za-z]"
_LEAD = f"(^|{_EDGE})"


def _last(ascii_class: str, wide_class: str) -> str:
    """The last character of a number, and the assertion that no letter or digit follows.

    RE2 has no look-ahead, so the end is checked with word boundaries (ASCII-only in RE2
    and in Python under re.ASCII): after an ASCII digit or letter, ``\\b`` holds when a
    non-word character or the end follows; after a full-width digit (not a word character
    in ASCII mode), ``\\B`` holds when no ASCII letter or digit follows."""
    return f"(?:{ascii_class}\\b|{wide_class}\\B)"


_LAST_DIGIT = _last("[0-9]", "[０-９]")

_MONTH = f"(?:{_literal('0')}{_digits('1', '9')}|{_literal('1')}{_digits('0', '2')})"
_DAY = f"(?:{_literal('0')}{_digits('1', '9')}|{_digits('1', '2')}{_D}|{_literal('3')}{_digits('0', '1')})"
_AREA = f"{_digits('1', '9')}{_D}{{5}}"
_CENTURY = f"(?:{_literal('18')}|{_literal('19')}|{_literal('20')})"

_EMAIL = "[A-Za-z0-9._%+\\-]+@[A-Za-z0-9\\-]+(?:\\.[A-Za-z0-9\\-]+)+"
_ID18 = f"{_AREA}{_SEP}{_CENTURY}{_D}{{2}}{_MONTH}{_DAY}{_SEP}{_D}{{3}}{_last('[0-9Xx]', '[０-９Ｘｘ]')}"
_ID15 = f"{_AREA}{_D}{{2}}{_MONTH}{_DAY}{_D}{{2}}{_LAST_DIGIT}"
# 15 digits (in fours or not), then: 4-4-4-4-3 grouping of 19, or 17-19 in one run, or 16
_CARD = (
    f"{_D}{{4}}(?:{_SEP}{_D}{{4}}){{2}}{_SEP}{_D}{{3}}"
    f"(?:{_D}[ \\-－]{_D}{{2}}{_LAST_DIGIT}|{_D}{{1,3}}{_LAST_DIGIT}|{_LAST_DIGIT})"
)
_USCC_CHAR = "[0-9０-９A-HJ-NPQRTUWXY]"
_USCC = f"[1-9A-HJ-NPQRTUWY]{_digits('1', '9')}{_D}{{6}}{_USCC_CHAR}{{9}}{_last('[0-9A-HJ-NPQRTUWXY]', '[０-９]')}"
_COUNTRY = f"(?:[(（]?(?:[+＋]|{_literal('00')})?{_literal('86')}[)）]?{_SEP})?"
_MOBILE = f"{_COUNTRY}{_literal('1')}{_digits('3', '9')}{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{3}}{_LAST_DIGIT}"
_LANDLINE = f"[(（]?{_literal('0')}{_D}{{2,3}}[)）]?{_SEP}{_digits('2', '9')}{_D}{{5,6}}{_LAST_DIGIT}"


@dataclass(frozen=True)
class ScrubRule:
    """One pattern: `pattern` has two groups, the character before the value (written
    back) and the value (replaced by `placeholder`)."""

    name: str
    placeholder: str
    pattern: str

    @property
    def replacement(self) -> str:
        return f"\\1{self.placeholder}"


#: The scrub rules in the order they are applied (see the module docstring for why).
SCRUB_RULES: tuple[ScrubRule, ...] = (
    ScrubRule("email", "[email]", f"()({_EMAIL})"),
    ScrubRule("id_number", "[id]", f"{_LEAD}({_ID18})"),
    ScrubRule("id_number", "[id]", f"{_LEAD}({_ID15})"),
    ScrubRule("card_number", "[card]", f"{_LEAD}({_CARD})"),
    ScrubRule("tax_id", "[tax_id]", f"{_LEAD}({_USCC})"),
    ScrubRule("phone", "[phone]", f"{_LEAD}({_MOBILE})"),
    ScrubRule("phone", "[phone]", f"{_LEAD}({_LANDLINE})"),
)

#: re.ASCII: word boundaries as RE2 has them (ASCII letters, digits and _ are word characters)
_COMPILED: tuple[tuple[ScrubRule, re.Pattern[str]], ...] = tuple(
    (r, re.compile(r.pattern, re.ASCII)) for r in SCRUB_RULES
)


def scrub_text(text: str | None) -> str | None:
    """`text` with e-mails, resident ids, card numbers, credit codes and phone numbers
    replaced by ``[email]``, ``[id]``, ``[card]``, ``[tax_id]`` and ``[phone]``; None stays None."""
    if text is None:
        return None
    for rule, rx in _COMPILED:
        text = rx.sub(rule.replacement, text)
    return text


def scrub_expr(value: ir.StringValue) -> ir.StringValue:
    """Ibis twin of `scrub_text` (DuckDB ``regexp_replace(..., 'g')``); NULL stays NULL."""
    for rule in SCRUB_RULES:
        value = value.re_replace(rule.pattern, rule.replacement)
    return value


# --- masking ---------------------------------------------------------------------------

_EMAIL_VALUE = re.compile(r"^[^@\s]+@[^@\s]+$")
_NUMBER_LIKE = re.compile(r"^[0-9０-９XxＸｘ+＋()（）\s\-－]+$")
_NOT_KEPT = re.compile(r"[\s+＋()（）\-－]")
_COUNTRY_CODE = re.compile(r"^(?:0086|86)(?=1[3-9][0-9]{9}$)")


def mask(value: str) -> str:
    """A value safe to show as evidence.

    E-mail: first letter of the local part and the domain (``z***@example.com``). Numbers
    (phones, ids, cards): separators and a mobile's country code dropped, then the first 3
    and last 2 characters kept (``138******78``). Anything else (names, free text): its
    first character and ``***``. Values too short to keep anything are all stars.
    """
    value = value.strip()
    if _EMAIL_VALUE.match(value):
        local, _, domain = value.partition("@")
        return f"{local[:1]}***@{domain}"
    if _NUMBER_LIKE.match(value):
        digits = _COUNTRY_CODE.sub("", _NOT_KEPT.sub("", value).translate(_ASCII_DIGITS))
        if len(digits) <= 5:
            return "*" * len(digits)
        return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]
    if len(value) <= 1:
        return "*" * len(value)
    return value[:1] + "***"


# --- findings --------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Something in an output that looks personal: where, by which rule, and a masked example."""

    table: str
    column: str
    rule: str
    example: str
    #: distinct sampled values that matched (column-name findings: distinct non-null values seen).
    matches: int = 0

    def __str__(self) -> str:
        return f"{self.table}.{self.column}: {self.rule} (e.g. {self.example!r}, {self.matches} value(s))"


#: rule names used in findings
NAME_RULE = "personal_column_name"
INTEGER_PHONE_RULE = "phone_integers"

#: default number of distinct non-null values looked at per column
SAMPLE_ROWS = 10_000
#: an integer column is a phone column when at least this share of its values are 11-digit
#: mobiles; a few large amounts or ids that happen to look like one do not make it one.
INTEGER_PHONE_SHARE = 0.5

#: column names that are allowed whatever their tokens say: the pseudonymous key.
ALLOWED_COLUMNS: frozenset[str] = frozenset({"customer_key"})
#: a column carrying one of these tokens holds the safe form (e.g. `comment_scrubbed`):
#: its name is allowed, its values are still scanned.
SAFE_TOKENS: frozenset[str] = frozenset({"scrubbed", "redacted", "masked"})
#: tokens that make a column personal wherever they appear.
PERSONAL_TOKENS: frozenset[str] = frozenset(
    {
        "phone", "phones", "mobile", "cellphone", "telephone", "tel", "fax",
        "email", "emails",
        "address", "addresses", "addr", "street",
        "idcard", "passport", "ssn", "openid", "unionid",
        "surname", "fullname", "firstname", "lastname", "username", "nickname",
        "organisation", "organization",
        "comment", "comments", "remark", "remarks",
        "birthday", "birthdate",
        "contact",
    }
)  # fmt: skip
#: consecutive token pairs that make a column personal (ids of people and source records).
PERSONAL_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("e", "mail"), ("id", "card"), ("id", "number"), ("id", "no"), ("id", "num"),
        ("identity", "card"), ("identity", "number"), ("national", "id"), ("resident", "id"),
        ("tax", "id"), ("credit", "code"), ("customer", "id"), ("wechat", "id"),
    }
)  # fmt: skip
#: `<qualifier>_name` is a person's or organisation's name; any other `*_name` (category_name,
#: segment_name, model_name) is a label. A column called just `name` is personal too.
PERSON_QUALIFIERS: frozenset[str] = frozenset(
    {
        "customer", "contact", "person", "full", "first", "last", "given", "family", "middle", "user",
        "real", "legal", "company", "org", "account", "holder", "nick", "display", "recipient", "buyer",
        "sender", "consignee", "respondent", "member", "client", "lead", "prospect",
    }
)  # fmt: skip
#: `contact` is personal except in these pairs, which describe the contact, not who it is.
CONTACT_DESCRIPTORS: frozenset[str] = frozenset({"role", "channel", "type", "count", "date", "rate", "share"})
#: Chinese column names: substrings that mean name, phone, mobile, e-mail, address, id card, contact person.
PERSONAL_ZH: tuple[str, ...] = ("姓名", "电话", "手机", "邮箱", "地址", "身份证", "联系人")

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_TOKEN_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def column_tokens(name: str) -> list[str]:
    """snake_case / camelCase / kebab-case name -> lower-case tokens (``idCardNo`` -> id, card, no)."""
    return [t for t in _TOKEN_SPLIT.split(_CAMEL.sub("_", name).lower()) if t]


def personal_column_rule(name: str) -> str | None:
    """Why the column *name* looks personal (the token or pair that matched), or None."""
    if name in ALLOWED_COLUMNS:
        return None
    for zh in PERSONAL_ZH:
        if zh in name:
            return zh
    tokens = column_tokens(name)
    if SAFE_TOKENS.intersection(tokens):
        return None
    if tokens == ["name"]:
        return "name"
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok == "contact" and nxt in CONTACT_DESCRIPTORS:
            continue
        if tok in PERSONAL_TOKENS:
            return tok
        # `*_ref`: a source-system record id (customer_ref), which undoes the pseudonymisation
        if tok == "ref":
            return "ref"
        if nxt is not None and (tok, nxt) in PERSONAL_PAIRS:
            return f"{tok}_{nxt}"
        if nxt == "name" and tok in PERSON_QUALIFIERS:
            return f"{tok}_name"
    return None


# --- scanning --------------------------------------------------------------------------

_INTEGER_MOBILE = (13_000_000_000, 20_000_000_000)


def _text_findings(table: str, column: str, values: Sequence[str]) -> list[Finding]:
    """One finding per scrub rule that would change any of `values` (distinct, sampled).
    The rules run in scrub order on the progressively scrubbed value, so a value is
    reported under the rules `scrub_text` applies: ``13812345678@139.com`` is an e-mail,
    not also a phone."""
    hits: dict[str, tuple[str, int]] = {}
    for value in values:
        seen: set[str] = set()
        for rule, rx in _COMPILED:
            m = rx.search(value)
            if m is None:
                continue
            if rule.name not in seen:
                seen.add(rule.name)
                first, count = hits.get(rule.name, (m.group(2), 0))
                hits[rule.name] = (first, count + 1)
            value = rx.sub(rule.replacement, value)
    return [Finding(table, column, rule, mask(first), count) for rule, (first, count) in hits.items()]


def _integer_findings(table: str, column: str, values: Sequence[int]) -> list[Finding]:
    lo, hi = _INTEGER_MOBILE
    mobiles = [v for v in values if lo <= v < hi]
    if not values or len(mobiles) < INTEGER_PHONE_SHARE * len(values):
        return []
    return [Finding(table, column, INTEGER_PHONE_RULE, mask(str(mobiles[0])), len(mobiles))]


def _column_findings(table: str, column: str, kind: str, values: Sequence[object]) -> list[Finding]:
    """Name rule plus the value rules for the column's kind ('text', 'integer' or 'other')."""
    out: list[Finding] = []
    token = personal_column_rule(column)
    if token is not None:
        example = mask(str(values[0])) if values else ""
        out.append(Finding(table, column, f"{NAME_RULE}:{token}", example, len(values)))
    if kind == "text":
        out += _text_findings(table, column, [str(v) for v in values])
    elif kind == "integer":
        out += _integer_findings(table, column, [int(v) for v in values])  # type: ignore[call-overload]
    return out


def _check_sample_rows(sample_rows: int) -> None:
    if not isinstance(sample_rows, int) or sample_rows < 1:
        raise ValueError(f"sample_rows must be a positive integer, got {sample_rows!r}")


def _frame_kind(s: pd.Series) -> str:
    if pd.api.types.is_integer_dtype(s.dtype):
        return "integer"
    if pd.api.types.is_string_dtype(s.dtype) or pd.api.types.is_object_dtype(s.dtype):
        return "text"
    return "other"


def scan_frame(frame: pd.DataFrame, table: str, sample_rows: int = SAMPLE_ROWS) -> list[Finding]:
    """Findings in one DataFrame: personal-looking column names, and text / integer columns
    whose values look like phones, e-mails, ids or card numbers. Each column contributes at
    most `sample_rows` distinct non-null values, drawn with a fixed seed (deterministic)."""
    _check_sample_rows(sample_rows)
    out: list[Finding] = []
    for column in frame.columns:
        s = frame[column]
        kind = _frame_kind(s)
        if kind == "other" and personal_column_rule(str(column)) is None:
            continue  # dates, floats, booleans: only their names can be personal
        values = s.dropna()
        if kind == "text":
            # object columns also hold Decimals and dates (DuckDB DECIMAL, DATE): only text is
            # scanned; lists and dicts through their text form
            values = values[values.map(lambda v: isinstance(v, str | list | tuple | dict))].map(str)
        values = values.drop_duplicates()
        if len(values) > sample_rows:
            values = values.sample(n=sample_rows, random_state=0)
        out += _column_findings(table, str(column), kind, values.tolist())
    return out


_NESTED = ("[]", "STRUCT", "MAP", "UNION")


def _duckdb_kind(data_type: str) -> str:
    t = data_type.upper()
    if t == "VARCHAR" or any(n in t for n in _NESTED):
        return "text"
    if t in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"}:
        return "integer"
    return "other"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scan_relation(
    con: duckdb.DuckDBPyConnection, relation: str, table: str, columns: Iterable[tuple[str, str]], sample_rows: int
) -> list[Finding]:
    """Scan one relation (SQL FROM item) column by column. The sample is the distinct
    non-null values ordered by their hash: deterministic whatever the thread count, and
    spread over the whole column rather than its first rows."""
    out: list[Finding] = []
    for column, data_type in columns:
        kind = _duckdb_kind(data_type)
        if kind == "other" and personal_column_rule(column) is None:
            continue  # dates, floats, decimals, booleans: only their names can be personal
        col = _quote(column)
        expr = f"CAST({col} AS VARCHAR)" if kind == "text" else col
        rows = con.execute(
            f"SELECT v FROM (SELECT DISTINCT {expr} AS v FROM {relation} WHERE {col} IS NOT NULL) "
            f"ORDER BY hash(v), v LIMIT {int(sample_rows)}"
        ).fetchall()
        out += _column_findings(table, column, kind, [v for (v,) in rows])
    return out


def _connect(path: str | os.PathLike[str] | None, read_only: bool) -> duckdb.DuckDBPyConnection:
    config = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
    if path is None:
        return duckdb.connect(config=config)
    return duckdb.connect(str(path), read_only=read_only, config=config)


def scan_duckdb(path: str | os.PathLike[str], sample_rows: int = SAMPLE_ROWS) -> list[Finding]:
    """Findings in every table and view of every schema of the DuckDB file at `path`,
    opened read-only. Tables are named ``schema.table``."""
    _check_sample_rows(sample_rows)
    if not Path(path).is_file():
        raise ValueError(f"no DuckDB file at {path}")
    con = _connect(path, read_only=True)
    try:
        relations = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION SELECT schema_name, view_name FROM duckdb_views() "
            "WHERE database_name = current_database() AND NOT internal ORDER BY 1, 2"
        ).fetchall()
        out: list[Finding] = []
        for schema, name in relations:
            columns = con.execute(
                "SELECT column_name, data_type FROM duckdb_columns() WHERE database_name = current_database() "
                "AND schema_name = ? AND table_name = ? ORDER BY column_index",
                [schema, name],
            ).fetchall()
            relation = f"{_quote(schema)}.{_quote(name)}"
            out += _scan_relation(con, relation, f"{schema}.{name}", columns, sample_rows)
        return out
    finally:
        con.close()


def parquet_tables(root: str | os.PathLike[str]) -> dict[str, list[Path]]:
    """Every ``*.parquet`` file under `root` (recursively, hidden files too), grouped into
    tables. A table is the file's folder relative to `root` with Hive partition folders
    (``as_of_date=2025-03-01``) dropped, so ``clv/as_of_date=*/data.parquet`` is one table
    ``clv``; a file directly under `root` is a table named by its stem."""
    tables: dict[str, list[Path]] = {}
    for file in sorted(Path(root).rglob("*.parquet")):
        if not file.is_file():
            continue
        rel = file.relative_to(root)
        folders = [part for part in rel.parent.parts if "=" not in part]
        tables.setdefault("/".join(folders) or rel.stem, []).append(file)
    return tables


def scan_parquet(root: str | os.PathLike[str], sample_rows: int = SAMPLE_ROWS) -> list[Finding]:
    """Findings in every ``*.parquet`` file under `root`, table by table (`parquet_tables`):
    all files of a table are read together (columns matched by name), so a column is
    sampled across every date. Hive folder names are not read as columns."""
    _check_sample_rows(sample_rows)
    if not Path(root).is_dir():
        raise ValueError(f"no folder at {root}")
    con = _connect(None, read_only=False)
    try:
        out: list[Finding] = []
        for table, files in parquet_tables(root).items():
            paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            relation = f"read_parquet([{paths}], hive_partitioning = false, union_by_name = true)"
            # one read of the files per table, not one per column
            con.execute(f"CREATE OR REPLACE TEMP TABLE pii_scan AS SELECT * FROM {relation}")
            columns = con.execute("SELECT column_name, column_type FROM (DESCRIBE pii_scan)").fetchall()
            out += _scan_relation(con, "pii_scan", table, columns, sample_rows)
        return out
    finally:
        con.close()

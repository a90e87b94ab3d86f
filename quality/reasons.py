"""Stable reason codes: why a row was quarantined or a file rejected.

The codes are part of the pipeline's public interface (dashboards filter on them,
runbooks cite them): add new ones, never rename. `REPROCESSABLE` rows fail only
because something they refer to has not arrived yet; rerunning the partition
after it arrives loads them.
"""

from __future__ import annotations

# Row reasons, in the order the router tests them: a row gets the first that applies.
MALFORMED_ROW = "MALFORMED_ROW"  # wrong field count or unbalanced quote
MISSING_REQUIRED = "MISSING_REQUIRED"  # a required column is empty
CAST_ERROR = "CAST_ERROR"  # value cannot be read as the contract type
NAIVE_TIMESTAMP = "NAIVE_TIMESTAMP"  # timestamp without UTC offset and no source time zone configured
NONEXISTENT_LOCAL_TIME = "NONEXISTENT_LOCAL_TIME"  # local time that a DST change skips
INVALID_VALUE = "INVALID_VALUE"  # not in the column's allowed set or range
UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
NON_POSITIVE_AMOUNT = "NON_POSITIVE_AMOUNT"
LIKERT_OUT_OF_RANGE = "LIKERT_OUT_OF_RANGE"
FUTURE_DATE = "FUTURE_DATE"  # after the partition's business date
DATE_OUT_OF_RANGE = "DATE_OUT_OF_RANGE"  # before the earliest valid date (e.g. 1970 defaults)
DUPLICATE_CONFLICT = "DUPLICATE_CONFLICT"  # same key, different content
ORPHAN_RETURN = "ORPHAN_RETURN"  # return whose original order is unknown
UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"  # customer_ref not (yet) in staging.customers

ROW_REASONS: dict[str, str] = {
    MALFORMED_ROW: "The line could not be split into the contract's columns (field count, unbalanced quote).",
    MISSING_REQUIRED: "A required column is empty.",
    CAST_ERROR: "A value cannot be read as its contract type (number, date, timestamp, boolean).",
    NAIVE_TIMESTAMP: "A timestamp has no UTC offset and the feed has no declared source time zone.",
    NONEXISTENT_LOCAL_TIME: "A local timestamp falls in a daylight-saving gap of the source time zone.",
    INVALID_VALUE: "A value is outside the column's allowed set or range.",
    UNKNOWN_CURRENCY: "The currency is not one the pipeline accepts.",
    NON_POSITIVE_AMOUNT: "A quantity, price or amount is zero or negative where it must be positive.",
    LIKERT_OUT_OF_RANGE: "A survey answer lies outside its scale.",
    FUTURE_DATE: "A date lies after the business date of the partition that delivered it.",
    DATE_OUT_OF_RANGE: "A date lies before the earliest valid date.",
    DUPLICATE_CONFLICT: "Another row has the same key but different content; all versions are held back.",
    ORPHAN_RETURN: "A return refers to an order the pipeline has not seen.",
    UNKNOWN_CUSTOMER: "The customer reference is not in staging.customers (re-processable).",
}

REPROCESSABLE = frozenset({UNKNOWN_CUSTOMER, ORPHAN_RETURN})

# File reasons: the whole file is moved to rejected/ with a sidecar; nothing is loaded.
ENCODING_ERROR = "ENCODING_ERROR"
EMPTY_FILE = "EMPTY_FILE"
PARTIAL_FILE = "PARTIAL_FILE"
SCHEMA_MISMATCH = "SCHEMA_MISMATCH"
WRONG_DELIMITER = "WRONG_DELIMITER"
NOT_IN_MANIFEST = "NOT_IN_MANIFEST"
UNREADABLE_FILE = "UNREADABLE_FILE"
MISSING_FILE = "MISSING_FILE"

FILE_REASONS: dict[str, str] = {
    ENCODING_ERROR: "Bytes are neither strict UTF-8 (with or without BOM) nor GB18030.",
    EMPTY_FILE: "The file has no bytes or no header.",
    PARTIAL_FILE: "Size, checksum or row count differ from the manifest: still copying or truncated.",
    SCHEMA_MISMATCH: "The header lacks contract columns or has columns the contract does not know.",
    WRONG_DELIMITER: "The header splits into the contract's columns only with another delimiter.",
    NOT_IN_MANIFEST: "The file is in a complete day's folder but the manifest does not list it.",
    UNREADABLE_FILE: "The file cannot be parsed at all (corrupt Parquet, unsupported format).",
    MISSING_FILE: "The manifest lists a file that is not in the folder (nothing to move; the day is short).",
}

# Outcome of a planted or observed row that is not quarantined.
DEDUPLICATED = "DEDUPLICATED"

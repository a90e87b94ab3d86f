"""Table layouts for the marts: one place that names every column, its storage type
and what it means.

Each analytics module declares the marts it computes as `MartSchema` constants next
to the Ibis function that builds them, so the column list, the code and the docs
cannot drift apart: tests check that the expression yields exactly these columns,
the assets create the DuckDB table (with the descriptions as comments) from them,
and the README tables are written from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Col(NamedTuple):
    """One column: name, DuckDB storage type, and what a value means."""

    name: str
    sql_type: str
    comment: str = ""


@dataclass(frozen=True)
class MartSchema:
    """A mart table: where it lives, its grain, its columns."""

    table: str
    description: str
    columns: tuple[Col, ...]
    #: columns that identify a row within one snapshot (besides as_of_date).
    key: tuple[str, ...] = ()

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.table}: duplicate column names")
        if names[:1] != ["as_of_date"] and self.columns:
            raise ValueError(f"{self.table}: the first column of a mart must be as_of_date")


def as_of_col() -> Col:
    return Col("as_of_date", "DATE", "Snapshot date: built only from data up to the end of this business day.")


def version_col() -> Col:
    return Col("settings_version", "VARCHAR", "Hash of the settings the row was built with (see pipelines/settings).")

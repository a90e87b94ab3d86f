"""Writes docs/marts.md, the reference of every mart, from the code itself: the table
layouts (`MartSchema`), the rules (the docstring of the analytics module that computes
the mart) and the parameters (the `*Params` dataclasses with their `#:` comments and
defaults). A test fails when the committed file is stale, so the reference cannot
drift from the code: `python -m pipelines.docs` rewrites it.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path

from analytics.schema import MartSchema

#: (analytics module, its Params class or None, the mart schemas it defines), in reading order.
SECTIONS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("analytics.identity", "IdentityParams", ("CUSTOMER_IDENTITY",)),
    ("analytics.customer360", "Customer360Params", ("CUSTOMER_360",)),
    ("analytics.rfm", "RFMParams", ("RFM_SEGMENTS",)),
    ("analytics.value", "ValueParams", ("VALUE_TIERS", "PARETO", "PARETO_GROUPS")),
    ("analytics.loyalty", "LoyaltyParams", ("LOYALTY",)),
    ("analytics.tiers", "TierMatrixParams", ("CUSTOMER_TIERS", "TIER_MATRIX")),
    ("analytics.lifecycle", "LifecycleParams", ("LIFECYCLE", "CHURN", "COHORT_RETENTION", "CHURN_WARNING")),
    ("analytics.migration", "MigrationParams", ("SEGMENT_MIGRATION",)),
    ("analytics.strategy", None, ("SEGMENT_STRATEGY",)),
    ("analytics.shopping", "ShoppingListParams", ("SHOPPING_LISTS",)),
    ("analytics.prospects", "ProspectParams", ("PROSPECTS",)),
    ("analytics.clv_marts", "ClvParams", ("CLV", "CLV_MODELS", "CLV_VALIDATION", "CLV_TRACKING")),
    (
        "analytics.satisfaction.marts",
        "SatisfactionParams",
        (
            "SURVEY_EXCLUSIONS",
            "SATISFACTION_INDEX",
            "SATISFACTION_PATHS",
            "CSD",
            "NPS",
            "KANO",
            "IPA",
            "SURVEY_COVERAGE",
            "SATISFACTION_LOYALTY",
            "SURVEY_COMMENTS",
        ),
    ),
)

#: settings section (YAML key) of each Params class
SETTINGS_KEY = {
    "IdentityParams": "identity",
    "Customer360Params": "customer360",
    "RFMParams": "rfm",
    "ValueParams": "value",
    "LoyaltyParams": "loyalty",
    "TierMatrixParams": "tiers",
    "LifecycleParams": "lifecycle",
    "MigrationParams": "migration",
    "ShoppingListParams": "shopping",
    "ProspectParams": "prospects",
    "ClvParams": "clv",
    "SatisfactionParams": "satisfaction",
}

OUT = Path(__file__).resolve().parent.parent / "docs" / "marts.md"


def _field_docs(cls: type) -> dict[str, str]:
    """`#:` comments above each dataclass field."""
    docs: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#:"):
            pending.append(stripped[2:].strip())
            continue
        m = re.match(r"(\w+)\s*:", stripped)
        if m and pending:
            docs[m.group(1)] = " ".join(pending)
        if not stripped.startswith("#"):
            pending = []
    return docs


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    text = repr(value)
    return text if len(text) <= 70 else text[:67] + "..."


def _params(cls: type) -> list[str]:
    docs = _field_docs(cls)
    key = SETTINGS_KEY[cls.__name__]
    lines = [
        f"Parameters (`{cls.__name__}`, YAML section `{key}:` of the settings file):",
        "",
        "| parameter | default | meaning |",
        "|---|---|---|",
    ]
    for f in dataclasses.fields(cls):
        lines.append(f"| `{f.name}` | `{_default(f)}` | {docs.get(f.name, '').replace('|', '/')} |")
    return [*lines, ""]


def _columns(schema: MartSchema) -> list[str]:
    grain = ", ".join(("as_of_date", *schema.key))
    lines = [
        f"### `{schema.table}`",
        "",
        schema.description,
        "",
        f"Grain: one row per {grain}.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| `{c.name}` | {c.sql_type} | {c.comment.replace('|', '/')} |" for c in schema.columns]
    return [*lines, ""]


def render() -> str:
    out = [
        "# Mart reference",
        "",
        "Generated from the code by `python -m pipelines.docs` (a test keeps it current): the rules are the",
        "docstrings of the analytics modules, the parameters their `*Params` dataclasses, the columns the",
        "`MartSchema` of each table. Every mart is a snapshot per `as_of_date` built only from data known by",
        "the end of that business day; every row carries `settings_version`.",
        "",
    ]
    for module_name, params, schemas in SECTIONS:
        module = importlib.import_module(module_name)
        title = ", ".join(f"`{getattr(module, s).table}`" for s in schemas)
        out += [f"## {title}", "", f"Source: `{module_name.replace('.', '/')}.py`", ""]
        out += [inspect.cleandoc(module.__doc__ or ""), ""]
        if params:
            out += _params(getattr(module, params))
        for s in schemas:
            out += _columns(getattr(module, s))
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

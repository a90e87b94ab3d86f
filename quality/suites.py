"""Great Expectations suites, derived from the feed contracts.

GX is the second, independent gate: the router enforces the contract row by row,
and the suite checks the resulting clean frame as a whole (column set, not-null,
allowed values, ranges, key uniqueness, no event after its partition). If the
router ever lets a bad row through, the suite fails and the blocking asset check
stops the marts. The suite also leaves evidence a person can read: Data Docs
under the warehouse folder.

Facts that shape this module (shared/docs/DESIGN.md): GX 1.x validates pandas
frames through an ephemeral context (its SQL datasource on DuckDB is broken); an
expectation that *errors* reports as a plain failure, so `exception_info` is
checked; in-set / between skip nulls, so not-null is its own expectation; GX
writes failing values into Data Docs, so personal-data columns are masked before
validation and never reach it.
"""

from __future__ import annotations

import gc
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from quality.contracts import FeedContract

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

log = logging.getLogger(__name__)

#: A validated frame of at least this many rows is freed by a full garbage collection as soon as
#: the validation ends. GX's ephemeral context holds the frame (and its masked copy) in reference
#: cycles, which only Python's rare full collections free: a backfill of 1M-row batches piled up
#: about 4 GB between them (the sawtooth in the 100M bench's ingest). A collection costs ~0.2 s,
#: too much for the many small frames of tests and nightly runs, which matter little.
COLLECT_ROWS = 100_000


def _quiet_gx() -> None:
    """GX logs every decorator it registers at INFO, and some of its loggers set
    their own level: lower them all to WARNING once GX is imported."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.WARNING)


@dataclass
class SuiteOutcome:
    success: bool
    evaluated: int
    failed: list[str] = field(default_factory=list)
    errored: list[str] = field(default_factory=list)
    docs_index: str | None = None

    @property
    def summary(self) -> str:
        state = "passed" if self.success else "FAILED"
        extra = f"; failed: {self.failed}" if self.failed else ""
        extra += f"; errored: {self.errored}" if self.errored else ""
        return f"GX suite {state} ({self.evaluated} expectations){extra}"

    @classmethod
    def combine(cls, outcomes: list[SuiteOutcome]) -> SuiteOutcome:
        """One outcome for a run validated batch by batch: it passes when every batch passed;
        a failing expectation is named once per batch it failed in. No batch: nothing to check."""
        if not outcomes:
            return cls(True, 0)
        docs = [o.docs_index for o in outcomes if o.docs_index]
        return cls(
            success=all(o.success for o in outcomes),
            evaluated=max(o.evaluated for o in outcomes),
            failed=[f for o in outcomes for f in o.failed],
            errored=sorted({e for o in outcomes for e in o.errored}),
            docs_index=docs[-1] if docs else None,
        )


def expectations_for(contract: FeedContract) -> list:
    """The suite for a feed's clean rows, read off its contract."""
    import great_expectations.expectations as gxe

    exps: list = [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=[*contract.column_names, "business_date", "_partition_date"], exact_match=True
        )
    ]
    for c in contract.columns:
        if c.required:
            exps.append(gxe.ExpectColumnValuesToNotBeNull(column=c.name))
        if c.allowed is not None:
            exps.append(gxe.ExpectColumnValuesToBeInSet(column=c.name, value_set=list(c.allowed)))
        if c.min is not None or c.max is not None:
            exps.append(gxe.ExpectColumnValuesToBeBetween(column=c.name, min_value=c.min, max_value=c.max))
    # Immutable events: a key appears once in the whole range. Mutable entities may
    # restate a key on a later day, but only once per day.
    key = list(contract.key) if contract.immutable else [*contract.key, "_partition_date"]
    if len(key) == 1:
        exps.append(gxe.ExpectColumnValuesToBeUnique(column=key[0]))
    else:
        exps.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=key))
    exps.append(gxe.ExpectColumnValuesToNotBeNull(column="business_date"))
    exps.append(
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="_partition_date", column_B="business_date", or_equal=True, ignore_row_if="either_value_is_missing"
        )
    )
    return exps


def gx_frame(clean: pd.DataFrame, contract: FeedContract) -> pd.DataFrame:
    """The frame GX sees: contract columns with plain dtypes; personal data masked."""
    out = pd.DataFrame(index=clean.index)
    for c in contract.columns:
        s = clean[c.name]
        if c.pii:
            out[c.name] = s.where(s.isna(), "***")
        elif c.type == "money" or c.type == "int":
            out[c.name] = pd.to_numeric(s, errors="coerce").astype("float64")
        elif c.type in ("timestamp", "date"):
            out[c.name] = pd.to_datetime(s)  # not object: a Timestamp object per value costs seconds per million
        else:
            out[c.name] = s.astype("object")
    out["business_date"] = pd.to_datetime(clean["business_date"])
    out["_partition_date"] = pd.to_datetime(clean["_partition_date"])
    return out.reset_index(drop=True)


def _site_config(docs_dir: Path) -> dict:
    return {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir.resolve())},
    }


def validate(
    clean: pd.DataFrame, contract: FeedContract, *, docs_dir: Path | None = None, run_name: str | None = None
) -> SuiteOutcome:
    """Validate a feed's clean rows; optionally write Data Docs to `docs_dir`."""
    outcome = _validate(clean, contract, docs_dir=docs_dir, run_name=run_name)
    if len(clean) >= COLLECT_ROWS:
        gc.collect()  # the GX context of `_validate` is unreachable now, but cyclic (COLLECT_ROWS)
    return outcome


def _validate(
    clean: pd.DataFrame, contract: FeedContract, *, docs_dir: Path | None, run_name: str | None
) -> SuiteOutcome:
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    _quiet_gx()
    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = {"globally": False, "metric_calculations": False}
    if docs_dir is not None:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        ctx.add_data_docs_site(site_name="crm_pipeline", site_config=_site_config(Path(docs_dir)))
    source = ctx.data_sources.add_pandas(f"{contract.name}_clean")
    batch_def = source.add_dataframe_asset(contract.name).add_batch_definition_whole_dataframe("partitions")
    # Built with its expectations: suite.add_expectation one by one costs ~20 ms each (GX
    # copies and re-saves the suite every time), seconds per run on the survey feed.
    suite = ctx.suites.add(
        gx.ExpectationSuite(name=f"{contract.name}_contract", expectations=expectations_for(contract))
    )
    vdef = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{contract.name}_clean", data=batch_def, suite=suite)
    )
    frame = gx_frame(clean, contract)
    if docs_dir is not None:
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=f"{contract.name}_checkpoint",
                validation_definitions=[vdef],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="docs", site_names=["crm_pipeline"])],
                result_format="SUMMARY",
            )
        )
        run = checkpoint.run(
            batch_parameters={"dataframe": frame}, run_id=RunIdentifier(run_name=run_name or contract.name)
        )
        result = next(iter(run.run_results.values()))
    else:
        result = vdef.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    failed, errored = [], []
    for r in result.results:
        cfg = r.expectation_config
        label = f"{cfg.type}({cfg.kwargs.get('column') or cfg.kwargs.get('column_list') or ''})"
        info = r.exception_info or {}
        raised = info.get("raised_exception") if isinstance(info, dict) else False
        if raised or any(
            isinstance(v, dict) and v.get("raised_exception") for v in info.values() if isinstance(info, dict)
        ):
            errored.append(label)
        elif not r.success:
            failed.append(f"{label}: {r.result.get('unexpected_count', '?')} unexpected")
    index = None
    if docs_dir is not None:
        candidate = Path(docs_dir) / "index.html"
        index = str(candidate) if candidate.exists() else None
    return SuiteOutcome(
        success=bool(result.success) and not errored,
        evaluated=len(result.results),
        failed=failed,
        errored=errored,
        docs_index=index,
    )

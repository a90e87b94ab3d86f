"""The CLV parameters planted in the demo data are recovered within their standard errors.

The data are `make run`'s demo (same generator, size, seed, start and defect rate), taken
through the real ingestion (reader, router, quarantine), identity, customer 360 and the CLV
inputs and fit, without Dagster (its runs are tested elsewhere; here they would only add
minutes). The planted values come from the generator's ground_truth.json.

Tolerance: the planted value must lie within 2 standard errors of the estimate (the 95 %
interval). The seed is fixed, so the test is deterministic; at this seed the largest
deviation is r at 1.6 SE. Known small biases, visible only at ~10x the demo's size: the
pipeline counts purchase *days* of completed orders, while the generator plants orders, so
same-day repeats and the 2 % cancelled orders thin each customer's purchases by a few per
cent and raise alpha by ~4 % (about 2 SE at 20,000 customers, 0.9 SE here).
"""

from __future__ import annotations

import datetime as dt
import json

import ibis
import pandas as pd
import pytest

from analytics import synth
from analytics.clv_marts import ClvParams, FittedModels, clv_inputs, default_fitters, fit_models, spend_inputs
from analytics.customer360 import Customer360Params, customer_360
from analytics.identity import IdentityParams, Scratch, current_records, customer_identity
from pipelines.cli import _demo_defaults
from pipelines.settings import Settings
from pipelines.warehouse import Warehouse
from quality.contracts import FEEDS
from quality.ingest import chunks, ensure_tables, ingest_batch
from quality.router import RouteContext

WITHIN_STANDARD_ERRORS = 2.0


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[dict, FittedModels]:
    root = tmp_path_factory.mktemp("clv_demo")
    spec = _demo_defaults(Settings())
    synth.generate(root / "landing", **spec, log=lambda _: None)
    truth = json.loads((root / "landing" / "ground_truth.json").read_text())
    days = [spec["start"] + dt.timedelta(days=d) for d in range(spec["days"])]
    with Warehouse(str(root / "w.duckdb")).connect() as con:
        for contract in FEEDS.values():
            ensure_tables(con, contract)
        for feed in ("customers", "orders"):  # the customer 360 facts the CLV fit reads come from these
            for batch in chunks(days, 31):
                ingest_batch(con, FEEDS[feed], batch, landing_root=root / "landing", ctx=RouteContext(), run_id="t")
        as_of = ibis.memtable(pd.DataFrame({"as_of_date": [days[-1]]}), schema={"as_of_date": "date"})
        staging = lambda name: con.table(name, database="staging")  # noqa: E731
        with Scratch(con) as scratch:
            records = scratch.keep(current_records(staging("customers"), as_of))
            identity = scratch.keep(customer_identity(scratch, records, IdentityParams(), b"test"))
            c360 = scratch.keep(
                customer_360(
                    records=records,
                    identity=identity,
                    orders=staging("orders"),
                    payments=staging("payments"),
                    interactions=staging("interactions"),
                    surveys=staging("surveys"),
                    as_of=as_of,
                    params=Customer360Params(),
                )
            )
            inputs, spend = con.execute(clv_inputs(c360)), con.execute(spend_inputs(c360))
    return truth, fit_models(inputs, ClvParams(), default_fitters(), spend=spend)


def _deviations(model, planted: dict[str, float]) -> dict[str, float]:
    """(estimate - planted) / standard error per parameter."""
    assert model.converged_, model.convergence_message_
    return {k: (model.params_[k] - v) / model.standard_errors_[k] for k, v in planted.items()}


def test_bgnbd_parameters_planted_in_the_demo_are_recovered(demo):
    truth, fitted = demo
    planted = truth["bgnbd"]
    assert planted["time_unit"] == "days"
    week = ClvParams().time_unit_days  # the pipeline fits in weeks: alpha is a time scale
    deviations = _deviations(
        fitted.transaction, {"r": planted["r"], "alpha": planted["alpha"] / week, "a": planted["a"], "b": planted["b"]}
    )
    assert max(abs(z) for z in deviations.values()) < WITHIN_STANDARD_ERRORS, deviations
    assert fitted.n_customers > 2900  # the 3,000 planted persons (a few records stay unmerged)


def test_gamma_gamma_parameters_planted_in_the_demo_are_recovered(demo):
    truth, fitted = demo
    planted = truth["gamma_gamma"]
    assert planted["currency"] == "CNY"
    # the planted rate gamma of nu is Gamma-Gamma's scale v (FHL 2005b: nu ~ Gamma(q, v))
    deviations = _deviations(fitted.gamma_gamma, {"p": planted["p"], "q": planted["q"], "v": planted["gamma"]})
    assert max(abs(z) for z in deviations.values()) < WITHIN_STANDARD_ERRORS, deviations

"""Dagster assets, one module per domain. Thin: read, call quality/ or analytics/,
write through the warehouse resource, report metadata and checks."""

import warnings

import dagster as dg

# BackfillPolicy.single_run is how a 500-day backfill stays fast; it is "beta" only
# by label, and the warning repeats for every asset.
warnings.filterwarnings("ignore", category=dg.BetaWarning)

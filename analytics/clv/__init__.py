"""Probabilistic customer lifetime value (DOMAIN.md §7), a maintained drop-in for ``lifetimes``:
``from lifetimes import BetaGeoFitter`` becomes ``from analytics.clv import BetaGeoFitter``.
What differs from lifetimes is listed in the docstrings of ``fitters``, ``summary`` and ``value``.
"""

from analytics.clv.fitters import (
    BaseFitter,
    BetaGeoFitter,
    GammaGammaFitter,
    ModifiedBetaGeoFitter,
    ParetoNBDFitter,
)
from analytics.clv.summary import calibration_and_holdout_data, summary_data_from_transaction_data
from analytics.clv.value import customer_lifetime_value

__all__ = [
    "BaseFitter",
    "BetaGeoFitter",
    "GammaGammaFitter",
    "ModifiedBetaGeoFitter",
    "ParetoNBDFitter",
    "calibration_and_holdout_data",
    "customer_lifetime_value",
    "summary_data_from_transaction_data",
]

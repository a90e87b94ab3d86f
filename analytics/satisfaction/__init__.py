"""Satisfaction analytics (DOMAIN.md §8): the PLS path model behind the ACSI / ECSI / SCSB
indices, the named models, and the survey measures (NPS, Kano, IPA, CSD, sampling)."""

from analytics.satisfaction.models import ACSI, ECSI, MODELS, SCSB, ModelSpec, load_model
from analytics.satisfaction.pls import PLSPathModel

__all__ = ["ACSI", "ECSI", "MODELS", "SCSB", "ModelSpec", "PLSPathModel", "load_model"]

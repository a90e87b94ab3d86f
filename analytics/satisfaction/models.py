"""The named satisfaction models (ACSI, ECSI, SCSB) and custom models from YAML.

A model here is only structure: which latent variables, which items measure each, which
paths connect them, and the measurement mode of each block. ``PLSPathModel`` estimates it.

- **ACSI** (American Customer Satisfaction Index, Fornell et al. 1996): customer
  expectations, perceived quality and perceived value drive satisfaction, which drives
  complaints and loyalty (complaints also drive loyalty). Items are the survey feed's
  ACSI block; loyalty is measured by repurchase intent and price tolerance (ACSI's own
  loyalty items; "recommend" is scored separately as NPS, on its 0-10 scale).
- **SCSB** (Swedish Customer Satisfaction Barometer, Fornell 1992): no separate quality
  construct; perceived performance (value) and expectations drive satisfaction, then
  voice (complaints) and loyalty.
- **ECSI** (European CSI, Tenenhaus et al. 2005): ACSI plus corporate image, which drives
  expectations, satisfaction and loyalty. Its items are named as in the ECSI mobile-phone
  study (`mobi`: IMAG1-5, CUEX1-3, PERQ1-7, PERV1-2, CUSA1-3, CUSCO, CUSL1-3), the data the
  implementation is tested on; the survey feed has no image items.

A custom model is a YAML file::

    name: my_model
    description: what it measures
    outer: {Quality: [q1, q2], Satisfaction: [s1, s2]}
    inner: [[Quality, Satisfaction]]
    modes: {Quality: B}          # optional, default A
    index: [Satisfaction]        # optional: latents that get a 0-100 index, default all

ACSI and SCSB index every latent variable but complaints, a yes/no item (reported as a
rate); ECSI's complaint item is on the rating scale in the mobi study.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from analytics.satisfaction.pls import PLSPathModel

__all__ = ["ACSI", "ECSI", "MODELS", "SCSB", "ModelSpec", "load_model"]


@dataclass(frozen=True)
class ModelSpec:
    """Structure of a PLS path model: blocks of items (outer), paths (inner) and modes."""

    name: str
    outer: Mapping[str, tuple[str, ...]]
    inner: tuple[tuple[str, str], ...]
    modes: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    #: Latent variables that get a 0-100 index (their items are on the rating scale); () = all.
    index: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if unknown := [lv for lv in self.index if lv not in self.outer]:
            raise ValueError(f"index names latent variables the model does not have: {unknown}")

    @property
    def index_latents(self) -> tuple[str, ...]:
        return self.index or tuple(self.outer)

    def model(self, scheme: str = "path", **kwargs: object) -> PLSPathModel:
        """An unfitted ``PLSPathModel`` of this structure (validates it)."""
        return PLSPathModel(self.outer, self.inner, self.modes, scheme=scheme, **kwargs)

    @property
    def items(self) -> list[str]:
        return [item for items in self.outer.values() for item in items]


ACSI = ModelSpec(
    name="acsi",
    description="American Customer Satisfaction Index (Fornell et al. 1996)",
    outer={
        "Expectation": ("exp_1", "exp_2", "exp_3"),
        "Quality": ("qual_1", "qual_2", "qual_3"),
        "Value": ("value_1", "value_2"),
        "Satisfaction": ("sat_1", "sat_2", "sat_3"),
        "Complaints": ("complaint",),
        "Loyalty": ("repurchase", "price_tolerance"),
    },
    inner=(
        ("Expectation", "Quality"),
        ("Expectation", "Value"),
        ("Expectation", "Satisfaction"),
        ("Quality", "Value"),
        ("Quality", "Satisfaction"),
        ("Value", "Satisfaction"),
        ("Satisfaction", "Complaints"),
        ("Satisfaction", "Loyalty"),
        ("Complaints", "Loyalty"),
    ),
    index=("Expectation", "Quality", "Value", "Satisfaction", "Loyalty"),
)

SCSB = ModelSpec(
    name="scsb",
    description="Swedish Customer Satisfaction Barometer (Fornell 1992)",
    outer={
        "Expectation": ("exp_1", "exp_2", "exp_3"),
        "Value": ("value_1", "value_2"),
        "Satisfaction": ("sat_1", "sat_2", "sat_3"),
        "Complaints": ("complaint",),
        "Loyalty": ("repurchase", "price_tolerance"),
    },
    inner=(
        ("Expectation", "Value"),
        ("Expectation", "Satisfaction"),
        ("Value", "Satisfaction"),
        ("Satisfaction", "Complaints"),
        ("Satisfaction", "Loyalty"),
        ("Complaints", "Loyalty"),
    ),
    index=("Expectation", "Value", "Satisfaction", "Loyalty"),
)

ECSI = ModelSpec(
    name="ecsi",
    description="European Customer Satisfaction Index (Tenenhaus et al. 2005), items of the mobi study",
    outer={
        "Image": ("IMAG1", "IMAG2", "IMAG3", "IMAG4", "IMAG5"),
        "Expectation": ("CUEX1", "CUEX2", "CUEX3"),
        "Quality": ("PERQ1", "PERQ2", "PERQ3", "PERQ4", "PERQ5", "PERQ6", "PERQ7"),
        "Value": ("PERV1", "PERV2"),
        "Satisfaction": ("CUSA1", "CUSA2", "CUSA3"),
        "Complaints": ("CUSCO",),
        "Loyalty": ("CUSL1", "CUSL2", "CUSL3"),
    },
    inner=(
        ("Image", "Expectation"),
        ("Expectation", "Quality"),
        ("Expectation", "Value"),
        ("Quality", "Value"),
        ("Image", "Satisfaction"),
        ("Expectation", "Satisfaction"),
        ("Quality", "Satisfaction"),
        ("Value", "Satisfaction"),
        ("Satisfaction", "Complaints"),
        ("Image", "Loyalty"),
        ("Satisfaction", "Loyalty"),
        ("Complaints", "Loyalty"),
    ),
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in (ACSI, ECSI, SCSB)}


def load_model(path: str | Path) -> ModelSpec:
    """A custom model from YAML (module docstring); the structure is validated on load."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with outer and inner")
    if unknown := sorted(set(doc) - {"name", "description", "outer", "inner", "modes", "index"}):
        raise ValueError(f"{path}: unknown keys {unknown} (allowed: name, description, outer, inner, modes, index)")
    outer, inner = doc.get("outer"), doc.get("inner")
    if not isinstance(outer, dict) or not all(isinstance(v, list) for v in outer.values()):
        raise ValueError(f"{path}: outer must map each latent variable to a list of items")
    if not isinstance(inner, list) or not all(isinstance(p, list) and len(p) == 2 for p in inner):
        raise ValueError(f"{path}: inner must be a list of [from, to] pairs")
    index = doc.get("index") or []
    if not isinstance(index, list):
        raise ValueError(f"{path}: index must be a list of latent variables")
    try:
        spec = ModelSpec(
            name=str(doc.get("name") or path.stem),
            description=str(doc.get("description") or ""),
            outer={str(k): tuple(str(i) for i in v) for k, v in outer.items()},
            inner=tuple((str(a), str(b)) for a, b in inner),
            modes={str(k): str(v) for k, v in (doc.get("modes") or {}).items()},
            index=tuple(str(lv) for lv in index),
        )
        spec.model()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    return spec

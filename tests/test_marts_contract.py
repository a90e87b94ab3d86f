"""The marts as a whole: the generated reference is current, the settings load every
mart section from YAML (and refuse bad values with their path), and every label a mart
can produce has a recommended action."""

import pytest

from pipelines.settings import Settings, load_settings, settings_from_json, settings_to_json


def test_docs_marts_md_is_generated_from_the_code():
    from pipelines import docs

    assert docs.OUT.read_text(encoding="utf-8") == docs.render(), "run: python -m pipelines.docs"


def test_every_mart_schema_is_documented_and_built_by_an_asset():
    import importlib

    from pipelines import docs
    from pipelines.definitions import defs

    documented = {
        getattr(importlib.import_module(module), name).table for module, _, names in docs.SECTIONS for name in names
    }
    built = {".".join(k.path) for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[0] == "marts"}
    assert documented == built


def test_mart_sections_load_from_yaml_and_round_trip(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(
        "rfm: {window: lifetime}\n"
        "value: {tier_cutoffs: [0.02, 0.08, 0.25]}\n"
        "customer360: {category_margins: {groceries: 0.15}}\n"
        "shopping: {cadence_anchor: '2025-01-13'}\n"
    )
    s = load_settings(path)
    assert s.rfm.window == "lifetime" and s.value.tier_cutoffs == (0.02, 0.08, 0.25)
    assert s.customer360.category_margins == {"groceries": 0.15}
    assert s.shopping.cadence_anchor.isoformat() == "2025-01-13"
    assert settings_from_json(settings_to_json(s)) == s
    assert s.version != Settings().version
    # where files live and how runs start do not change a row, so not the version either
    assert Settings(warehouse_path="a", landing_path="b", alert_webhook_url="http://x").version == Settings().version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("value: {tier_cutoffs: [0.5, 0.1, 0.2]}\n", "value"),
        ("rfm: {windw: lifetime}\n", "rfm: unknown settings"),
        ("identity: {max_shared_records: 1}\n", "identity"),
        ("shopping: {cadence_anchor: 'next monday'}\n", "cadence_anchor"),
    ],
)
def test_bad_mart_settings_name_the_offending_setting(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_settings(path)


def test_every_label_a_mart_produces_has_a_strategy():
    from analytics import lifecycle, loyalty, rfm, tiers, value
    from analytics.strategy import DIMENSIONS

    produced = {
        "rfm_segment": set(rfm.SEGMENT_ZH),
        "seed_group": set(rfm.SEED_GROUP_ZH),
        "value_tier": set(value.TIER_ZH),
        "value_group": set(value.VALUE_GROUP_ZH),
        "lifecycle_stage": set(lifecycle.STAGE_ZH),
        "loyalty_level": set(loyalty.LEVEL_ZH),
        "cube": set(tiers.CUBE_CODES),
        "current_potential": set(tiers.VALUE_CELL_ZH),
        "credit_loyalty": {"HH", "HL", "LH", "LL"},
        "scale_loyalty": {"HH", "HL", "LH", "LL"},
    }
    for dimension, codes in produced.items():
        assert set(DIMENSIONS[dimension]) == codes, dimension

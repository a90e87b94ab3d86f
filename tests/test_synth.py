"""The demo-data generator: deterministic, contract-shaped files, manifests that match,
planted parameters that can be recovered, and a defects list that points at real lines."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import synth
from quality import reasons
from quality.contracts import FEEDS, FeedContract
from quality.landing import MANIFEST_NAME, read_manifest, sha256_of
from quality.reader import read_file

START = dt.date(2025, 1, 1)
DEFECT_RUN = {"customers": 300, "days": 100, "seed": 5, "defects": 0.05, "start": START}


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    synth.generate(out, customers=400, days=120, seed=3, start=START, log=_quiet)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planted")
    synth.generate(out, **DEFECT_RUN, log=_quiet)
    return out


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("large")
    synth.generate(out, customers=3000, days=365, seed=11, start=START, log=_quiet)
    return out


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _decode(data: bytes, encoding: str | None) -> str:
    return data.decode(encoding or ("utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"))


def _read(path: Path) -> str:
    """A landing file's text, decoded as its manifest says."""
    entry = (read_manifest(path.parent) or {}).get(path.name)
    return _decode(path.read_bytes(), entry.encoding if entry else None)


def _records(text: str) -> list[tuple[int, list[str], str]]:
    """(first physical line, fields, raw text) per CSV record, header included."""
    out, line = [], 1
    reader = csv.reader(io.StringIO(text, newline=""))
    lines = text.split("\n")
    for fields in reader:
        out.append((line, fields, "\n".join(lines[line - 1 : reader.line_num])))
        line = reader.line_num + 1
    return out


def _main_files(root: Path, feed: str) -> list[Path]:
    return sorted((root / feed).glob(f"*/{feed}_????????.csv"))


# -- determinism and layout ---------------------------------------------------------------------


def test_same_seed_gives_byte_identical_output(planted: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, **DEFECT_RUN, log=_quiet)
    first, second = _files(planted), _files(tmp_path)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_another_seed_gives_other_data(planted: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, **{**DEFECT_RUN, "seed": 6, "defects": 0.0}, log=_quiet)
    name = "orders/2025-01-01/orders_20250101.csv"
    assert (planted / name).read_bytes() != (tmp_path / name).read_bytes()


def test_clean_process_does_not_depend_on_the_defect_rate(planted: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, **{**DEFECT_RUN, "defects": 0.0}, log=_quiet)
    with_defects = pq.read_table(planted / "ground_truth_customers.parquet")
    without = pq.read_table(tmp_path / "ground_truth_customers.parquet")
    assert with_defects.equals(without)


def test_every_feed_has_every_day_with_a_manifest(clean: Path) -> None:
    for feed in FEEDS:
        days = sorted(p.name for p in (clean / feed).iterdir())
        assert days == [(START + dt.timedelta(days=d)).isoformat() for d in range(120)]
        for day in days:
            assert (clean / feed / day / MANIFEST_NAME).exists()
            assert [p.name for p in (clean / feed / day).glob("*.csv")] == [f"{feed}_{day.replace('-', '')}.csv"]


@pytest.mark.parametrize("feed", list(FEEDS))
def test_every_file_has_the_contract_header_and_shape(clean: Path, feed: str) -> None:
    contract = FEEDS[feed]
    rows = 0
    for path in _main_files(clean, feed):
        data = path.read_bytes()
        assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data
        records = _records(data.decode("utf-8"))
        assert records[0][1] == list(contract.column_names)
        assert all(len(fields) == len(contract.column_names) for _, fields, _ in records)
        rows += len(records) - 1
    assert rows > 0


def test_rows_sit_in_the_folder_of_their_business_day(clean: Path) -> None:
    restated = 0
    for feed, contract in FEEDS.items():
        col = contract.column_names.index(contract.event_column)
        for path in _main_files(clean, feed):
            day = path.parent.name
            for _, fields, _ in _records(path.read_text(encoding="utf-8"))[1:]:
                value = fields[col]
                if feed == "payments":  # an invoice is restated on the day it is paid
                    assert value <= day and (value == day or fields[-1] == day)
                elif feed == "leads":  # a lead is restated on a later day, created_at unchanged
                    assert value[:10] <= day and value.endswith("+08:00")
                    restated += value[:10] < day
                else:
                    assert value[:10] == day
                    if contract.column(contract.event_column).type == "timestamp":
                        assert value.endswith("+08:00") and value[10] == "T"
    truth = json.loads((clean / "ground_truth.json").read_text(encoding="utf-8"))
    assert restated == truth["leads"]["restated"] > 0


def test_manifests_match_files_and_the_reader_loads_everything(clean: Path) -> None:
    for feed, contract in FEEDS.items():
        for folder in sorted((clean / feed).iterdir()):
            manifest = read_manifest(folder)
            assert manifest is not None
            for path in folder.glob("*.csv"):
                entry = manifest[path.name]
                assert entry.sha256 == sha256_of(path)
                assert entry.rows == len(_records(path.read_text(encoding="utf-8"))) - 1
                if folder.name.endswith(("01", "15")):  # the reader is slow: a sample of days
                    rows = read_file(path, contract, entry, path.name)
                    assert rows.malformed == [] and len(rows.frame) == entry.rows


def test_values_follow_the_formats(clean: Path) -> None:
    orders = "".join(p.read_text(encoding="utf-8") for p in _main_files(clean, "orders"))
    lines = [r[1] for r in _records(orders) if r[1][0] != "order_id"]
    assert all(len(v[7].split(".")[1]) == 2 and len(v[8].split(".")[1]) == 2 and v[9] == "CNY" for v in lines)
    assert {v[10] for v in lines} == {"completed", "cancelled", "returned"}
    returns = [v for v in lines if v[10] == "returned"]
    assert returns and all(v[0].startswith("RT") and v[12].startswith("SO") for v in returns)
    assert all(v[12] == "" for v in lines if v[10] != "returned")
    customers = "".join(p.read_text(encoding="utf-8") for p in _main_files(clean, "customers"))
    recs = [r[1] for r in _records(customers) if r[1][0] != "customer_ref"]
    assert len({r[0] for r in recs}) == len(recs)
    orgs = [r for r in recs if r[6] != "individual"]
    assert orgs and all(len(r[5]) in (0, 18) for r in orgs) and all(r[5] == "" for r in recs if r[6] == "individual")
    assert any(r[3].startswith("+86-") for r in recs) and any(r[3].startswith("(+86)") for r in recs)


def test_survey_comments_with_commas_quotes_and_newlines_load(large: Path) -> None:
    texts = [p.read_text(encoding="utf-8") for p in _main_files(large, "surveys")]
    comments = [r[1][-1] for t in texts for r in _records(t)[1:]]
    assert any("\n" in c for c in comments) and any('"' in c for c in comments) and any("," in c for c in comments)
    assert sum(c == "" for c in comments) > len(comments) / 2


# -- planted parameters -------------------------------------------------------------------------


def _orders_by_person(root: Path) -> tuple[dict[str, int], list[float]]:
    truth = pq.read_table(root / "ground_truth_customers.parquet").to_pydict()
    person = dict(zip(truth["customer_ref"], truth["person_id"], strict=True))
    per_person: Counter[int] = Counter()
    values: Counter[str] = Counter()
    for path in _main_files(root, "orders"):
        for _, v, _ in _records(path.read_text(encoding="utf-8"))[1:]:
            if v[10] == "returned":
                continue
            if v[1] == "1":
                per_person[person[v[2]]] += 1
            values[v[0]] += int(v[6]) * round(float(v[7]) * 100) - round(float(v[8]) * 100)
    return per_person, [c / 100 for c in values.values()]


def test_bgnbd_and_gamma_gamma_parameters_are_planted(large: Path) -> None:
    truth = json.loads((large / "ground_truth.json").read_text(encoding="utf-8"))
    persons = pq.read_table(large / "ground_truth_customers.parquet").to_pandas().drop_duplicates("person_id")
    per_person, values = _orders_by_person(large)
    # every person's first purchase plus exactly the planted repeat purchases are in the files
    repeats = persons.set_index("person_id")["n_repeat"]
    assert all(per_person[p] == n + 1 for p, n in repeats.items())
    g = truth["gamma_gamma"]
    assert g["mean_order_value"] == pytest.approx(g["p"] * g["gamma"] / (g["q"] - 1))
    assert np.mean(values) == pytest.approx(g["mean_order_value"], rel=0.10)
    b = truth["bgnbd"]
    expected_zero = np.mean((b["alpha"] / (b["alpha"] + persons["T_days"])) ** b["r"])
    assert (persons["n_repeat"] == 0).mean() == pytest.approx(expected_zero, abs=0.03)
    assert persons["lambda"].mean() == pytest.approx(b["r"] / b["alpha"], rel=0.15)
    assert persons["p"].mean() == pytest.approx(b["a"] / (b["a"] + b["b"]), rel=0.1)
    assert not persons.loc[persons["alive_at_end"], "dropout_date"].notna().any()


def test_identity_truth_links_records_that_share_a_person(large: Path) -> None:
    truth = pq.read_table(large / "ground_truth_customers.parquet").to_pandas().set_index("customer_ref")
    recs = {}
    for path in _main_files(large, "customers"):
        for _, v, _ in _records(path.read_text(encoding="utf-8"))[1:]:
            recs[v[0]] = v
    assert set(recs) == set(truth.index)
    shared = truth.groupby("person_id").filter(lambda g: len(g) > 1)
    assert len(shared) > 0.2 * len(truth)
    for _, group in shared.groupby("person_id"):
        rows = [recs[r] for r in group.index]
        assert len({r[2] for r in rows}) == 1  # same name
        assert len({r[1] for r in rows}) == len(rows)  # different source systems
        phones = {"".join(ch for ch in r[3] if ch.isdigit())[-11:] for r in rows if r[3]}
        assert len(phones) <= 1
        assert len({r[4].lower() for r in rows if r[4]}) <= 1
        assert len({r[5] for r in rows if r[5]}) <= 1


def test_ground_truth_json_describes_the_process(large: Path) -> None:
    truth = json.loads((large / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["period"] == {"start": "2025-01-01", "days": 365, "end": "2025-12-31", "end_is_inclusive": True,
                               "time_zone": "Asia/Shanghai", "utc_offset": "+08:00"}  # fmt: skip
    assert truth["bgnbd"]["time_unit"] == "days"
    assert truth["kano"] == dict(synth.DemoParams().kano)
    assert set(truth["acsi"]["paths"]) >= {"CE->PQ", "PQ->SAT", "SAT->LOYALTY"}
    assert {v["quadrant"] for v in truth["ipa"].values()} == {
        "concentrate_here", "keep_up", "low_priority", "possible_overkill",
    }  # fmt: skip
    assert all(truth["survey_flags"][k] for k in ("speeders", "straight_liners", "duplicates", "attention_failed"))
    assert truth["counts"]["rows"]["orders"] == truth["counts"]["clean_rows"]["orders"]
    assert all(p["description"] for p in truth["parameters"].values())


def test_the_truth_files_are_written_as_json_dumps_would(large: Path, planted: Path) -> None:
    """synth writes its JSON with its own encoder (the standard one is slow when it indents);
    the bytes must be exactly what json.dumps(indent=..., ensure_ascii=False) writes."""
    for path, indent in ((large / "ground_truth.json", 2), (planted / "defects.json", 1)):
        text = path.read_text(encoding="utf-8")
        assert text == json.dumps(json.loads(text), indent=indent, ensure_ascii=False), path.name
    odd = {"中文": [1.5, -0.0, 1e300, 10**20, True, None, [], {}, 'a"b\\c\n\u2028'], "": {"x": [[]]}}
    assert synth._json_text(odd, 2) == json.dumps(odd, indent=2, ensure_ascii=False)


def test_survey_flags_and_kano_categories_are_in_the_answers(large: Path) -> None:
    truth = json.loads((large / "ground_truth.json").read_text(encoding="utf-8"))
    cols = FEEDS["surveys"].column_names
    rows = {}
    for path in _main_files(large, "surveys"):
        for _, v, _ in _records(path.read_text(encoding="utf-8"))[1:]:
            rows[v[0]] = dict(zip(cols, v, strict=True))
    flags = truth["survey_flags"]
    assert all(int(rows[r]["duration_s"]) < 60 for r in flags["speeders"])
    assert all(len({rows[r][c] for c in FEEDS["surveys"].grid_columns}) == 1 for r in flags["straight_liners"])
    assert all(rows[r]["attention_check"] != "7" for r in flags["attention_failed"])
    seen = Counter((r["customer_ref"], r["wave"]) for r in rows.values() if r["customer_ref"])
    assert all(seen[(rows[r]["customer_ref"], rows[r]["wave"])] == 2 for r in flags["duplicates"])
    table = synth.KANO_TABLE
    for attr, category in truth["kano"].items():
        got = Counter(table[int(r[f"kano_f_{attr}"]) - 1][int(r[f"kano_d_{attr}"]) - 1] for r in rows.values())
        assert got.most_common(1)[0][0] == category


# -- leads ----------------------------------------------------------------------------------------


def _man(row: dict[str, str], threshold: float) -> str:
    """The MAN rule with ProspectParams' defaults, written out once more by hand."""
    money = (row["declared_budget"] != "" and float(row["declared_budget"]) >= threshold) or row["credit_rating"] in (
        "A",
        "B",
    )
    authority = row["contact_role"] in ("owner", "executive", "purchasing_manager")
    need = row["need"] in ("stated_need", "urgent") or row["requested_quote"] == "true"
    return "".join(c if ok else c.lower() for c, ok in zip("MAN", (money, authority, need), strict=True))


def _lead_versions(root: Path) -> dict[str, list[dict[str, str]]]:
    """Every version of every lead, in delivery order."""
    cols = FEEDS["leads"].column_names
    versions: dict[str, list[dict[str, str]]] = {}
    for path in _main_files(root, "leads"):
        for _, v, _ in _records(_read(path))[1:]:
            versions.setdefault(v[0], []).append({**dict(zip(cols, v, strict=True)), "_day": path.parent.name})
    return versions


def test_leads_carry_the_planted_man_truth(large: Path) -> None:
    truth = json.loads((large / "ground_truth.json").read_text(encoding="utf-8"))["leads"]
    threshold = synth.DemoParams().lead_budget_threshold
    versions = _lead_versions(large)
    assert len(versions) == truth["leads"] > 300
    assert sum(map(len, versions.values())) == truth["rows"] == truth["leads"] + truth["restated"]
    first = Counter(_man(v[0], threshold) for v in versions.values())
    newest = Counter(_man(v[-1], threshold) for v in versions.values())
    assert first == {k: n for k, n in truth["man_counts_first_version"].items() if n}
    assert newest == {k: n for k, n in truth["man_counts_at_end"].items() if n}
    assert set(newest) == set(synth.MAN_CODES)  # every combination is planted
    for v in versions.values():
        assert len(v) <= 2 and v[0]["created_at"][:10] == v[0]["_day"]
        if len(v) == 2:  # a restatement comes later, keeps the lead's identity and adds a condition
            old, new = v
            assert old["_day"] < new["_day"] and old != new
            assert all(old[c] == new[c] for c in ("created_at", "source", "organisation", "kind", "region"))
            before, after = _man(old, threshold), _man(new, threshold)
            assert all(b.islower() or a.isupper() for b, a in zip(before, after, strict=True))
    shares = synth.DemoParams().lead_man_shares
    for letter, name in zip("MAN", ("money", "authority", "need"), strict=True):
        share = sum(n for code, n in first.items() if letter in code) / truth["leads"]
        assert share == pytest.approx(shares[name], abs=0.07)


def _digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())[-11:]


def test_converted_leads_share_contacts_with_their_customer_records(large: Path) -> None:
    truth = json.loads((large / "ground_truth.json").read_text(encoding="utf-8"))["leads"]
    refs = pq.read_table(large / "ground_truth_customers.parquet").to_pydict()
    person_of = dict(zip(refs["customer_ref"], refs["person_id"], strict=True))
    phones: dict[str, set[int]] = {}
    mails: dict[str, set[int]] = {}
    for path in _main_files(large, "customers"):
        for _, v, _ in _records(_read(path))[1:]:
            if v[3]:
                phones.setdefault(_digits(v[3]), set()).add(person_of[v[0]])
            if v[4]:
                mails.setdefault(v[4].lower(), set()).add(person_of[v[0]])
    converted = {c["lead_id"]: c for c in truth["converted"]}
    assert len(converted) > 0.1 * truth["leads"]
    versions = _lead_versions(large)
    for lead_id, v in versions.items():
        lead = v[0]
        linked = phones.get(_digits(lead["phone"]), set()) | mails.get(lead["email"].lower(), set())
        if lead_id in converted:
            c = converted[lead_id]
            assert {person_of[r] for r in c["customer_refs"]} == {c["person_id"]}
            assert lead["phone"] or lead["email"]
            assert linked <= {c["person_id"]}
        else:
            assert linked == set(), lead_id
    assert sum(bool(phones.get(_digits(v[0]["phone"]))) for k, v in versions.items() if k in converted) > 0.5 * len(
        converted
    )


def test_leads_do_not_change_the_other_feeds(planted: Path, tmp_path: Path) -> None:
    """Leads come from a random stream of their own and plant their own defects: the other
    feeds' files are the same with or without them."""
    params = synth.DemoParams(leads_per_day_per_1000=0.0)
    synth.generate(tmp_path, **DEFECT_RUN, params=params, log=_quiet)
    with_leads, without = _files(planted), _files(tmp_path)
    others = [k for k in with_leads if k.split("/")[0] in FEEDS and not k.startswith("leads/")]
    assert others and [k for k in others if with_leads[k] != without.get(k)] == []
    assert not [k for k in without if k.startswith("leads/") and k.endswith(".csv") and without[k].count(b"\n") > 1]
    defects = json.loads((tmp_path / "defects.json").read_text(encoding="utf-8"))
    assert defects == [d for d in _defects(planted) if d["feed"] != "leads"]


def test_leads_get_every_row_and_file_defect(planted: Path) -> None:
    leads = [d for d in _defects(planted) if d["feed"] == "leads"]
    assert {d["expected"] for d in leads} == {
        reasons.MALFORMED_ROW, reasons.MISSING_REQUIRED, reasons.CAST_ERROR, reasons.NAIVE_TIMESTAMP,
        reasons.INVALID_VALUE, reasons.NON_POSITIVE_AMOUNT, reasons.FUTURE_DATE, reasons.DATE_OUT_OF_RANGE,
        reasons.DUPLICATE_CONFLICT, reasons.DEDUPLICATED, "CLEAN", "CLEAN_FILE",
        *(f"FILE_REJECTED:{r}" for r in (reasons.ENCODING_ERROR, reasons.PARTIAL_FILE, reasons.EMPTY_FILE,
                                         reasons.SCHEMA_MISMATCH, reasons.WRONG_DELIMITER, reasons.NOT_IN_MANIFEST)),
    }  # fmt: skip
    # planted rows never touch a real lead's content: conflicts are between two new records
    conflicts = [d for d in leads if d["expected"] == reasons.DUPLICATE_CONFLICT]
    assert conflicts and all(d["note"].startswith("two new records") for d in conflicts)


def test_a_planted_future_date_lies_after_the_file_day_even_for_a_restatement() -> None:
    """A restated lead keeps its old created_at: shifting it by three days may not reach
    past the day of the file that delivers it, so the planter moves it past that day."""
    ctx = synth._Ctx(FEEDS["leads"], np.random.default_rng(0), None, Counter(), set())
    row = synth._parse("LD0000000003,2025-01-05T10:00:00+08:00,web_form,x,y,,,individual,上海市,,,,owner,none,false")
    for day, expected in ((START + dt.timedelta(days=19), "2025-01-23"), (START + dt.timedelta(days=4), "2025-01-08")):
        text, reason, _ = synth._defect_text("future", ctx, list(row), day)
        assert reason == reasons.FUTURE_DATE and text.split(",")[1] == f"{expected}T10:00:00+08:00"


def test_a_population_without_leads_still_writes_every_feed(tmp_path: Path) -> None:
    params = synth.DemoParams(leads_per_day_per_1000=0.0)
    for fmt in synth.FORMATS:
        out = tmp_path / fmt
        synth.generate(out, customers=60, days=6, seed=2, defects=0.05, params=params, fmt=fmt, log=_quiet)
        truth = json.loads((out / "ground_truth.json").read_text(encoding="utf-8"))
        assert truth["counts"]["rows"]["leads"] == truth["leads"]["leads"] == 0
        assert len(list((out / "leads").glob("*/leads_????????.*"))) == 6


# -- planted defects ----------------------------------------------------------------------------


def test_a_zero_rate_plants_nothing(clean: Path) -> None:
    assert json.loads((clean / "defects.json").read_text(encoding="utf-8")) == []
    assert json.loads((clean / "ground_truth.json").read_text(encoding="utf-8"))["conflicted_keys"] == []


def _bad_value(contract: FeedContract, values: dict[str, str], day: str) -> bool:
    """Does the row break one of the contract's rules on its own?"""
    for c in contract.columns:
        v = unicodedata.normalize("NFKC", values[c.name]).strip()
        if v == "":
            if c.required:
                return True
            continue
        v = v.lower() if c.lower else v
        if c.allowed is not None and v not in c.allowed:
            return True
        try:
            if c.type in ("int", "money"):
                number = float(v) if c.type == "money" or v.lstrip("-").isdigit() else float("nan")
                if number != number or v.count(".") > 1:
                    return True
                if (c.min is not None and number < c.min) or (c.max is not None and number > c.max):
                    return True
            elif c.type in ("date", "timestamp"):
                if c.type == "timestamp" and not v.endswith("+08:00"):
                    return True
                when = dt.datetime.fromisoformat(v).date().isoformat()
                future = c.name in (contract.event_column, *contract.checked_dates) and when > day
                if future or when < "2000":
                    return True
            elif c.type == "bool" and v not in ("true", "false"):
                return True
        except ValueError:
            return True
    return False


def test_planted_rows_point_at_lines_that_carry_the_defect(planted: Path) -> None:
    defects = json.loads((planted / "defects.json").read_text(encoding="utf-8"))
    known_refs = {v[0] for p in _main_files(planted, "customers") for _, v, _ in _records(_read(p))[1:]}
    by_file: dict[tuple[str, str, str], list[dict]] = {}
    for d in defects:
        if d["line"] is not None:
            by_file.setdefault((d["feed"], d["business_date"], d["file"]), []).append(d)
    assert {d["expected"] for d in defects} >= {
        reasons.MALFORMED_ROW, reasons.MISSING_REQUIRED, reasons.CAST_ERROR, reasons.NAIVE_TIMESTAMP,
        reasons.UNKNOWN_CURRENCY, reasons.NON_POSITIVE_AMOUNT, reasons.LIKERT_OUT_OF_RANGE, reasons.INVALID_VALUE,
        reasons.FUTURE_DATE, reasons.DATE_OUT_OF_RANGE, reasons.DUPLICATE_CONFLICT, reasons.ORPHAN_RETURN,
        reasons.UNKNOWN_CUSTOMER, reasons.DEDUPLICATED, "CLEAN", "CLEAN_FILE",
    }  # fmt: skip
    for (feed, day, name), items in by_file.items():
        contract = FEEDS[feed]
        folder = planted / feed / day
        text = _read(folder / name)
        records = {line: (fields, raw) for line, fields, raw in _records(text)}
        for d in items:
            assert d["line"] in records, d
            fields, raw = records[d["line"]]
            key = "".join(d["key"].values())
            assert unicodedata.normalize("NFKC", raw).replace(",", "").find(key) >= 0 or d["expected"] == (
                reasons.MALFORMED_ROW
            ), d
            expected = d["expected"]
            if expected == reasons.MALFORMED_ROW:
                assert len(fields) != len(contract.column_names) or raw.count('"') % 2, d
                continue
            values = dict(zip(contract.column_names, fields, strict=True))
            if expected in ("CLEAN", reasons.DEDUPLICATED, reasons.DUPLICATE_CONFLICT):
                assert not _bad_value(contract, values, day), d
                if expected == "CLEAN":
                    assert raw != unicodedata.normalize("NFKC", raw) or any(
                        values[c.name] != values[c.name].lower() for c in contract.columns if c.lower
                    ), d
                elif expected == reasons.DUPLICATE_CONFLICT:
                    same_key = [
                        r for r in records.values() if r[0][: len(d["key"])] == fields[: len(d["key"])] and r[1] != raw
                    ]
                    assert same_key, d
                elif name == f"{feed}_{day.replace('-', '')}.csv":
                    assert sum(r[1] == raw for r in records.values()) == 2, d
            elif expected == reasons.ORPHAN_RETURN:
                assert values["status"] == "returned" and not _bad_value(contract, values, day), d
            elif expected == reasons.UNKNOWN_CUSTOMER:
                assert values["customer_ref"] not in known_refs and not _bad_value(contract, values, day), d
            else:
                assert _bad_value(contract, values, day), d


def test_planted_files_are_broken_as_recorded(planted: Path) -> None:
    defects = json.loads((planted / "defects.json").read_text(encoding="utf-8"))
    files = [d for d in defects if d["line"] is None]
    assert {d["expected"] for d in files} == {
        "CLEAN_FILE", *(f"FILE_REJECTED:{r}" for r in (reasons.ENCODING_ERROR, reasons.PARTIAL_FILE,
                                                         reasons.EMPTY_FILE, reasons.SCHEMA_MISMATCH,
                                                         reasons.WRONG_DELIMITER, reasons.NOT_IN_MANIFEST))
    }  # fmt: skip
    for d in files:
        folder = planted / d["feed"] / d["business_date"]
        path = folder / d["file"]
        data = path.read_bytes()
        manifest = read_manifest(folder) or {}
        reason = d["expected"].split(":")[-1]
        header = list(FEEDS[d["feed"]].column_names)
        if reason == "CLEAN_FILE":
            assert manifest[d["file"]].encoding == d["note"]
            assert _records(data.decode(d["note"]))[0][1] == header
        elif reason == reasons.NOT_IN_MANIFEST:
            assert d["file"] not in manifest
        else:
            assert d["file"] in manifest
        if reason == reasons.ENCODING_ERROR:
            for codec in ("utf-8", "gb18030"):
                with pytest.raises(UnicodeDecodeError):
                    data.decode(codec)
        elif reason == reasons.PARTIAL_FILE:
            assert sha256_of(path) != manifest[d["file"]].sha256
        elif reason == reasons.EMPTY_FILE:
            assert data == b""
        elif reason == reasons.SCHEMA_MISMATCH:
            assert _records(data.decode())[0][1] != header
        elif reason == reasons.WRONG_DELIMITER:
            assert data.decode().split("\n")[0].split(";") == header


def test_manifests_match_every_file_but_the_planted_ones(planted: Path) -> None:
    defects = json.loads((planted / "defects.json").read_text(encoding="utf-8"))
    broken = {
        (d["feed"], d["business_date"], d["file"])
        for d in defects
        if d["expected"].split(":")[-1] in (reasons.PARTIAL_FILE, reasons.NOT_IN_MANIFEST)
    }
    undecodable = {
        (d["feed"], d["business_date"], d["file"]) for d in defects if d["expected"].endswith(reasons.ENCODING_ERROR)
    }
    for feed in FEEDS:
        for folder in sorted((planted / feed).iterdir()):
            manifest = read_manifest(folder) or {}
            for path in folder.glob("*.csv"):
                if (feed, folder.name, path.name) in broken:
                    continue
                entry = manifest[path.name]
                assert entry.sha256 == sha256_of(path), path
                if (feed, folder.name, path.name) not in undecodable:
                    text = _decode(path.read_bytes(), entry.encoding) if path.stat().st_size else ""
                    assert entry.rows == max(len(_records(text)) - 1, 0), path


def test_redelivered_files_repeat_an_earlier_day_exactly(planted: Path) -> None:
    defects = json.loads((planted / "defects.json").read_text(encoding="utf-8"))
    copies = {(d["business_date"], d["file"], d["note"]) for d in defects if d["note"].startswith("re-delivered")}
    assert copies
    for day, name, note in copies:
        source = planted / note.removeprefix("re-delivered copy of ")
        assert source.parent.name < day
        assert (planted / "orders" / day / name).read_bytes() == source.read_bytes()


def test_conflicts_are_recorded_in_the_ground_truth(planted: Path) -> None:
    defects = json.loads((planted / "defects.json").read_text(encoding="utf-8"))
    truth = json.loads((planted / "ground_truth.json").read_text(encoding="utf-8"))
    originals = [d for d in defects if d["note"].endswith("[original]")]
    assert originals
    assert sorted(json.dumps(c, sort_keys=True) for c in truth["conflicted_keys"]) == sorted(
        json.dumps({"feed": d["feed"], "key": d["key"]}, sort_keys=True) for d in originals
    )


# -- the byte engine ----------------------------------------------------------------------------


def test_rendered_rows_equal_the_csv_module() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    words = ["", "a", "北京市", "x" * 40, 'say "hi", ok', "line\nbreak"]
    quoted = [synth._quote_minimal(w) for w in words]
    seq, w1, w2 = rng.integers(0, 10**9, n), rng.integers(0, len(words), n), rng.integers(0, len(words), n)
    big, cents, sec = rng.integers(0, 10**12, n), rng.integers(0, 10**7, n), rng.integers(0, 40 * 86400, n)
    has_text, has_money = rng.random(n) < 0.9, rng.random(n) < 0.8
    parts = [
        *synth._id_parts("SO", seq, ","),
        synth._text(quoted, w1, ",", has_text),
        *synth._int_parts(big, ","),
        *synth._money_parts(cents, ",", has_money),
        *synth._ts_parts(sec, START, ","),
        synth._text(quoted, w2, "\n"),  # a long last column: its padding must not leak
    ]
    buf, off = synth._render(parts, slice(None))
    rows = list(csv.reader(io.StringIO(buf.tobytes().decode("utf-8"), newline="")))
    midnight = dt.datetime.combine(START, dt.time())
    expected = [
        [
            f"SO{seq[i]:010d}",
            words[w1[i]] if has_text[i] else "",
            str(big[i]),
            f"{cents[i] // 100}.{cents[i] % 100:02d}" if has_money[i] else "",
            (midnight + dt.timedelta(seconds=int(sec[i]))).isoformat() + "+08:00",
            words[w2[i]],
        ]
        for i in range(n)
    ]
    assert rows == expected
    assert off[-1] == len(buf)
    again, _ = synth._render(parts, slice(1000, 2000))
    assert again.tobytes() == buf[off[1000] : off[2000]].tobytes()


# -- Parquet --------------------------------------------------------------------------------------

PARQUET_RUN = {**DEFECT_RUN, "fmt": "parquet"}
#: planted problems that only a text file can have: none of them in Parquet mode
TEXT_ONLY = {reasons.MALFORMED_ROW, "CLEAN_FILE", f"FILE_REJECTED:{reasons.ENCODING_ERROR}",
             f"FILE_REJECTED:{reasons.WRONG_DELIMITER}"}  # fmt: skip


@pytest.fixture(scope="module")
def planted_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planted_parquet")
    synth.generate(out, **PARQUET_RUN, log=_quiet)
    return out


def _defects(root: Path) -> list[dict]:
    return json.loads((root / "defects.json").read_text(encoding="utf-8"))


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fmt"):
        synth.generate(tmp_path, customers=10, days=5, fmt="xlsx", log=_quiet)


def test_parquet_same_seed_gives_byte_identical_output(planted_parquet: Path, tmp_path: Path) -> None:
    synth.generate(tmp_path, **PARQUET_RUN, log=_quiet)
    first, second = _files(planted_parquet), _files(tmp_path)
    assert first.keys() == second.keys()
    assert [k for k in first if first[k] != second[k]] == []


def test_parquet_files_have_the_contract_columns_as_strings(planted_parquet: Path) -> None:
    for feed, contract in FEEDS.items():
        assert not list((planted_parquet / feed).glob("*/*.csv"))
        paths = sorted((planted_parquet / feed).glob(f"*/{feed}_????????.parquet"))
        assert [p.parent.name for p in paths] == [
            (START + dt.timedelta(days=d)).isoformat() for d in range(DEFECT_RUN["days"])
        ]
        for path in paths:
            assert path.name == f"{feed}_{path.parent.name.replace('-', '')}.parquet"
            schema = pq.read_schema(path)
            assert schema.names == list(contract.column_names)
            assert set(schema.types) == {pa.string()}


def test_parquet_manifests_match_every_file_but_the_planted_ones(planted_parquet: Path) -> None:
    reason = {(d["feed"], d["business_date"], d["file"]): d["expected"] for d in _defects(planted_parquet)}
    for feed in FEEDS:
        for folder in sorted((planted_parquet / feed).iterdir()):
            manifest = read_manifest(folder)
            assert manifest is not None
            present = {p.name for p in folder.glob("*.parquet")}
            assert set(manifest) <= present and not list(folder.glob("*.tmp"))
            for name in sorted(present):
                expected = reason.get((feed, folder.name, name), "")
                if expected.endswith(reasons.NOT_IN_MANIFEST):
                    assert name not in manifest
                    continue
                entry = manifest[name]
                assert entry.encoding is None
                if expected.endswith(reasons.PARTIAL_FILE):
                    assert entry.sha256 != sha256_of(folder / name)
                    continue
                assert entry.sha256 == sha256_of(folder / name)
                size = (folder / name).stat().st_size
                assert entry.rows == (pq.read_metadata(folder / name).num_rows if size else 0)


def test_parquet_plants_every_defect_but_the_text_only_ones(planted: Path, planted_parquet: Path) -> None:
    csv_defects = [d for d in _defects(planted) if d["expected"] not in TEXT_ONLY]
    pq_defects = _defects(planted_parquet)
    assert {d["expected"] for d in pq_defects} == {d["expected"] for d in csv_defects}
    assert not {d["expected"] for d in pq_defects} & TEXT_ONLY

    def same(d: dict) -> tuple:
        note = d["note"].removesuffix(".csv").removesuffix(".parquet") if d["line"] else None  # files: byte counts
        return d["feed"], d["business_date"], json.dumps(d["key"]), d["expected"], note

    assert [same(d) for d in pq_defects] == [same(d) for d in csv_defects]
    assert all(d["file"].endswith(".parquet") for d in pq_defects)
    assert all(d["line"] is None or d["line"] >= 1 for d in pq_defects)


def test_parquet_rows_are_the_csv_rows_that_are_not_malformed(planted: Path, planted_parquet: Path) -> None:
    """Each Parquet day file holds exactly the records of the CSV day file of the same seed
    but the malformed ones, in the same order, and a planted row's `line` (its row number)
    points at the same record as the CSV line number does."""
    by_csv = {(d["feed"], d["business_date"], d["line"]): d for d in _defects(planted) if d["line"] is not None}
    by_pq = {(d["feed"], d["business_date"], d["line"]): d for d in _defects(planted_parquet) if d["line"]}
    for feed in FEEDS:
        for folder in sorted((planted / feed).iterdir()):
            day = folder.name
            stem = f"{feed}_{day.replace('-', '')}"
            records = [
                (line, fields)
                for line, fields, _ in _records(_read(folder / f"{stem}.csv"))[1:]
                if by_csv.get((feed, day, line), {}).get("expected") != reasons.MALFORMED_ROW
            ]
            table = pq.read_table(planted_parquet / feed / day / f"{stem}.parquet")
            assert [[v or "" for v in row.values()] for row in table.to_pylist()] == [f for _, f in records]
            for row, (line, _) in enumerate(records, start=1):
                planted_csv, planted_pq = by_csv.get((feed, day, line)), by_pq.get((feed, day, row))
                assert (planted_csv is None) == (planted_pq is None), (feed, day, row)
                if planted_csv and planted_pq:
                    assert (planted_pq["key"], planted_pq["expected"]) == (planted_csv["key"], planted_csv["expected"])


def test_parquet_columns_equal_the_csv_rendering() -> None:
    """The Parquet columns come from the same parts as the CSV lines: split at the
    separators, quoting undone, empty values as nulls."""
    rng = np.random.default_rng(1)
    n = 3000
    words = ["", "a", "北京市", "x" * 40, 'say "hi", ok', "line\nbreak"]
    quoted = [synth._quote_minimal(w) for w in words]
    seq, w1, w2 = rng.integers(0, 10**9, n), rng.integers(0, len(words), n), rng.integers(0, len(words), n)
    big, small, cents = rng.integers(0, 10**12, n), rng.integers(0, 500, n), rng.integers(0, 10**7, n)
    sec = rng.integers(0, 40 * 86400, n)
    has_id, has_money = rng.random(n) < 0.3, rng.random(n) < 0.8
    block = synth._int_block(big)
    parts = [
        *synth._id_parts("SO", seq, ","),
        synth._text(quoted, w1, ","),
        *synth._int_parts(big, ","),
        synth._block_part(block, ","),
        *synth._int_parts(small, ","),
        *synth._money_parts(cents, ",", has_money),
        *synth._id_parts("RT", seq, ",", has_id),
        *synth._ts_parts(sec, START, ","),
        synth._text(quoted, w2, "\n"),
    ]
    names = ["id", "text", "big", "block", "small", "money", "ref", "ts", "last"]
    buf, _ = synth._render(parts, slice(None))
    expected = list(csv.reader(io.StringIO(buf.tobytes().decode("utf-8"), newline="")))
    columns = synth._columns(names, parts)
    assert any(c.dictionary is not None for c in columns) and any(c.dictionary is None for c in columns)
    for rows in (slice(None), slice(1000, 2500)):
        table = pa.Table.from_arrays([synth._column_array(c, rows) for c in columns], names=names)
        got = [[v or "" for v in row.values()] for row in synth._plain(table).to_pylist()]
        assert got == expected[rows]
        assert all(v != "" for row in synth._plain(table).to_pylist() for v in row.values())


def _ingest(landing: Path, days: int, warehouse: Path) -> dict[str, Any]:
    """Ingest every feed of a landing zone in the pipeline's batches: quarantined rows'
    reasons and staged rows by (file, line), rejected files' reasons and the ingest log."""
    from pipelines.warehouse import Warehouse
    from quality.ingest import chunks, ensure_tables, ingest_batch
    from quality.router import RouteContext

    feeds = tuple(FEEDS)
    with Warehouse(warehouse).connect() as con:
        for contract in FEEDS.values():
            ensure_tables(con, contract)
            for batch in chunks([START + dt.timedelta(days=d) for d in range(days)], 31):
                ingest_batch(con, contract, batch, landing_root=landing, ctx=RouteContext(), run_id="t")
        quarantine = Warehouse.sql_df(
            con,
            " UNION ALL ".join(f"SELECT _source_file, _source_line, reason_code FROM quarantine.{f}" for f in feeds),
        )
        staged = Warehouse.sql_df(
            con, " UNION ALL ".join(f"SELECT _source_file, _source_line FROM staging.{f}" for f in feeds)
        )
        rejected = Warehouse.sql_df(
            con, "SELECT feed, _partition_date, file_name, reason_code FROM meta.rejected_files"
        )
        log = Warehouse.sql_df(con, "SELECT * FROM meta.ingest_log")
    return {
        "quarantined": {
            (r["_source_file"], r["_source_line"]): r["reason_code"] for r in quarantine.to_dict("records")
        },
        "staged": set(zip(staged["_source_file"], staged["_source_line"], strict=True)),
        "rejected": {
            (r["feed"], str(r["_partition_date"])[:10], r["file_name"]): r["reason_code"]
            for r in rejected.to_dict("records")
        },
        "log": log,
    }


def _where(d: dict) -> tuple[str, int]:
    return f"{d['feed']}/{d['business_date']}/{d['file']}", d["line"]


def _planted_defects_land_where_recorded(got: dict[str, Any], defects: list[dict]) -> None:
    """Every planted bad row is quarantined with its reason at (file, line) and nothing
    else is, clean rewrites are staged, re-delivered rows dropped and every planted broken
    file rejected with its reason."""
    reason = got["quarantined"]
    assert (
        got["log"]["rows_read"] == got["log"]["clean"] + got["log"]["quarantined"] + got["log"]["deduplicated"]
    ).all()
    rows = [d for d in defects if d["line"] is not None]
    bad = [d for d in rows if d["expected"] not in ("CLEAN", reasons.DEDUPLICATED)]
    assert [(d, reason.get(_where(d))) for d in bad if reason.get(_where(d)) != d["expected"]] == []
    assert set(reason) <= {_where(d) for d in rows}
    assert all(_where(d) in got["staged"] for d in rows if d["expected"] == "CLEAN")
    dedup = [d for d in rows if d["expected"] == reasons.DEDUPLICATED]
    assert not [d for d in dedup if _where(d) in got["staged"] or _where(d) in reason]
    files = [d for d in defects if d["expected"].startswith("FILE_REJECTED:")]
    expected_files = {(d["feed"], d["business_date"], d["file"]): d["expected"].split(":", 1)[1] for d in files}
    assert got["rejected"] == expected_files


def test_parquet_demo_with_defects_loads_through_ingestion(tmp_path: Path) -> None:
    """Every planted problem of a Parquet landing zone is found where defects.json says."""
    landing, days = tmp_path / "landing", 35
    synth.generate(landing, customers=300, days=days, seed=11, defects=0.05, start=START, fmt="parquet", log=_quiet)
    defects = _defects(landing)
    got = _ingest(landing, days, tmp_path / "w.duckdb")
    assert "leads" in FEEDS and {d["feed"] for d in defects} == set(FEEDS)
    assert {d["expected"] for d in defects if d["line"] is not None} >= {
        reasons.MISSING_REQUIRED, reasons.CAST_ERROR, reasons.NAIVE_TIMESTAMP, reasons.UNKNOWN_CURRENCY,
        reasons.NON_POSITIVE_AMOUNT, reasons.LIKERT_OUT_OF_RANGE, reasons.INVALID_VALUE, reasons.FUTURE_DATE,
        reasons.DATE_OUT_OF_RANGE, reasons.DUPLICATE_CONFLICT, reasons.ORPHAN_RETURN, reasons.UNKNOWN_CUSTOMER,
        reasons.DEDUPLICATED,
    }  # fmt: skip
    assert {d["expected"].split(":", 1)[1] for d in defects if d["expected"].startswith("FILE_REJECTED:")} == {
        reasons.PARTIAL_FILE,
        reasons.EMPTY_FILE,
        reasons.SCHEMA_MISMATCH,
        reasons.NOT_IN_MANIFEST,
    }
    _planted_defects_land_where_recorded(got, defects)


# -- populations larger than a shard ------------------------------------------------------------

SHARDED = {"customers": 450, "days": 20, "seed": 9, "start": START, "shard_size": 150}
SHARD_RUNS = [("parquet", 0.0), ("csv", 0.0), ("parquet", 0.05), ("csv", 0.05)]


@pytest.fixture(scope="module", params=SHARD_RUNS, ids=[f"{f}-{r}" for f, r in SHARD_RUNS])
def sharded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    """Three shards of 150 persons, generated by two worker processes."""
    fmt, rate = request.param
    out = tmp_path_factory.mktemp(f"sharded_{fmt}")
    synth.generate(out, **SHARDED, defects=rate, fmt=fmt, workers=2, log=_quiet)
    return out, fmt, rate


def _table(path: Path, entry) -> list[dict[str, str]]:
    """A landing file's rows as strings ('' for empty)."""
    if path.suffix == ".parquet":
        return [{k: v or "" for k, v in row.items()} for row in pq.read_table(path).to_pylist()]
    records = _records(_decode(path.read_bytes(), entry.encoding))
    return [dict(zip(records[0][1], values, strict=False)) for _, values, _ in records[1:]]  # planted: malformed


def _shard_files(root: Path, feed: str, fmt: str) -> dict[int, list[Path]]:
    """Each shard's main files of a feed (by shard number)."""
    out: dict[int, list[Path]] = {}
    for path in sorted((root / feed).glob(f"*/{feed}_????????.s???.{fmt}")):
        out.setdefault(int(path.suffixes[0][2:]), []).append(path)
    return out


def test_sharded_days_have_a_file_per_shard_listed_in_one_manifest(sharded: tuple[Path, str, float]) -> None:
    root, fmt, _ = sharded
    reason = {(d["feed"], d["business_date"], d["file"]): d["expected"] for d in _defects(root)}
    assert not (root / synth._SHARD_PARTS).exists()
    for feed in FEEDS:
        folders = sorted((root / feed).iterdir())
        assert [f.name for f in folders] == [(START + dt.timedelta(days=d)).isoformat() for d in range(SHARDED["days"])]
        for folder in folders:
            manifest = read_manifest(folder)
            assert manifest is not None
            stem = f"{feed}_{folder.name.replace('-', '')}"
            assert {f"{stem}.s{k:03d}.{fmt}" for k in range(3)} <= set(manifest)
            present = {p.name for p in folder.iterdir() if p.name != MANIFEST_NAME}
            unlisted = {n for n in present if reason.get((feed, folder.name, n), "").endswith(reasons.NOT_IN_MANIFEST)}
            assert set(manifest) == present - unlisted
            for name, entry in manifest.items():
                if reason.get((feed, folder.name, name), "").split(":")[-1] in (
                    reasons.PARTIAL_FILE, reasons.EMPTY_FILE, reasons.SCHEMA_MISMATCH, reasons.ENCODING_ERROR,
                    reasons.WRONG_DELIMITER,
                ):  # fmt: skip
                    continue
                assert entry.sha256 == sha256_of(folder / name)
                assert entry.rows == len(_table(folder / name, entry))


def test_sharded_ids_are_unique_across_shards(sharded: tuple[Path, str, float]) -> None:
    """Each feed's keys (and the customer references) of one shard appear in no other."""
    root, fmt, rate = sharded
    if rate:
        pytest.skip("planted malformed rows have no reliable key")
    for feed, contract in FEEDS.items():
        keys = {}
        for k, paths in _shard_files(root, feed, fmt).items():
            rows = [r for p in paths for r in _table(p, read_manifest(p.parent)[p.name])]
            keys[k] = {tuple(r[c] for c in contract.key) for r in rows}
            assert all(all(key) for key in keys[k])
        assert len(keys) == 3
        assert sum(len(v) for v in keys.values()) == len(set().union(*keys.values())), feed


def test_sharded_persons_are_distinct_across_shards(sharded: tuple[Path, str, float]) -> None:
    """Person ids are the shards' blocks, and no two persons share a customer_ref, phone,
    e-mail or tax id (identity resolution must not merge persons of different shards)."""
    root, fmt, rate = sharded
    truth = pq.read_table(root / "ground_truth_customers.parquet").to_pandas()
    assert sorted(set(truth.person_id)) == list(range(450))
    assert truth.customer_ref.is_unique
    if rate:
        return
    person = dict(zip(truth.customer_ref, truth.person_id, strict=True))
    owner: dict[tuple[str, str], int] = {}
    for paths in _shard_files(root, "customers", fmt).values():
        for p in paths:
            for r in _table(p, read_manifest(p.parent)[p.name]):
                digits = "".join(ch for ch in r["phone"] if ch.isdigit())[-11:]
                for key in (("phone", digits), ("email", r["email"].lower()), ("tax_id", r["tax_id"])):
                    if key[1]:
                        assert owner.setdefault(key, person[r["customer_ref"]]) == person[r["customer_ref"]], key


def test_sharded_ground_truth_counts_the_rows_written(sharded: tuple[Path, str, float]) -> None:
    root, fmt, rate = sharded
    truth = json.loads((root / "ground_truth.json").read_text(encoding="utf-8"))
    counts = truth["counts"]
    written = {
        feed: sum(
            len(_table(p, read_manifest(p.parent)[p.name])) for ps in _shard_files(root, feed, fmt).values() for p in ps
        )
        for feed in FEEDS
    }
    assert counts["rows"] == written
    assert truth["shards"]["count"] == 3 and truth["shards"]["persons"] == [150] * 3
    assert counts["persons"] == 450 == sum(counts["persons_by_kind"].values())
    assert counts["records"] == pq.read_metadata(root / "ground_truth_customers.parquet").num_rows
    clean = counts["clean_rows"]
    assert clean["customers"] == counts["records"]
    assert clean["orders"] == counts["order_lines"] + counts["return_rows"]
    assert clean["surveys"] == counts["survey_responses"]
    assert clean["interactions"] == sum(counts["interactions_by_type"].values())
    assert clean["leads"] == truth["leads"]["rows"]
    assert sum(truth["leads"]["man_counts_first_version"].values()) == truth["leads"]["leads"]
    assert all(0 < v < 1 for v in truth["realised"].values() if v < 1) and truth["realised"]["mean_order_value"] > 0
    if not rate:
        assert counts["rows"] == clean and _defects(root) == [] and truth["conflicted_keys"] == []
    flags = truth["survey_flags"]
    assert len({r for v in flags.values() for r in v}) == sum(len(v) for v in flags.values())


def test_sharded_landing_ingests_as_planted(sharded: tuple[Path, str, float], tmp_path: Path) -> None:
    """Clean shards load without a quarantined row or rejected file; planted problems land
    where defects.json says."""
    root, _, rate = sharded
    landing = tmp_path / "landing"
    shutil.copytree(root, landing)  # rejected files are moved away
    got = _ingest(landing, SHARDED["days"], tmp_path / "w.duckdb")
    defects = _defects(root)
    if not rate:
        assert got["quarantined"] == {} and got["rejected"] == {} and not defects
        assert int(got["log"]["clean"].sum()) == sum(
            json.loads((root / "ground_truth.json").read_text())["counts"]["rows"].values()
        )
    else:
        assert {d["feed"] for d in defects} == set(FEEDS)
    _planted_defects_land_where_recorded(got, defects)


def test_sharded_output_does_not_depend_on_the_workers(tmp_path: Path) -> None:
    run = {**SHARDED, "customers": 300, "days": 12, "defects": 0.05, "fmt": "parquet", "log": _quiet}
    synth.generate(tmp_path / "one", **run, workers=1)
    synth.generate(tmp_path / "two", **run, workers=2)
    first, second = _files(tmp_path / "one"), _files(tmp_path / "two")
    assert first.keys() == second.keys() and [k for k in first if first[k] != second[k]] == []
    assert any(k.endswith(".s001.parquet") for k in first)


def test_a_population_within_one_shard_is_not_sharded(tmp_path: Path) -> None:
    run = {"customers": 150, "days": 8, "seed": 4, "start": START, "defects": 0.05, "log": _quiet}
    synth.generate(tmp_path / "default", **run)
    synth.generate(tmp_path / "one_shard", **run, shard_size=150, workers=2)
    assert _files(tmp_path / "default") == _files(tmp_path / "one_shard")

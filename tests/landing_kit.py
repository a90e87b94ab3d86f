"""Build small landing folders by hand for tests: valid rows per feed, and a writer
that produces CSV (any encoding), Parquet and manifests, so each bad input can be
planted exactly once and its fate asserted."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd

from quality.contracts import FEEDS, SERVICE_ATTRIBUTES
from quality.landing import ManifestEntry, sha256_of, write_manifest


def customer(ref: str = "CRM-0000001", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "customer_ref": ref,
        "source_system": "crm",
        "name": "张伟",
        "phone": "13800138000",
        "email": "Zhang.Wei@example.cn",
        "tax_id": "",
        "kind": "individual",
        "region": "上海市",
        "industry": "",
        "employees": "",
        "annual_revenue": "",
        "signup_date": day,
        "acquisition_channel": "search",
        "acquisition_cost": "35.00",
    }
    return {**row, **over}


def order(order_id: str = "O-1", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "order_id": order_id,
        "line_no": "1",
        "customer_ref": "CRM-0000001",
        "ordered_at": f"{day}T10:15:00+08:00",
        "product_id": "SKU-001",
        "category": "toys",
        "quantity": "2",
        "unit_price": "59.90",
        "discount": "0.00",
        "currency": "CNY",
        "status": "completed",
        "channel": "web",
        "original_order_id": "",
    }
    return {**row, **over}


def payment(invoice_id: str = "INV-1", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "invoice_id": invoice_id,
        "customer_ref": "CRM-0000001",
        "order_id": "O-1",
        "amount": "119.80",
        "invoice_date": day,
        "due_date": day,
        "paid_date": day,
    }
    return {**row, **over}


def survey(response_id: str = "R-1", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "response_id": response_id,
        "customer_ref": "CRM-0000001",
        "survey_id": "SAT",
        "version": "1",
        "wave": "2025Q1",
        "started_at": f"{day}T09:00:00+08:00",
        "duration_s": "420",
    }
    for i, name in enumerate(FEEDS["surveys"].grid_columns):
        row[name] = str(5 + i % 4)
    row.update({"complaint": "false", "repurchase": "8", "price_tolerance": "6", "recommend": "9"})
    for a in SERVICE_ATTRIBUTES:
        row.update({f"imp_{a}": "8", f"perf_{a}": "7", f"kano_f_{a}": "1", f"kano_d_{a}": "5"})
    row.update({"attention_check": "7", "comment": "送货很快，谢谢"})
    return {**row, **over}


def interaction(interaction_id: str = "I-1", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "interaction_id": interaction_id,
        "customer_ref": "CRM-0000001",
        "at": f"{day}T11:00:00+08:00",
        "type": "praise",
        "channel": "wechat",
    }
    return {**row, **over}


def lead(lead_id: str = "LD-1", day: str = "2025-03-01", **over: str) -> dict[str, str]:
    row = {
        "lead_id": lead_id,
        "created_at": f"{day}T14:30:00+08:00",
        "source": "trade_show",
        "organisation": "上海恒达机械制造有限公司",
        "contact_name": "李娜",
        "phone": "139-0000-1234",
        "email": "na.li@example.cn",
        "kind": "enterprise",
        "region": "上海市",
        "industry": "manufacturing",
        "declared_budget": "80000.00",
        "credit_rating": "B",
        "contact_role": "purchasing_manager",
        "need": "stated_need",
        "requested_quote": "true",
    }
    return {**row, **over}


def csv_text(feed: str, rows: list[dict[str, str]], *, delimiter: str = ",", columns: list[str] | None = None) -> str:
    cols = columns or list(FEEDS[feed].column_names)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return buf.getvalue()


def write_day(
    landing: Path,
    feed: str,
    day: str,
    files: dict[str, bytes | str],
    *,
    manifest: bool = True,
    rows: dict[str, int] | None = None,
    encoding: dict[str, str] | None = None,
    unlisted: tuple[str, ...] = (),
) -> Path:
    """Write files (str → UTF-8) and, unless told not to, a manifest that matches them.

    `rows` overrides a file's row count (default: lines minus header, valid only
    for files without embedded newlines); `unlisted` files are left out of it.
    """
    folder = Path(landing) / feed / day
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
        if name in unlisted:
            continue
        n = (rows or {}).get(name)
        if n is None:
            n = max(data.count(b"\n") - 1, 0) if name.endswith(".csv") else len(pd.read_parquet(folder / name))
        entries.append(ManifestEntry(name, n, sha256_of(folder / name), (encoding or {}).get(name)))
    if manifest:
        write_manifest(folder, entries, feed=feed, day=day)
    return folder

"""The landing zone: where feed files arrive, how a day is declared complete, and
where rejected files go.

Layout::

    <landing>/<feed>/<YYYY-MM-DD>/<any>.csv|.parquet   files of one business day
    <landing>/<feed>/<YYYY-MM-DD>/_manifest.json       written last by the sender
    <landing>/rejected/<feed>/<YYYY-MM-DD>/<file>      rejected file, moved here
    <landing>/rejected/<feed>/<YYYY-MM-DD>/<file>.reason.json

The manifest is how the sender says "this day is complete": it lists every file
with its data-row count (header excluded) and SHA-256. A file whose bytes do not
match is partial (still being copied, or truncated) and is rejected whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "_manifest.json"
DATA_SUFFIXES = (".csv", ".parquet")
REJECTED_DIR = "rejected"


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    rows: int
    sha256: str
    encoding: str | None = None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def day_dir(landing: Path, feed: str, day: str) -> Path:
    return Path(landing) / feed / day


def rejected_dir(landing: Path, feed: str, day: str) -> Path:
    return Path(landing) / REJECTED_DIR / feed / day


def write_manifest(folder: Path, entries: list[ManifestEntry], *, feed: str, day: str) -> Path:
    """Write the day's manifest atomically (temp file + rename), as a sender should."""
    folder = Path(folder)
    body = {
        "feed": feed,
        "business_date": day,
        "files": [{k: v for k, v in vars(e).items() if v is not None} for e in sorted(entries, key=lambda e: e.name)],
    }
    tmp = folder / (MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, folder / MANIFEST_NAME)
    return folder / MANIFEST_NAME


class ManifestError(ValueError):
    """The manifest itself is unreadable or malformed."""


def read_manifest(folder: Path) -> dict[str, ManifestEntry] | None:
    """Entries by file name, or None when the day has no manifest (not complete)."""
    path = Path(folder) / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        return {
            f["name"]: ManifestEntry(f["name"], int(f["rows"]), str(f["sha256"]).lower(), f.get("encoding"))
            for f in body["files"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"{path}: malformed manifest ({exc})") from exc


def declared_rows(landing: Path, feed: str, day: str) -> int:
    """Data rows the day's manifest declares (0 without a readable one): sizes ingest batches
    before anything is read; the ingest itself reports a bad manifest."""
    try:
        manifest = read_manifest(day_dir(landing, feed, day))
    except ManifestError:
        return 0
    return sum(e.rows for e in manifest.values()) if manifest else 0


def data_files(folder: Path) -> list[Path]:
    """The day's data files in a stable order (by name), so reruns read them alike."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in DATA_SUFFIXES)


def is_day(name: str) -> bool:
    """Whether a landing folder name is a business day (YYYY-MM-DD)."""
    try:
        dt.date.fromisoformat(name)
        return True
    except ValueError:
        return False


def day_digest(landing: Path, day: str, feeds: Iterable[str]) -> str | None:
    """Content hash of a complete landing day: every feed in `feeds` has its manifest, and the
    digest covers each manifest's files (name, rows, SHA-256), so a re-delivered identical file
    gives the same digest and a changed one a new digest. None while any manifest is missing
    or malformed (the ingestion reports a malformed one; the day is not complete)."""
    h = hashlib.sha256(day.encode())
    for feed in sorted(feeds):
        try:
            entries = read_manifest(day_dir(Path(landing), feed, day))
        except ManifestError:
            return None
        if entries is None:
            return None
        for e in sorted(entries.values(), key=lambda e: e.name):
            h.update(f"\0{feed}\0{e.name}\0{e.rows}\0{e.sha256}".encode())
    return h.hexdigest()


def complete_days(landing: Path, feeds: Iterable[str]) -> dict[str, str]:
    """{business day: digest} of every landing day on which every feed in `feeds` is complete."""
    feeds = list(feeds)
    candidates: set[str] = set()
    for feed in feeds:
        folder = Path(landing) / feed
        if folder.is_dir():
            candidates.update(p.name for p in folder.iterdir() if p.is_dir() and is_day(p.name))
    out = {}
    for day in sorted(candidates):
        digest = day_digest(landing, day, feeds)
        if digest is not None:
            out[day] = digest
    return out

"""Fitted satisfaction models kept between runs.

A wave's fit depends only on its kept responses and the fit parameters (marts.py: "Cost"),
and a closed wave's responses do not change from one night to the next, so a nightly run
would otherwise refit every past wave (PLS with its bootstrap: seconds to minutes each on a
large survey). The cache is a folder of pickles named by a hash of the response fingerprint,
the fit parameters and the source of the fitting code: a change to any of them is a miss,
never a stale hit. Fits are seeded, so a hit returns what a refit would.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import uuid
from pathlib import Path

_CODE = ("pls.py", "models.py", "marts.py")


def code_version() -> str:
    """Hash of the modules that fit and describe the models."""
    here = Path(__file__).parent
    digest = hashlib.sha1()
    for name in _CODE:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()[:16]


class FitCache:
    """Pickled fits in `folder`, at most `keep` of them (the least recently used go first)."""

    def __init__(self, folder: str | os.PathLike[str], keep: int = 500) -> None:
        self.folder = Path(folder)
        self.keep = keep
        self.hits = self.misses = 0
        self._code = code_version()

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha1(f"{self._code}|{key}".encode()).hexdigest() + ".pkl")

    def get(self, key: str) -> object | None:
        path = self._path(key)
        try:
            with path.open("rb") as f:
                value = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
            self.misses += 1
            return None
        os.utime(path)  # recently used
        self.hits += 1
        return value

    def put(self, key: str, value: object) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with tmp.open("wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        self._trim()

    def _trim(self) -> None:
        files = sorted(self.folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in files[self.keep :]:
            old.unlink(missing_ok=True)

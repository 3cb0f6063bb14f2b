"""The datasets bundled in tests/data are intact: every file SHA256SUMS lists exists and
hashes to the sum recorded there (copies of ../shared/data, see tests/data/README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


def listed() -> list[tuple[str, str]]:
    """(sha256, relative path) for every line of SHA256SUMS, as `sha256sum` writes them."""
    pairs = []
    for line in (DATA / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            pairs.append((digest, name.lstrip("*")))  # "*" marks binary mode in sha256sum -b
    return pairs


def test_sha256sums_lists_the_bundled_files():
    pairs = listed()
    assert pairs, "SHA256SUMS is empty"
    names = [name for _, name in pairs]
    assert len(names) == len(set(names))
    missing = [name for name in names if not (DATA / name).is_file()]
    assert not missing, f"listed in SHA256SUMS but missing from tests/data: {missing}"


@pytest.mark.parametrize("digest, name", listed(), ids=[name for _, name in listed()])
def test_bundled_file_matches_its_checksum(digest, name):
    path = DATA / name
    assert path.is_file(), f"{name} is listed in SHA256SUMS but missing"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, f"{name} has changed"

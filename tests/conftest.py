"""Shared test helpers: the sample data location and small catalog slices."""

from __future__ import annotations

import csv
import tarfile
from pathlib import Path

import pytest

from vistag.config import default_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The fashion-product-images folder (tests using it skip when it is absent)."""
    path = default_data_dir()
    if path is None or not (path / "labels.csv").is_file():
        pytest.skip("sample data ../shared/data/fashion-product-images not found (set VISTAG_DATA)")
    return path


def write_slice(
    data_dir: Path, out_dir: Path, count: int, start: int = 0, step: int = 37
) -> tuple[Path, Path, list[dict]]:
    """Extract ``count`` rows spread over the catalog, with their images, into ``out_dir``.

    Returns:
        (catalog CSV path, image folder, rows).
    """
    with open(data_dir / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    picked = [rows[(start + i * step) % len(rows)] for i in range(count)]
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    wanted = {r["file"] for r in picked}
    with tarfile.open(data_dir / "images.tar") as tar:
        for member in tar:
            if member.name in wanted:
                (images / member.name).write_bytes(tar.extractfile(member).read())
    catalog = out_dir / "catalog.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(picked[0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(picked)
    return catalog, images, picked

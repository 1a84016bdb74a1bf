"""Corrupt, missing and malformed rows are dead-lettered; a rerun after fixing adds exactly those."""

from __future__ import annotations

import csv
import json

import requests

from tests.conftest import write_slice
from vistag.cli.main import main


def test_bad_rows_are_dead_lettered_and_fixed_rows_added_on_rerun(node, data_dir, tmp_path, capsys):
    catalog, images, rows = write_slice(data_dir, tmp_path, 24, start=5)
    good_bytes = (images / rows[0]["file"]).read_bytes()
    (images / rows[1]["file"]).write_bytes(b"definitely not a jpeg")  # corrupt
    (images / rows[2]["file"]).unlink()  # missing
    (images / rows[3]["file"]).write_bytes(b"")  # zero bytes
    (images / rows[4]["file"]).write_bytes(good_bytes[: len(good_bytes) // 3])  # truncated
    lines = catalog.read_text().splitlines()
    lines[6] = lines[6] + ',"an extra field"'  # malformed row 6 (rows[5])
    catalog.write_text("\n".join(lines) + "\n")
    dead = tmp_path / "dead.jsonl"

    args = [
        "index",
        "--url",
        node.url,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--dead-letter",
        str(dead),
        "--json",
    ]
    # Decoding in a worker process gives the same reasons as decoding in threads (the rerun below).
    assert main(["-q", *args, "--decode-processes", "1"]) == 1  # non-zero: something was dead-lettered
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["read"] == 24 and summary["indexed"] == 19 and summary["dead_lettered"] == 5 and summary["failed"] == 0
    )
    records = [json.loads(line) for line in dead.read_text().splitlines()]
    reasons = {r["id"]: r["reason"] for r in records}
    assert "not a decodable image" in reasons[rows[1]["id"]]
    assert "does not exist" in reasons[rows[2]["id"]]
    assert "empty" in reasons[rows[3]["id"]]
    assert "truncated" in reasons[rows[4]["id"]] or "corrupt" in reasons[rows[4]["id"]]
    malformed = [r for r in records if r["stage"] == "read"]
    assert (
        len(malformed) == 1 and malformed[0]["line"] == 6 and "expected 19 fields, found 20" in malformed[0]["reason"]
    )
    assert requests.get(f"{node.url}/products/_count", timeout=10).json()["count"] == 19

    # Fix everything and rerun with --resume: exactly the five fixed rows are added.
    for row in rows[1:5]:
        (images / row["file"]).write_bytes(good_bytes)
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), quoting=csv.QUOTE_ALL)
        writer.writeheader()
        writer.writerows(rows)
    dead.unlink()
    assert main(["-q", *args, "--resume"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped_existing"] == 19 and summary["indexed"] == 5 and summary["dead_lettered"] == 0
    requests.post(f"{node.url}/products/_refresh", timeout=10)
    assert requests.get(f"{node.url}/products/_count", timeout=10).json()["count"] == 24
    assert not dead.exists()


def test_the_pixel_limit_of_the_environment_dead_letters_larger_images_and_names_them(
    node, data_dir, tmp_path, capsys, monkeypatch
):
    catalog, images, rows = write_slice(data_dir, tmp_path, 6, start=11)
    monkeypatch.setenv("VISTAG_MAX_IMAGE_PIXELS", "1000")  # catalog photos are 60x80 = 4,800 pixels
    dead = tmp_path / "dead.jsonl"
    args = [
        "-q",
        "index",
        "--url",
        node.url,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--json",
        "--dead-letter",
        str(dead),
        "--model",
        "tiny-random",
        "--index",
        "limited",
    ]
    assert main(args) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["indexed"] == 0 and summary["dead_lettered"] == 6
    reasons = [json.loads(line)["reason"] for line in dead.read_text().splitlines()]
    assert all("over the 1000-pixel limit" in r for r in reasons), reasons
    monkeypatch.setenv("VISTAG_MAX_IMAGE_PIXELS", "5000")
    dead.unlink()
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["indexed"] == 6

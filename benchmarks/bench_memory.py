"""Peak RSS of ``vistag index`` at several catalog sizes (it must not grow with the catalog).

Each size runs ``python -m vistag index`` as its own process against one local
OpenSearch node and reads that process's peak resident set from ``wait4``. Run it
after the embedding cache is warm (``vistag index`` or ``vistag train`` over the
full catalog once) to measure the indexing pipeline rather than the model; the
summary line says how many images each run embedded.

    python benchmarks/bench_memory.py [--rows 5000 44072] [--engine opensearch]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import machine, require_data_dir, sample_catalog

from vistag.config import ConnectionSettings
from vistag.engine.connect import connect
from vistag.local.node import LocalNode


def run_index(
    url: str, catalog: Path, images: Path, index: str, work: Path, extra: list[str]
) -> tuple[dict, float, float]:
    """Run ``vistag index``; return (summary, seconds, peak RSS in MB)."""
    cmd = [
        sys.executable,
        "-m",
        "vistag",
        "-q",
        "index",
        "--url",
        url,
        "--catalog",
        str(catalog),
        "--images",
        str(images),
        "--index",
        index,
        "--dead-letter",
        str(work / f"{index}-dl.jsonl"),
        "--json",
        *extra,
    ]
    start = time.perf_counter()
    with open(work / f"{index}.stderr", "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage (Popen.wait would discard it)
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"vistag index failed ({proc.returncode}):\n{(work / f'{index}.stderr').read_text()[-3000:]}")
    return json.loads(out), seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 44072])
    parser.add_argument("--engine", default="opensearch")
    parser.add_argument("extra", nargs="*", help="more `vistag index` flags (after --)")
    args = parser.parse_args()
    data = require_data_dir()
    print(f"machine: {machine()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="vistag-bench-memory-"))
    node = LocalNode(args.engine, name="bench", heap="1g")
    url = node.start()
    client = connect(ConnectionSettings(urls=(url,)))
    peaks = {}
    try:
        for rows in args.rows:
            catalog = sample_catalog(data, rows, work / f"catalog-{rows}.csv")
            index = f"bench-memory-{rows}"
            client.delete_index(index)
            summary, seconds, peak = run_index(url, catalog, data / "images.tar", index, work, args.extra)
            peaks[rows] = peak
            print(
                f"{summary['indexed']} rows: {seconds:.0f} s ({summary['indexed'] / seconds:.0f} docs/s), "
                f"{summary['embedded']} images embedded, {summary['cache_hits']} from the cache, "
                f"peak RSS {peak:.0f} MB",
                flush=True,
            )
            client.delete_index(index)
    finally:
        node.stop()
    smallest, largest = min(peaks), max(peaks)
    print(f"peak RSS at {largest} rows / at {smallest} rows: {peaks[largest] / peaks[smallest]:.2f}")


if __name__ == "__main__":
    main()

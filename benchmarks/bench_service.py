"""Throughput and latency of ``vistag service``, side by side in one run.

Prints, for single-image ``POST /v1/embed`` requests (raw JPEG bytes of catalog
images) from 1, 8 and 32 concurrent clients, with micro-batching on and off:
requests/s and p50/p95/p99 latency, and the ratio of requests/s to the bare
batched forward of the same model measured in the same run (images/s of
``embed_prepared`` on batches of 32 already prepared arrays, no HTTP, no decoding;
goal: >= 0.7 of it at 32 clients with batching on).

With ``--ingest N`` it also compares two ways of indexing the same N catalog rows
on an OpenSearch node with ml-commons: ``vistag index`` (embedding cache empty, so
it embeds every image too) against a plain ``_bulk`` of raw rows (id, title, base64
image) through the ``ml_inference`` ingest pipeline that calls the service once per
document (``vistag pipelines install``). Both tag against the same catalog.

The service runs as its own process (``python -m vistag service``), the clients
are threads of this one; both share the machine, as they would share a small node.

Usage: ``python benchmarks/bench_service.py [--requests 320] [--clients 1 8 32]``
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_index import machine, require_data_dir


def catalog_images(data: Path, count: int) -> list[bytes]:
    """The first ``count`` JPEGs of the catalog's images.tar."""
    out = []
    with tarfile.open(data / "images.tar") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                out.append(tar.extractfile(member).read())
                if len(out) == count:
                    break
    return out


def bare_forward(images: list[bytes], batch: int, rounds: int = 5) -> float:
    """Images/s of the model's batched forward on prepared arrays (median of ``rounds``)."""
    import io

    from PIL import Image

    from vistag.models import create_embedder

    embedder = create_embedder("efficientnet-lite0", device="auto", batch_size=batch)
    arrays = [embedder.prepare(Image.open(io.BytesIO(d)).convert("RGB")) for d in images[:batch]]
    embedder.embed_prepared(arrays)  # warm-up
    rates = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        embedder.embed_prepared(arrays)
        rates.append(batch / (time.perf_counter() - t0))
    return sorted(rates)[len(rates) // 2]


def start_service(port: int, batching: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "vistag", "service", "--port", str(port), "--max-wait-ms", "5"]
    if not batching:
        cmd.append("--no-batching")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {proc.stderr.read()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the service did not become ready")


def load(port: int, images: list[bytes], clients: int, requests: int) -> tuple[float, list[float]]:
    """Send ``requests`` single-image requests from ``clients`` threads (one keep-alive connection each)."""
    per_client = [images[i::clients] or images for i in range(clients)]
    count = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]

    def client(i: int) -> list[float]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        latencies = []
        for n in range(count[i]):
            body = per_client[i][n % len(per_client[i])]
            t0 = time.perf_counter()
            conn.request("POST", "/v1/embed", body=body, headers={"Content-Type": "image/jpeg"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"HTTP {resp.status}")
            latencies.append(time.perf_counter() - t0)
        conn.close()
        return latencies

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = [x for part in pool.map(client, range(clients)) for x in part]
    return requests / (time.perf_counter() - t0), sorted(latencies)


def pct(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320, help="requests per configuration")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--ingest", type=int, default=0, metavar="N", help="also compare ingest paths on N rows")
    args = parser.parse_args()
    data = require_data_dir()
    print(f"machine: {machine()}")
    images = catalog_images(data, 256)
    bare = bare_forward(images, 32)
    print(f"bare batched forward (efficientnet-lite0, batch 32, prepared arrays): {bare:.1f} img/s")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(f"{'batching':<9} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'/ bare':>7}")
    for batching in (True, False):
        proc = start_service(port, batching)
        try:
            load(port, images, 4, 32)  # warm-up
            for clients in args.clients:
                rate, lat = load(port, images, clients, args.requests)
                print(
                    f"{'on' if batching else 'off':<9} {clients:>7} {rate:>8.1f} {pct(lat, 50):>8.1f} "
                    f"{pct(lat, 95):>8.1f} {pct(lat, 99):>8.1f} {rate / bare:>7.2f}",
                    flush=True,
                )
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"(one machine: the {os.cpu_count()} cores serve the clients, HTTP, decoding and the model at once)")
    if args.ingest:
        ingest(data, args.ingest, port)


def ingest(data: Path, count: int, port: int) -> None:
    """vistag index vs a raw _bulk through the ml_inference ingest pipeline, same rows, same node."""
    import base64
    import csv
    import json
    import tempfile

    import requests

    from vistag.catalog.schema import CatalogSchema
    from vistag.config import ConnectionSettings
    from vistag.engine.connect import connect
    from vistag.images import ImageStore
    from vistag.indexer.pipeline import IndexOptions, run_index
    from vistag.local.node import LocalNode
    from vistag.models import create_embedder
    from vistag.models.cache import EmbeddingCache
    from vistag.models.embedding import BatchEmbedder
    from vistag.pipelines import install_inference

    work = Path(tempfile.mkdtemp(prefix="vistag-ingest-"))
    with open(data / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:count]
    catalog = work / "catalog.csv"
    with open(catalog, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    node = LocalNode("opensearch", name="bench", heap="1g", extras=("ml",))
    url = node.start()
    client = connect(ConnectionSettings(urls=(url,)))
    embedder = create_embedder("efficientnet-lite0", device="auto")
    with ImageStore(data / "images.tar") as store:
        payloads = {r["id"]: base64.b64encode(store.read(r["file"])).decode() for r in rows}
        for index in ("bench-cli", "bench-raw"):
            client.delete_index(index)
        batch = BatchEmbedder(embedder, store, EmbeddingCache(work / "cache", embedder.model_id, embedder.dim))
        summary = run_index(
            client,
            catalog,
            CatalogSchema.bundled(),
            batch,
            IndexOptions(index="bench-cli", progress=False, dead_letter=work / "dl.jsonl"),
        )
        batch.close()
    cli_rate = count / summary.seconds
    del embedder
    svc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vistag",
            "service",
            "--port",
            str(port),
            "--reference",
            str(catalog),
            "--reference-images",
            str(data / "images.tar"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        client.create_index("bench-raw")
        install_inference(client, "bench-raw", f"http://127.0.0.1:{port}")
        t0 = time.perf_counter()
        for start in range(0, count, 200):
            lines = []
            for r in rows[start : start + 200]:
                lines += [
                    json.dumps({"index": {"_index": "bench-raw", "_id": r["id"]}}),
                    json.dumps({"id": r["id"], "title": r["productDisplayName"], "image": payloads[r["id"]]}),
                ]
            resp = requests.post(
                f"{url}/_bulk",
                data="\n".join(lines) + "\n",
                timeout=600,
                headers={"Content-Type": "application/x-ndjson"},
            ).json()
            assert not resp["errors"], resp["items"][0]
        raw_rate = count / (time.perf_counter() - t0)
    finally:
        svc.terminate()
        svc.wait(30)
        node.stop()
    print(
        f"ingest of {count} rows (cold: every image embedded): vistag index {cli_rate:.1f} docs/s; plain _bulk "
        f"through the ml_inference pipeline calling vistag service {raw_rate:.1f} docs/s ({raw_rate / cli_rate:.2f}x)"
    )


if __name__ == "__main__":
    main()

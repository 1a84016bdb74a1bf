"""The GPU path in one command (under 8 minutes on one H100): decode, forward, kNN top-k, end to end.

Prints, each line with its rate and, for the end-to-end runs, the ratio to the best bare forward:

1. JPEG decode and resize to the model's input: PIL in ``--processes`` processes (vistag's
   decode path) against ``torchvision.io.decode_jpeg`` on the GPU (batched) + a GPU resize;
2. the bare EfficientNet-Lite0 forward on a GPU-resident uint8 batch: fp32, fp32 channels_last,
   fp16 and bf16 autocast (channels_last), and ``torch.compile`` + fp16;
3. exact kNN top-k of ``--knn-queries`` queries over ``--knn-refs`` (1M) fp16 references on the GPU
   (vistag's device top-k, :mod:`vistag.models.knn_device`);
4. end to end, when ``--url`` names an engine: ``vistag.index_catalog`` on the GPU, and the Ray
   runner on one GPU when ``ray`` is installed (each skipped with its reason otherwise).

The images come from ``--images`` (a folder or ``.tar`` of JPEGs; ``make gpu-sample`` writes a
2,000-image ``.tar`` from the fashion catalog into ``.gpu-sample/``, which a device run carries).

    python benchmarks/bench_gpu.py --images .gpu-sample/sample.tar [--url http://127.0.0.1:9200]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def read_jpegs(source: Path, count: int) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    if source.is_dir():
        for path in sorted(source.glob("*.jpg"))[:count]:
            out.append((path.name, path.read_bytes()))
        return out
    with tarfile.open(source) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                fh = tar.extractfile(member)
                if fh is not None:
                    out.append((Path(member.name).name, fh.read()))
            if len(out) >= count:
                break
    return out


def _decode(args: tuple[bytes, str]) -> int:
    from vistag.models.decode_pool import decode_and_prepare
    from vistag.models.registry import get_config

    data, name = args
    prepared = decode_and_prepare(data, name, get_config("efficientnet-lite0"))
    return 0 if prepared.array is None else 1


def timed(fn, *args, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(repeat):
        fn(*args)
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, type=Path, help="a folder or .tar of JPEGs")
    parser.add_argument("--count", type=int, default=2000, help="images to decode and index")
    parser.add_argument("--processes", type=int, default=max(1, (os.cpu_count() or 2) - 2))
    parser.add_argument("--batch", type=int, default=512, help="images per forward pass")
    parser.add_argument("--knn-refs", type=int, default=1_000_000)
    parser.add_argument("--knn-queries", type=int, default=8192)
    parser.add_argument("--url", default=None, help="an engine for the end-to-end runs")
    args = parser.parse_args()

    import torch
    import torchvision
    from torchvision.io import decode_jpeg

    from vistag.models.loading import create_embedder

    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this benchmark measures the GPU path")
    device = torch.device("cuda")
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, torchvision {torchvision.__version__}")
    print(f"cpu: {os.cpu_count()} cores", flush=True)
    jpegs = read_jpegs(args.images, args.count)
    print(f"images: {len(jpegs)} JPEGs from {args.images}", flush=True)

    # 1. decode
    with ProcessPoolExecutor(args.processes) as pool:
        list(pool.map(_decode, [(d, n) for n, d in jpegs[:64]]))  # start the workers
        start = time.perf_counter()
        decoded = sum(pool.map(_decode, [(d, n) for n, d in jpegs], chunksize=16))
        pil_rate = decoded / (time.perf_counter() - start)
    print(f"decode+resize, PIL in {args.processes} processes: {pil_rate:,.0f} img/s", flush=True)
    embedder = create_embedder("efficientnet-lite0", device="cuda", batch_size=args.batch)
    size = int(embedder.config.input_size)
    raw = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for _, d in jpegs]

    def gpu_decode() -> None:
        for i in range(0, len(raw), 256):
            images = decode_jpeg(raw[i : i + 256], device="cuda", mode=torchvision.io.ImageReadMode.RGB)
            for image in images:  # sizes differ: resize one by one on the GPU
                torch.nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear")
        torch.cuda.synchronize()

    gpu_decode()
    gpu_rate = len(raw) / timed(gpu_decode, repeat=2)
    print(f"decode+resize, torchvision.io.decode_jpeg on the GPU: {gpu_rate:,.0f} img/s", flush=True)

    # 2. forward
    batch_u8 = torch.randint(0, 255, (args.batch, 3, size, size), dtype=torch.uint8, device=device)
    model = embedder.model

    def forward(fmt: torch.memory_format, dtype: torch.dtype | None, net: torch.nn.Module) -> None:
        x = (batch_u8.float() / 255.0).contiguous(memory_format=fmt)
        with torch.inference_mode():
            if dtype is None:
                net(x)
            else:
                with torch.autocast("cuda", dtype=dtype):
                    net(x)

    rates = {}
    modes = [
        ("fp32", torch.contiguous_format, None),
        ("fp32 channels_last", torch.channels_last, None),
        ("fp16 autocast, channels_last", torch.channels_last, torch.float16),
        ("bf16 autocast, channels_last", torch.channels_last, torch.bfloat16),
    ]
    for name, fmt, dtype in modes:
        net = model.to(memory_format=fmt)  # in place: the weights' layout follows the input's
        for _ in range(3):
            forward(fmt, dtype, net)
        torch.cuda.synchronize()
        seconds = timed(lambda: (forward(fmt, dtype, net), torch.cuda.synchronize()), repeat=10)
        rates[name] = args.batch / seconds
        print(f"forward {name}: {rates[name]:,.0f} img/s (batch {args.batch})", flush=True)
    compiled = torch.compile(model)
    t0 = time.perf_counter()
    for _ in range(3):
        forward(torch.channels_last, torch.float16, compiled)
    torch.cuda.synchronize()
    seconds = timed(
        lambda: (forward(torch.channels_last, torch.float16, compiled), torch.cuda.synchronize()), repeat=10
    )
    rates["torch.compile fp16"] = args.batch / seconds
    print(
        f"forward torch.compile + fp16 autocast: {rates['torch.compile fp16']:,.0f} img/s "
        f"(compile and warm-up {time.perf_counter() - t0:.0f}s)",
        flush=True,
    )
    best_name, best = max(rates.items(), key=lambda kv: kv[1])

    # 3. kNN top-k over 1M references
    from vistag.analyzers.knn_tagger import top_k_rows
    from vistag.models.knn_device import torch_topk

    rng = np.random.default_rng(0)
    dim = int(embedder.dim)
    refs = torch.randn(args.knn_refs, dim, device=device, dtype=torch.float16)
    refs = torch.nn.functional.normalize(refs.float(), dim=1).half().cpu().numpy().astype(np.float32)
    queries = rng.standard_normal((args.knn_queries, dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    topk = torch_topk(device)
    top_k_rows(queries[:256], refs, 10, chunk_size=262_144, topk=topk)
    seconds = timed(top_k_rows, queries, refs, 10, None, 262_144, topk)
    print(
        f"kNN top-10 over {args.knn_refs:,} x {dim} references on the GPU: {args.knn_queries / seconds:,.0f} queries/s",
        flush=True,
    )
    del refs

    # 4. end to end
    if not args.url:
        print("end to end: skipped (no --url: an engine is needed; vistag never mocks it)")
        return
    import vistag

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        catalog = Path(tmp) / "catalog.csv"
        with open(catalog, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["id", "title", "image"])
            for name, data in jpegs:
                (folder / name).write_bytes(data)
                writer.writerow([Path(name).stem, Path(name).stem, name])
        from opensearchpy import OpenSearch

        client = OpenSearch(args.url, pool_maxsize=16)
        kwargs = {"device": "cuda", "batch_size": args.batch, "decode_processes": args.processes, "bulk_threads": 4}
        summary = vistag.index_catalog(client, catalog, folder, "bench-gpu", progress=False, **kwargs)
        rate = summary.indexed / summary.seconds
        print(f"vistag index on the GPU: {rate:,.0f} img/s end to end ({rate / best:.2f} of the bare {best_name})")
        try:
            import vistag.ray
            from vistag.ray.runner import RayOptions
        except ImportError as exc:  # pragma: no cover - depends on the machine
            print(f"Ray runner: skipped ({exc})")
            return
        options = RayOptions(num_cpus=os.cpu_count(), embed_actors=1, read_tasks=4, load_cpus=1.0)
        summary = vistag.ray.index_catalog(
            args.url, catalog, folder, "bench-gpu-ray", device="cuda", batch_size=args.batch, ray_options=options
        )
        rate = summary.indexed / summary.seconds
        print(f"Ray runner on one GPU: {rate:,.0f} img/s end to end ({rate / best:.2f} of the bare {best_name})")


if __name__ == "__main__":
    main()

"""``vistag demo``: the whole job on the embedded default, end to end -- a local engine, a sample of the fashion
catalog indexed, and every kind of query.

Examples:
    >>> result = run_demo(size=200)                # doctest: +SKIP
    >>> result.summary.indexed, result.sections[0].title  # doctest: +SKIP
    (200, 'keyword query: "blue jeans"')
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vistag.config import default_data_dir, embedding_cache_dir, vistag_home
from vistag.errors import ConfigError
from vistag.indexer.options import IndexSummary
from vistag.search.queries import Hit


@dataclass
class DemoSection:
    """One example query and what it found."""

    title: str
    hits: list[Hit] = field(default_factory=list)
    note: str = ""


@dataclass
class DemoResult:
    """What :func:`run_demo` did.

    Attributes:
        url: the local node's URL (it keeps running unless ``stop``).
        engine: ``"<engine> <version>"``.
        summary: the indexing run's summary.
        sections: the example queries, in order.
        seconds: the whole run.
    """

    url: str
    engine: str
    summary: IndexSummary
    sections: list[DemoSection] = field(default_factory=list)
    seconds: float = 0.0


def write_sample(labels: Path, out: Path, size: int) -> tuple[Path, dict[str, Any]]:
    """Write every n-th row of ``labels`` (a spread over the whole catalog) to ``out``.

    Returns:
        The sample path and one held-out row (not in the sample, a T-shirt) to query by image.

    Raises:
        ConfigError: ``size`` out of range.
    """
    with open(labels, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if size < 1 or size > len(rows) - 1:
        raise ConfigError(f"the sample size must be within 1..{len(rows) - 1}")
    step = len(rows) / size
    picked = {int(i * step) for i in range(size)}
    held_out = next(r for i, r in enumerate(rows) if i not in picked and r["articleType"] == "Tshirts")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows[i] for i in sorted(picked))
    return out, held_out


def run_demo(
    engine: str = "opensearch",
    *,
    data: str | Path | None = None,
    size: int = 600,
    index: str = "demo-products",
    model: str = "efficientnet-lite0",
    device: str = "auto",
    batch_size: int = 64,
    stop: bool = False,
    progress: bool = False,
    node_name: str = "default",
) -> DemoResult:
    """Start a local node, index a sample of the fashion catalog and run example queries.

    Args:
        engine: ``opensearch`` or ``elasticsearch``.
        data: the ``fashion-product-images`` folder (default ``$VISTAG_DATA`` or ``../shared/data/...``).
        size: sample rows to index.
        index: the index (replaced).
        model: the backbone.
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: images per forward pass.
        stop: stop the node at the end.
        progress: progress bars.
        node_name: the local node's instance name (tests use their own).

    Raises:
        ConfigError: the sample data is not found.
    """
    from vistag.images import ImageStore
    from vistag.indexer.pipeline import index_catalog
    from vistag.local.node import LocalNode
    from vistag.models.loading import load_model
    from vistag.search.queries import Searcher
    from vistag.search.seller_check import check_seller_tags

    started = time.monotonic()
    folder = Path(data) if data else default_data_dir()
    if folder is None or not (folder / "labels.csv").is_file() or not (folder / "images.tar").is_file():
        raise ConfigError(
            "sample data not found: pass data= (--data) or set VISTAG_DATA to the fashion-product-images "
            "folder (with labels.csv and images.tar)"
        )
    node = LocalNode(engine, name=node_name)
    url = node.start()
    client = node.client()
    info = client.info()
    sample, held_out = write_sample(folder / "labels.csv", vistag_home() / "demo" / "sample.csv", size)
    embedder = load_model(model, device=device, batch_size=batch_size).embedder
    client.delete_index(index)
    summary = index_catalog(
        client,
        sample,
        folder / "images.tar",
        index,
        schema="fashion-product-images",
        model=embedder,
        cache_dir=embedding_cache_dir(),
        dead_letter=vistag_home() / "demo" / "dead-letter.jsonl",
        progress=progress,
    )
    result = DemoResult(url, f"{info.engine} {info.version}", summary)
    if summary.ok:
        searcher = Searcher(client, index, embedder=embedder)
        sections = result.sections
        sections.append(DemoSection('keyword query: "blue jeans"', searcher.keyword("blue jeans", size=5)))
        sections.append(
            DemoSection(
                "tag query: tshirts + casual:0.5, gender=Men",
                searcher.tags({"tshirts": 1.0, "casual": 0.5}, size=5, attributes={"gender": "Men"}),
            )
        )
        with ImageStore(folder / "images.tar") as store:
            vector = embedder.embed_images([store.load(held_out["file"]).image])[0]
        image_hits = searcher.image(vector, k=5)
        sections.append(
            DemoSection(
                f"image query: held-out product {held_out['id']} ({held_out['productDisplayName']}), k=5", image_hits
            )
        )
        if image_hits:
            sections.append(
                DemoSection(
                    f"similar products to {image_hits[0].id} ({image_hits[0].title}), k=5",
                    searcher.similar(image_hits[0].id, k=5),
                )
            )
        sections.append(
            DemoSection(
                'hybrid: "casual shirt" + tags shirts, fused by reciprocal rank',
                searcher.hybrid("casual shirt", {"shirts": 1.0}, None, size=5),
            )
        )
        check = check_seller_tags(searcher, vector, ["Tshirts", "Casual", "Heels", "bestseller"])
        sections.append(
            DemoSection(
                "seller tag check of the held-out photo with tags Tshirts, Casual, Heels, bestseller",
                note=f"supported {[t['tag'] for t in check.supported]}, weak {[t['tag'] for t in check.weak]}, "
                f"contradicted {[t['tag'] for t in check.contradicted]}, unknown {check.unknown}, "
                f"suggested {[t['tag'] for t in check.suggested]}",
            )
        )
    client.close()
    if stop:
        node.stop()
    result.seconds = time.monotonic() - started
    return result

"""The ≥ 500-image setting (Li et al.) on one backbone or several backbones' vectors joined.

Embeds the catalog through the embedding cache with each named backbone, joins the
unit vectors (each scaled by 1/sqrt(n), so the joined vector is a unit vector too),
trains the same heads ``vistag train`` trains on the paper label columns of
``bench_tagging.py`` and prints top-1 on the catalog's test split. This is how the
``-colour ⊕ -lite2`` and ``-flip`` columns of the README were measured.

    python benchmarks/bench_paper_features.py efficientnet-lite0-colour,efficientnet-lite2

References:
    F. Li, S. Kant, S. Araki, S. Bangera, S. S. Shukla, "Neural Networks for Fashion Image Classification and Visual Search".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import machine
from bench_tagging import LABEL, MARGIN, write_paper_catalog

from vistag.catalog.schema import CatalogSchema
from vistag.config import default_data_dir
from vistag.images import ImageStore
from vistag.models import create_embedder
from vistag.models.cache import model_cache as embedding_cache
from vistag.models.dataset import TEST, assign_splits, embed_catalog
from vistag.models.embedding import BatchEmbedder
from vistag.models.trainer import TrainSettings, train_model
from vistag.models.training import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbones", help="backbone names, comma-separated (several: their vectors joined)")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--min-images", type=int, default=500)
    parser.add_argument("--class-weighting", default="sqrt", choices=["none", "sqrt", "balanced"])
    args = parser.parse_args()
    print(f"machine: {machine()}", flush=True)
    out = Path(tempfile.mkdtemp(prefix="vistag-paper-"))
    catalog, schema_path, _ = write_paper_catalog(args.data / "labels.csv", out, args.min_images)
    schema = CatalogSchema.load(str(schema_path))
    parts, configs = [], []
    for name in args.backbones.split(","):
        embedder = create_embedder(name, device="cpu")
        started = time.monotonic()
        with ImageStore(str(args.data / "images.tar")) as store:
            batch = BatchEmbedder(embedder, store, embedding_cache(embedder), workers=2)
            try:
                parts.append(embed_catalog(catalog, schema, batch))
            finally:
                batch.close()
        configs.append(embedder.config)
        print(
            f"{embedder.model_id}: {len(parts[-1])} rows, {batch.computed} embedded, "
            f"{time.monotonic() - started:.0f} s",
            flush=True,
        )
    if any(p.ids != parts[0].ids for p in parts):
        raise SystemExit("the backbones embedded different rows (an unreadable image?)")
    x = np.concatenate([p.x for p in parts], axis=1) / np.sqrt(len(parts))
    data = replace(parts[0], x=x.astype(np.float32))
    splits = assign_splits(data, "split", 0.1, 0.1, 0)
    settings = TrainSettings(
        levels=[],
        attributes=list(schema.attributes),
        tag_columns=[],
        min_count=10,
        min_confidence=0.0,
        train=TrainConfig(class_weighting=args.class_weighting, seed=0),
    )
    started = time.monotonic()
    model = train_model(data, splits, replace(configs[0], embedding_dim=x.shape[1]), settings)
    test = data.subset(splits == TEST)
    pred = model.predict(test.x, top_k=1)
    print(f"\n{args.backbones} ({x.shape[1]} dims), heads trained in {time.monotonic() - started:.0f} s")
    for vocab in model.attributes:
        labels = test.column(vocab.column)
        mask = np.array([bool(v) for v in labels])
        hit = pred.attributes[vocab.column].argmax(1) == np.asarray(vocab.encode(labels))
        print(
            f"  {LABEL[vocab.column]:<26} top-1 {100 * hit[mask].mean():5.1f} %  (target + 1: {MARGIN[vocab.column]:.0f} %)"
        )


if __name__ == "__main__":
    main()

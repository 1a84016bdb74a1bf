"""The options of an indexing run and what it reports (shared by the pipeline and its passes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class IndexOptions:
    """Tuning of an indexing run (CLI flags map one to one).

    Examples:
        >>> IndexOptions(index="products", bulk_threads=4).chunk_size
        500
    """

    index: str = "products"
    batch_size: int = 64
    chunk_size: int = 500
    max_chunk_bytes: int = 10 * 1024 * 1024
    k: int = 10
    top_d: int = 10
    resume: bool = False
    dead_letter: Path | None = None  # a JSONL file for bad rows; None: kept in the summary only
    progress: bool = True
    max_retries: int = 8
    initial_backoff: float = 1.0
    max_backoff: float = 30.0
    limit: int | None = None
    tagger: str = "knn"
    relations: Any = None  # TagRelations, or the Path of their file: index-time expansion
    expand_discount: float = 0.5
    template: str | None = None  # index template / alias name when ``index`` is a versioned index
    knn_batch: int = 256  # rows tagged per kNN scan of the reference set
    knn_method: str = "auto"  # exact scan, or an HNSW graph (faiss) from APPROXIMATE_FROM reference rows on CPU
    bulk_threads: int = 2  # _bulk requests in flight
    vector_quantization: str = "none"  # or int8 (see DocumentSpec)
    reference_index: str | None = None  # kNN neighbours from this labelled index (needs a tagger from the caller)
    pipeline: str | None = None  # an ingest pipeline every document goes through
    partition: str | None = None  # "I/N": only the I-th of N disjoint slices of the catalog (stable hash of the id)


@dataclass
class IndexSummary:
    """What happened; ``ok`` is False when any row failed or was dead-lettered.

    ``aborted`` holds the reason when the engine stayed unreachable (the run can be
    resumed with ``resume=True``); ``dead_letters`` holds the bad rows when no
    dead-letter file was named; ``retries`` counts resent bulk items and requests.
    Each image is counted once: ``embedded`` ran through the network in this run,
    ``cache_hits`` came from the embedding cache filled by an earlier run.
    """

    read: int = 0
    indexed: int = 0
    skipped_existing: int = 0
    failed: int = 0
    dead_lettered: int = 0
    embedded: int = 0
    cache_hits: int = 0
    retries: int = 0
    reference_size: int = 0
    seconds: float = 0.0
    aborted: str | None = None
    dead_letter_path: str | None = None
    index: str = ""
    tagger: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every good row is indexed and nothing was dead-lettered."""
        return self.failed == 0 and self.dead_lettered == 0 and self.aborted is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        out = dict(self.__dict__)
        out["ok"] = self.ok
        out["dead_letters"] = self.dead_letters[:100]  # the first ones; all of them stay on the object
        return out

"""The options of an indexing run and what it reports (shared by the pipeline and its passes)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path


def parse_partition(text: str | None) -> tuple[int, int] | None:
    """``"2/3"`` -> ``(2, 3)``; ``None`` -> ``None``.

    Raises:
        ValueError: not ``I/N`` with ``1 <= I <= N``.

    Example:
        >>> parse_partition("2/3")
        (2, 3)
    """
    if text is None:
        return None
    try:
        part, _, total = str(text).partition("/")
        i, n = int(part), int(total)
    except ValueError:
        raise ValueError(f"partition {text!r} is not I/N (e.g. 2/3)") from None
    if not 1 <= i <= n:
        raise ValueError(f"partition {text!r}: I must be between 1 and N")
    return i, n


def in_partition(row_id: str, partition: tuple[int, int]) -> bool:
    """Whether ``row_id`` belongs to partition ``(I, N)``: a stable hash of the id, the same on
    every machine and run, so N jobs share one catalog with no overlap and no gap."""
    i, n = partition
    return int(hashlib.sha1(str(row_id).encode()).hexdigest()[:12], 16) % n == i - 1


@dataclass
class IndexOptions:
    """Tuning of an indexing run (CLI flags map one to one)."""

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
    relations: Path | None = None
    expand_discount: float = 0.5
    template: str | None = None  # index template / alias name when ``index`` is a versioned index
    knn_batch: int = 256  # rows tagged per kNN scan of the reference set
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
    timings: dict = field(default_factory=dict)
    dead_letters: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every good row is indexed and nothing was dead-lettered."""
        return self.failed == 0 and self.dead_lettered == 0 and self.aborted is None

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        out = dict(self.__dict__)
        out["ok"] = self.ok
        out["dead_letters"] = self.dead_letters[:100]  # the first ones; all of them stay on the object
        return out

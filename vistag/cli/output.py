"""How the CLI prints results: JSON, hit lists and run summaries (stdout is for results, stderr for messages)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from vistag.indexer.options import IndexSummary
from vistag.search.queries import Hit


def print_json(data: object) -> None:
    """Pretty JSON to stdout."""
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def print_hits(hits: Sequence[Hit]) -> None:
    """One line per hit: rank, id, score, title, top tags."""
    if not hits:
        print("(no results)")
    for rank, hit in enumerate(hits, 1):
        weights: dict[str, float] = hit.source.get("tag_weights", {})
        tags = ", ".join(sorted(weights, key=lambda t: -weights[t])[:4])
        print(f"{rank:>3}. {hit.id:<8} {hit.score:8.4f}  {hit.title or ''}  [{tags}]")


def print_summary(summary: IndexSummary) -> None:
    """Human-readable :class:`~vistag.indexer.options.IndexSummary`."""
    rate = summary.indexed / summary.seconds if summary.seconds else 0.0
    images = summary.embedded + summary.cache_hits
    print(
        f"index {summary.index}: read {summary.read}, indexed {summary.indexed}, skipped (already indexed) "
        f"{summary.skipped_existing}, failed {summary.failed}, dead-lettered {summary.dead_lettered} "
        f"in {summary.seconds:.1f}s ({rate:.1f} docs/s; {images} images: {summary.embedded} embedded, "
        f"{summary.cache_hits} from the cache; reference set {summary.reference_size}; tagger {summary.tagger})"
    )
    if summary.dead_lettered:
        print(
            f"bad rows written to {summary.dead_letter_path}"
            if summary.dead_letter_path
            else "bad rows: "
            + "; ".join(f"line {d['line']} ({d['stage']}): {d['reason']}" for d in summary.dead_letters[:20])
        )
    if summary.retries:
        print(f"{summary.retries} bulk items or requests were retried after 429/5xx or a lost connection")
    if summary.aborted:
        print(f"stopped early: {summary.aborted}\nrerun with --resume once the engine is back")


def print_dead_letters(records: Sequence[dict[str, Any]], limit: int = 20) -> None:
    """The first bad rows, one line each."""
    for record in records[:limit]:
        print(f"  line {record.get('line')} ({record.get('stage')}): {record.get('reason')}")

"""``vistag reindex``: build a new versioned index, then swap the alias atomically.

Steps:

1. plan: the new index is ``<alias>-<UTC timestamp, ms>``; with ``resume`` the newest
   ``<alias>-*`` index that the alias does not point to yet is continued instead;
2. fill it -- from a catalog (the normal indexing pipeline, embeddings from the
   cache) or from the current index (stored vectors and tags copied; with a
   trained model the stored vectors are re-tagged, no image is read);
3. check it holds every good row, refresh it;
4. one ``POST _aliases`` call removes the alias from the old indices and adds it to
   the new one, so readers see the old index or the new one, never a mix or none;
5. delete the old indices unless ``keep_old``.

If the alias name is a concrete index (indexed before aliases were used), the swap
removes that index in the same atomic call (``remove_index``), so the name never
stops answering.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

from vistag.engine.client import EngineClient
from vistag.errors import ConfigError, EngineError
from vistag.indexer.bulk import streaming_bulk
from vistag.mappings import DocumentSpec, create_index

logger = logging.getLogger(__name__)


@dataclass
class ReindexPlan:
    """What a reindex will do (``--dry-run`` prints it).

    Attributes:
        alias: the name readers use.
        new_index: the index being built.
        old_indices: indices the alias points to now.
        alias_is_index: the alias name is a concrete index today.
        resume: continuing an unfinished ``new_index``.
        source: ``catalog`` or ``index``.
        keep_old: keep the old indices after the swap.
    """

    alias: str
    new_index: str
    old_indices: list[str] = field(default_factory=list)
    alias_is_index: bool = False
    resume: bool = False
    source: str = "catalog"
    keep_old: bool = False

    def describe(self) -> list[str]:
        """Human-readable steps."""
        what = "continue filling" if self.resume else "create"
        steps = [f"{what} index {self.new_index!r} from the {self.source}"]
        if self.alias_is_index:
            steps.append(f"in one _aliases call: point {self.alias!r} at {self.new_index!r} and delete the concrete "
                         f"index {self.alias!r} (it had no alias yet)")
        else:
            olds = ", ".join(self.old_indices) or "nothing"
            steps.append(f"in one _aliases call: point {self.alias!r} at {self.new_index!r} (now: {olds})")
            if self.old_indices:
                steps.append(("keep " if self.keep_old else "delete ") + ", ".join(self.old_indices))
        return steps

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {**asdict(self), "steps": self.describe()}


def alias_targets(client: EngineClient, alias: str) -> list[str]:
    """Indices ``alias`` points to (empty when it is not an alias)."""
    resp = client.request("GET", f"/_alias/{alias}", ok_statuses=(404,))
    return sorted(k for k in resp if isinstance(resp.get(k), dict) and "aliases" in resp[k])


def plan_reindex(client: EngineClient, alias: str, *, resume: bool = False, source: str = "catalog",
                 keep_old: bool = False, now: Callable[[], datetime] | None = None) -> ReindexPlan:
    """Decide the new index name and what the alias points to now."""
    old = alias_targets(client, alias)
    alias_is_index = not old and client.index_exists(alias)
    if resume:
        resp = client.request("GET", f"/_cat/indices/{alias}-*", params={"format": "json", "h": "index"},
                              ok_statuses=(404,))
        candidates = sorted(i["index"] for i in resp if isinstance(resp, list) and i["index"] not in old) \
            if isinstance(resp, list) else []
        if candidates:
            return ReindexPlan(alias, candidates[-1], old, alias_is_index, True, source, keep_old)
        logger.info("nothing to resume for %s: starting a new index", alias)
    stamp = (now or (lambda: datetime.now(timezone.utc)))().strftime("%Y%m%d%H%M%S%f")[:-3]  # ms: no clash
    return ReindexPlan(alias, f"{alias}-{stamp}", old, alias_is_index, False, source, keep_old)


def swap_alias(client: EngineClient, plan: ReindexPlan) -> None:
    """Point the alias at the new index in one atomic ``_aliases`` call; then drop old indices."""
    actions: list[dict] = []
    if plan.alias_is_index:
        actions.append({"remove_index": {"index": plan.alias}})
    for index in plan.old_indices:
        actions.append({"remove": {"index": index, "alias": plan.alias}})
    actions.append({"add": {"index": plan.new_index, "alias": plan.alias}})
    client.request("POST", "/_aliases", {"actions": actions})
    logger.info("alias %s -> %s", plan.alias, plan.new_index)
    if not plan.keep_old:
        for index in plan.old_indices:
            if index != plan.new_index:
                client.request("DELETE", f"/{index}", ok_statuses=(404,))


def scan(client: EngineClient, index: str, page: int = 500, keep_alive: str = "5m") -> Iterator[dict]:
    """Every document of ``index`` (``_id`` and full ``_source``), with the scroll API."""
    resp = client.request("POST", f"/{index}/_search", {"size": page, "sort": ["_doc"], "query": {"match_all": {}}},
                          params={"scroll": keep_alive})
    scroll_id = resp.get("_scroll_id")
    try:
        while resp["hits"]["hits"]:
            for hit in resp["hits"]["hits"]:
                yield {"_id": hit["_id"], **hit["_source"]}
            resp = client.request("POST", "/_search/scroll", {"scroll": keep_alive, "scroll_id": scroll_id})
            scroll_id = resp.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            client.request("DELETE", "/_search/scroll", {"scroll_id": [scroll_id]}, ok_statuses=(404,))


@dataclass
class CopySummary:
    """Result of :func:`copy_index`."""

    copied: int = 0
    retagged: int = 0
    failed: int = 0
    seconds: float = 0.0


def copy_index(client: EngineClient, source: str, target: str, spec: DocumentSpec, retag=None,
               chunk_size: int = 500) -> CopySummary:
    """Copy every document of ``source`` into ``target`` (created from the templates of ``spec``).

    Args:
        retag: optional callable ``list[doc] -> list[doc]`` that rewrites tags from the
            stored vectors (a new trained model); ``None`` keeps the stored tags.
    """
    started = time.monotonic()
    create_index(client, spec, target)
    summary = CopySummary()

    def docs() -> Iterator[dict]:
        batch: list[dict] = []
        for doc in scan(client, source):
            batch.append(doc)
            if len(batch) >= chunk_size:
                yield from _retag(batch)
                batch = []
        if batch:
            yield from _retag(batch)

    def _retag(batch: list[dict]) -> list[dict]:
        if retag is None:
            return batch
        summary.retagged += len(batch)
        return retag(batch)

    for ok, item in streaming_bulk(client, docs(), target, chunk_size=chunk_size):
        if ok:
            summary.copied += 1
        else:
            summary.failed += 1
            logger.error("document %s not copied: %s", item["_id"], item["error"])
    client.refresh(target)
    summary.seconds = round(time.monotonic() - started, 2)
    if summary.failed:
        raise EngineError(f"{summary.failed} documents could not be copied into {target}; the alias was not moved")
    return summary


def check_complete(client: EngineClient, index: str, expected: int) -> None:
    """Refuse to swap when ``index`` holds fewer documents than ``expected``."""
    client.refresh(index)
    count = client.count(index)
    if count < expected:
        raise ConfigError(f"{index} holds {count} of {expected} documents; the alias was not moved "
                          "(rerun with --resume)")

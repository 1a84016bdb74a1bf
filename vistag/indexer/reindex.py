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

import numpy as np

from vistag.engine.client import EngineClient
from vistag.errors import ConfigError, EngineError
from vistag.indexer.bulk import streaming_bulk
from vistag.documents import DocumentSpec, create_index

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


def plan_reindex(client: EngineClient, alias: str, *, resume: bool = False, source: str = "catalog",
                 keep_old: bool = False, now: Callable[[], datetime] | None = None) -> ReindexPlan:
    """Decide the new index name and what the alias points to now."""
    old = client.alias_targets(alias)
    alias_is_index = not old and client.index_exists(alias)
    if resume:
        candidates = [i for i in client.indices(f"{alias}-*") if i not in old]
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
    client.update_aliases(actions)
    logger.info("alias %s -> %s", plan.alias, plan.new_index)
    if not plan.keep_old:
        for index in plan.old_indices:
            if index != plan.new_index:
                client.delete_index(index)


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

    With nothing to re-tag and the engine's ``reindex`` module present, the copy is
    one server-side ``_reindex``; otherwise documents stream through the client's
    ``helpers.scan`` into vistag's bulk layer.

    Args:
        retag: optional callable ``list[doc] -> list[doc]`` that rewrites tags from the
            stored vectors (a new trained model); ``None`` keeps the stored tags.

    Raises:
        EngineError: some documents could not be copied (the alias is then not moved).
    """
    started = time.monotonic()
    create_index(client, spec, target)
    summary = CopySummary()
    if retag is None and client.info().has("reindex") and client.info().modules:
        resp = client.reindex(source, target)
        summary.copied = int(resp.get("created", 0)) + int(resp.get("updated", 0))
        summary.failed = len(resp.get("failures") or [])
    else:
        def docs() -> Iterator[dict]:
            batch: list[dict] = []
            for hit in client.scan(source, size=chunk_size):
                batch.append({"_id": hit["_id"], **hit["_source"]})
                if len(batch) >= chunk_size:
                    yield from _retag(batch)
                    batch = []
            if batch:
                yield from _retag(batch)

        def _retag(batch: list[dict]) -> list[dict]:
            for doc in batch:  # stored vectors are float32: write them back as float32
                if doc.get("image_vector") is not None:
                    doc["image_vector"] = np.asarray(doc["image_vector"], dtype=np.float32)
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

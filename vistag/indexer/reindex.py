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

Examples:
    >>> result = reindex(OpenSearch("http://127.0.0.1:9200"), "products", "labels.csv", images="images.tar",
    ...                  schema="fashion-product-images")                                      # doctest: +SKIP
    >>> result.plan.new_index                                                                  # doctest: +SKIP
    'products-20261207120000123'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vistag.catalog.rows import CatalogSource
from vistag.documents.spec import DocumentSpec
from vistag.documents.templates import create_index
from vistag.engine.client import Client, EngineClient, as_engine
from vistag.engine.retry import RetryPolicy
from vistag.errors import ConfigError, EngineError, NotFoundError
from vistag.indexer.bulk import streaming_bulk
from vistag.indexer.options import IndexSummary

if TYPE_CHECKING:  # pragma: no cover
    from vistag.models.loading import ModelSpec

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
            steps.append(
                f"in one _aliases call: point {self.alias!r} at {self.new_index!r} and delete the concrete "
                f"index {self.alias!r} (it had no alias yet)"
            )
        else:
            olds = ", ".join(self.old_indices) or "nothing"
            steps.append(f"in one _aliases call: point {self.alias!r} at {self.new_index!r} (now: {olds})")
            if self.old_indices:
                steps.append(("keep " if self.keep_old else "delete ") + ", ".join(self.old_indices))
        return steps

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**asdict(self), "steps": self.describe()}


def plan_reindex(
    client: EngineClient,
    alias: str,
    *,
    resume: bool = False,
    source: str = "catalog",
    keep_old: bool = False,
    now: Callable[[], datetime] | None = None,
) -> ReindexPlan:
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


def copy_index(
    client: EngineClient,
    source: str,
    target: str,
    spec: DocumentSpec,
    retag: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
    chunk_size: int = 500,
) -> CopySummary:
    """Copy every document of ``source`` into ``target`` (created from the templates of ``spec``).

    With nothing to re-tag and the engine's ``reindex`` module present, the copy is
    one server-side ``_reindex``; otherwise documents stream through the client's
    paged reads (:meth:`~vistag.engine.client.EngineClient.scan`) into vistag's bulk layer.

    Args:
        client: the engine.
        source: the index (or alias) to copy.
        target: the new index.
        spec: its document spec (the templates it is created from).
        retag: optional callable ``list[doc] -> list[doc]`` that rewrites tags from the
            stored vectors (a new trained model); ``None`` keeps the stored tags.
        chunk_size: documents per page and per bulk request.

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

        def docs() -> Iterator[dict[str, Any]]:
            batch: list[dict[str, Any]] = []
            for hit in client.scan(source, size=chunk_size):
                batch.append({"_id": hit["_id"], **hit["_source"]})
                if len(batch) >= chunk_size:
                    yield from _retag(batch)
                    batch = []
            if batch:
                yield from _retag(batch)

        def _retag(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
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
        raise ConfigError(
            f"{index} holds {count} of {expected} documents; the alias was not moved (rerun with --resume)"
        )


@dataclass
class ReindexResult:
    """What :func:`reindex` did.

    Attributes:
        plan: the new index, the old ones and the steps.
        done: the alias was moved (``False`` for a dry run, or when rows failed).
        documents: documents in the new index.
        index: the indexing run's summary (building from a catalog).
        copy: the copy's summary (building from the current index).
    """

    plan: ReindexPlan
    done: bool = False
    documents: int = 0
    index: IndexSummary | None = None
    copy: CopySummary | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what ``vistag reindex --json`` prints)."""
        out: dict[str, Any] = {"plan": self.plan.to_dict(), "done": self.done, "documents": self.documents}
        if self.index is not None:
            out["index"] = self.index.to_dict()
        if self.copy is not None:
            out["copy"] = asdict(self.copy)
        if self.done:
            out["alias"] = {self.plan.alias: self.plan.new_index}
        return out


def spec_of_index(client: EngineClient, name: str, quantization: str | None = None) -> DocumentSpec:
    """The document spec of an existing index or alias, from its mapping's ``_meta``
    (``quantization`` overrides the stored one).

    Raises:
        NotFoundError: the index does not exist.
        ConfigError: its mapping records no vector dimension (not made by vistag).
    """
    if not client.index_exists(name):
        raise NotFoundError(f"index {name!r} does not exist")
    mapping = client.get_mapping(name)
    meta = next(iter(mapping.values()))["mappings"].get("_meta", {})
    if not meta.get("vector_dim"):
        raise ConfigError(f"index {name!r} records no vector dimension in its mapping: it was not made by vistag")
    return DocumentSpec(
        name=name,
        vector_dim=int(meta["vector_dim"]),
        vector_quantization=quantization or meta.get("vector_quantization", "none"),
    )


def model_retagger(model: Any, top_d: int = 10) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    """A function that re-tags copied documents from their stored vectors (and, for a title-aware
    model, their stored ``title``) with a trained :class:`~vistag.models.tagging_model.TaggingModel`.

    The function raises :class:`~vistag.errors.ConfigError` when the stored vectors come
    from another network than the model was trained on.
    """
    from vistag.analyzers.taggers import ModelDocumentTagger

    tagger = ModelDocumentTagger(model, None, top_d=top_d)

    def retag(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = {d.get("model", {}).get("version") for d in docs}
        if stored != {model.backbone.model_id}:
            raise ConfigError(
                f"the stored vectors come from {sorted(map(str, stored))}, the model needs "
                f"{model.backbone.model_id}: reindex from the catalog instead"
            )
        vectors = np.asarray([d["image_vector"] for d in docs], dtype=np.float32)
        leaf = [_leaf(d.get("category", {})) for d in docs]
        titles = [d.get("title") for d in docs] if tagger.title_column else None
        for doc, tagged in zip(docs, tagger.tag(vectors, [d["_id"] for d in docs], leaf, titles=titles)):
            weights = {t: round(float(s), 6) for t, s in tagged.tags}
            doc.update(tags=list(weights), tag_weights=weights, predicted=tagged.predicted)
            doc["model"] = {**doc.get("model", {}), "tagger": tagger.id}
        return docs

    return retag


def _leaf(category: dict[str, Any]) -> str | None:
    """The deepest ``lvl<N>`` value of a document's category."""
    levels = sorted((int(k[3:]), v) for k, v in category.items() if k.startswith("lvl") and k[3:].isdigit())
    return levels[-1][1] if levels else None


def reindex(
    client: Client,
    alias: str,
    catalog: CatalogSource | None = None,
    images: str | Path | None = None,
    *,
    from_index: bool = False,
    keep_old: bool = False,
    dry_run: bool = False,
    resume: bool = False,
    model: ModelSpec = "efficientnet-lite0",
    vector_quantization: str | None = None,
    top_d: int = 10,
    retry: RetryPolicy | None = None,
    now: Callable[[], datetime] | None = None,
    **index_kwargs: Any,
) -> ReindexResult:
    """Build ``<alias>-<timestamp>`` and point ``alias`` at it in one atomic call (see the module docstring).

    Args:
        client: an ``Elasticsearch`` or ``OpenSearch`` client (or an :class:`~vistag.engine.client.EngineClient`).
        alias: the name readers use.
        catalog: the catalog to build from (as :func:`~vistag.indexer.pipeline.index_catalog`).
        images: its images.
        from_index: build from the documents ``alias`` serves now instead: stored vectors
            and tags are copied; with a trained ``model`` the stored vectors are re-tagged.
        keep_old: keep the old indices after the swap.
        dry_run: return the plan; change nothing.
        resume: continue the newest unfinished ``<alias>-*`` index.
        model: a backbone name or a model directory (re-tags with ``from_index``).
        vector_quantization: ``none`` or ``int8`` (``from_index``: default the current index's).
        top_d: tags kept per product.
        retry: the backoff of every engine call.
        now: the clock of the new index's name (tests).
        **index_kwargs: passed to :func:`~vistag.indexer.pipeline.index_catalog` (``schema``, ``cache_dir``, ...).

    Returns:
        The :class:`ReindexResult`; ``done`` is False when rows failed (the alias is then
        not moved: fix them and call again with ``resume=True``).

    Raises:
        ConfigError: neither a catalog nor ``from_index``, or the new index is incomplete.
        NotFoundError: ``from_index`` and the alias does not exist.
    """
    from vistag.indexer.pipeline import index_catalog

    engine = as_engine(client, retry)
    source = "index" if from_index else "catalog"
    if source == "catalog" and catalog is None:
        raise ConfigError("give a catalog, or from_index=True to rebuild from the current index")
    if from_index and not engine.index_exists(alias):
        raise NotFoundError(f"from_index: {alias!r} does not exist")
    plan = plan_reindex(engine, alias, resume=resume, source=source, keep_old=keep_old, now=now)
    result = ReindexResult(plan)
    if dry_run:
        return result
    if source == "catalog":
        assert catalog is not None
        summary = index_catalog(
            engine,
            catalog,
            images,
            plan.new_index,
            model=model,
            resume=plan.resume,
            template=alias,
            top_d=top_d,
            vector_quantization=vector_quantization or "none",
            **index_kwargs,
        )
        result.index = summary
        if not summary.ok:
            return result
        expected = summary.indexed + summary.skipped_existing
    else:
        from vistag.models.loading import is_model_dir, load_model

        expected = engine.count(alias)
        retag = None
        if is_model_dir(model):
            trained = load_model(model).tagging
            retag = model_retagger(trained, top_d)
        result.copy = copy_index(
            engine, alias, plan.new_index, spec_of_index(engine, alias, vector_quantization), retag
        )
    check_complete(engine, plan.new_index, expected)
    swap_alias(engine, plan)
    result.done, result.documents = True, expected
    return result

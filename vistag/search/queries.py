"""Run the strategy templates against an index and return uniform hits.

Queries are rendered from the same mustache templates the engine stores (see
:mod:`vistag.documents`), so ``vistag search`` and a storefront calling
``_search/template`` get the same results.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from vistag.documents.spec import DocumentSpec
from vistag.documents.strategies import hybrid, image, keyword, similar, tags
from vistag.documents.templates import render_search, search_template_id
from vistag.engine.adapter import HYBRID_RRF_PIPELINE, EngineAdapter
from vistag.engine.client import Client, as_engine
from vistag.errors import ConfigError, EngineError, NotFoundError
from vistag.search.fusion import FUSIONS

if TYPE_CHECKING:  # pragma: no cover
    from vistag.analyzers.relations import TagRelations


@dataclass
class Hit:
    """One search result."""

    id: str
    score: float
    title: str | None
    source: dict

    def to_dict(self) -> dict:
        """JSON-friendly form (without the vector)."""
        return {"id": self.id, "score": self.score, "title": self.title, "source": self.source}


#: An image query: a vector, or an image (a path, URL, encoded bytes or a PIL image) to embed first.
ImageQuery = Sequence[float] | np.ndarray | str | bytes | Any


#: BM25 best / second score ratio at or above which :meth:`Searcher.text` keeps the best hit first.
PIN_RATIO = 2.0

_WORD = re.compile(r"\w+")


def pin_known_item(fused: list[Hit], bm25: Sequence[Hit], ratio: float, query: str | None = None) -> list[Hit]:
    """``fused`` with BM25's best hit first when the query names it: every word of its title
    is in ``query``, or it scores ``ratio`` times BM25's second (or has no second).

    Rank fusion is blind to score gaps and to exact names: a shopper who pastes a
    product's title wants that product, and the lists that rank by type and look would
    bury it among its look-alikes.
    """
    if not bm25:
        return fused
    top = bm25[0]
    words = set(_WORD.findall(query.lower())) if query else set()
    named = bool(words) and set(_WORD.findall(str(top.title or "").lower())) <= words and bool(top.title)
    if not named and len(bm25) > 1 and top.score < ratio * bm25[1].score:
        return fused
    rest = [h for h in fused if h.id != top.id]
    return [Hit(top.id, fused[0].score if fused else top.score, top.title, top.source), *rest]


def _hits(resp: Mapping[str, Any]) -> list[Hit]:
    return [
        Hit(h["_id"], float(h["_score"] or 0.0), h.get("_source", {}).get("title"), h.get("_source", {}))
        for h in resp["hits"]["hits"]
    ]


class Searcher:
    """Queries one index (or alias) with the same templates a storefront runs.

    Args:
        client: an ``Elasticsearch`` or ``OpenSearch`` client (or an :class:`EngineClient`).
        index: index or alias name.
        vector_dim: dimension of ``image_vector``; read from the index mapping when left
            out (then the index must exist).
        embedder: turns image queries into vectors (an
            :class:`~vistag.models.embedder.ImageEmbedder`); by default the backbone
            named in the index's documents is created on the first image query.

    Examples:
        >>> from opensearchpy import OpenSearch                                   # doctest: +SKIP
        >>> searcher = Searcher(OpenSearch("http://127.0.0.1:9200"), "products")  # doctest: +SKIP
        >>> [h.id for h in searcher.keyword("red dress", size=3)]                 # doctest: +SKIP
        ['1855', '2017', '1526']

    Raises:
        NotFoundError: the index does not exist (and no ``vector_dim`` was given).
        ConfigError: the index maps no ``image_vector``.
    """

    def __init__(
        self, client: Client, index: str = "products", vector_dim: int | None = None, embedder: Any = None
    ) -> None:
        self.client = as_engine(client)
        self.index = index
        self.adapter = EngineAdapter(self.client.info())
        self.embedder = embedder
        self._checked: Any = None  # the embedder already checked against the index's network
        self._count: int | None = None
        self.spec = DocumentSpec(name=index, vector_dim=vector_dim or self._index_vector_dim())

    def _index_vector_dim(self) -> int:
        """``image_vector``'s dimension from the index mapping."""
        if not self.client.index_exists(self.index):
            raise NotFoundError(
                f"index {self.index!r} does not exist on {self.client.label}: index a catalog "
                "into it first (vistag index), or pass vector_dim"
            )
        for body in self.client.get_mapping(self.index).values():
            mapping = body.get("mappings", {})
            dim = mapping.get("_meta", {}).get("vector_dim")
            field_mapping = mapping.get("properties", {}).get("image_vector", {})
            dim = dim or field_mapping.get("dims") or field_mapping.get("dimension")
            if dim:
                return int(dim)
        raise ConfigError(f"index {self.index!r} maps no image_vector: it was not made by vistag (pass vector_dim)")

    def vector_of(self, query: ImageQuery) -> np.ndarray:
        """The query vector: ``query`` itself, or the embedding of the image it names or holds.

        Raises:
            ConfigError: a vector of the wrong dimension.
            ImageLoadError: an image that cannot be read or decoded.
        """
        if isinstance(query, np.ndarray) or (isinstance(query, Sequence) and not isinstance(query, (str, bytes))):
            vector = np.asarray(query, dtype=np.float32).ravel()
        else:
            from vistag.images import ImageLoadError, ImageStore

            try:
                image = ImageStore().load(query).image
            except ImageLoadError as exc:
                raise ImageLoadError(f"image query: {exc}") from None
            vector = self._embedder().embed_images([image])[0]
        if vector.shape[0] != self.spec.vector_dim:
            raise ConfigError(
                f"the query vector has {vector.shape[0]} dimensions; {self.index!r} holds "
                f"{self.spec.vector_dim}-d vectors"
            )
        return vector

    def index_network(self) -> tuple[str | None, str | None]:
        """``(name, model id)`` of the network that embedded the index's documents (``None`` when it has none)."""
        resp = self.client.search(self.index, {"size": 1, "_source": ["model"], "query": {"match_all": {}}})
        hits = resp["hits"]["hits"]
        model = (hits[0]["_source"].get("model") or {}) if hits else {}
        return model.get("name"), model.get("version")

    def _embedder(self) -> Any:
        """The query embedder, checked against the network that embedded the index.

        Raises:
            ConfigError: the index was embedded by another network (a fine-tuned one, say) than the query would be.
        """
        if self.embedder is not None and self._checked is self.embedder:
            return self.embedder
        name, version = self.index_network()
        if self.embedder is None:
            from vistag.models.loading import create_embedder

            if version and "-ft" in version:
                raise ConfigError(
                    f"{self.index!r} was embedded by the fine-tuned network {version}: pass its model "
                    "(Searcher(..., embedder=load_model(MODEL_DIR).embedder), or --model MODEL_DIR)"
                )
            self.embedder = create_embedder(name or "efficientnet-lite0")
        model_id = getattr(self.embedder, "model_id", None)
        if version and model_id and model_id != version:
            raise ConfigError(
                f"{self.index!r} was embedded by {version}, the query by {model_id}: their vectors are not "
                "comparable; query with the network that indexed it"
            )
        self._checked = self.embedder
        return self.embedder

    def body(self, strategy: ModuleType, params: dict) -> dict:
        """The search body a strategy's template renders to."""
        return render_search(self.adapter, self.spec, strategy, params)

    def run(self, strategy: ModuleType, params: dict) -> list[Hit]:
        """Render and run a strategy's query."""
        return _hits(self.client.search(self.index, self.body(strategy, params)))

    def run_stored_template(self, strategy: ModuleType, params: dict) -> list[Hit]:
        """Run the same query through the stored search template (as a storefront would)."""
        return _hits(self.client.search_template(self.index, search_template_id(self.spec, strategy), params))

    def keyword(
        self,
        query: str,
        size: int = 10,
        offset: int = 0,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Hit]:
        """BM25 over title and text."""
        return self.run(keyword, keyword.params(query, size, offset, category, attributes))

    def tags(
        self,
        weights: Mapping[str, float] | Sequence[str],
        size: int = 10,
        offset: int = 0,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
        relations: TagRelations | None = None,
        discount: float = 0.5,
    ) -> list[Hit]:
        """Products ranked by the sum of (query weight x presence score) over the tags.

        With ``relations`` (a :class:`~vistag.analyzers.relations.TagRelations`), the
        query is expanded first (query-time expansion): related tags join at
        ``discount x weight x relation``.
        """
        return self.run(
            tags, tags.params(self.expand(weights, relations, discount), size, offset, category, attributes)
        )

    @staticmethod
    def expand(
        weights: Mapping[str, float] | Sequence[str], relations: TagRelations | None = None, discount: float = 0.5
    ) -> dict[str, float]:
        """The tag weights of a query, expanded with related tags when ``relations`` is given."""
        weights = dict(weights) if isinstance(weights, Mapping) else dict.fromkeys(weights, 1.0)
        return relations.expand(weights, discount=discount) if relations is not None else weights

    def image(
        self,
        query: ImageQuery,
        k: int = 10,
        num_candidates: int | None = None,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Hit]:
        """Approximate kNN on the image vector, filters applied inside the kNN search.

        Args:
            query: a vector, or an image to embed: a path, an http(s) URL, encoded
                bytes or a PIL image.
            k: results (the kNN ``k``).
            num_candidates: HNSW candidates (default ``max(100, 2k)``).
            category: a category path prefix filter, e.g. ``"Apparel > Topwear"``.
            attributes: attribute filters, e.g. ``{"gender": "Men"}``.

        Examples:
            >>> searcher.image("photo.jpg", k=10)[0].id   # doctest: +SKIP
            '15970'
        """
        vector = self.vector_of(query).tolist()
        return self.run(image, image.params(vector, k, num_candidates, category=category, attributes=attributes))

    def image_many(
        self,
        vectors: Sequence[Sequence[float]],
        k: int = 10,
        num_candidates: int | None = None,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[list[Hit]]:
        """:meth:`image` for many vectors in one ``_msearch`` request (one hit list per vector).

        Raises:
            EngineError: a search of the batch failed.
        """
        if not len(vectors):
            return []
        return self._msearch_lists(
            [
                (
                    f"kNN search in {self.index}",
                    self.body(
                        image,
                        image.params(
                            np.asarray(vector, dtype=np.float32).tolist(),
                            k,
                            num_candidates,
                            category=category,
                            attributes=attributes,
                        ),
                    ),
                )
                for vector in vectors
            ]
        )

    def _engine_hybrid_body(
        self,
        query: str | None,
        tag_weights: Mapping[str, float] | None,
        vector: list[float] | None,
        size: int,
        offset: int,
        fusion: str,
        weights: Mapping[str, float] | None,
        window: int,
        category: str | None,
        attributes: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """The body of one ``hybrid`` request, with the search pipeline that fuses it."""
        body = self.body(hybrid, hybrid.params(query, tag_weights, vector, size, offset, window, category, attributes))
        if fusion == "rrf":
            body["search_pipeline"] = hybrid.pipelines()[HYBRID_RRF_PIPELINE]
        else:
            present = [
                name
                for name, there in (
                    ("text", bool(query and query.strip())),
                    ("tags", bool(tag_weights)),
                    ("image", vector is not None),
                )
                if there
            ]
            body["query"]["hybrid"]["queries"].pop()  # the match_none: one weight per real sub-query
            body["search_pipeline"] = hybrid.weighted_pipeline([(weights or {}).get(n, 1.0) for n in present])
        body["search_pipeline"].pop("description", None)
        return body

    def _msearch_lists(self, searches: Sequence[tuple[str, dict]]) -> list[list[Hit]]:
        """The hits of each ``(what, body)`` search on this index, all sent in one ``_msearch``;
        a failed one raises, saying ``what`` failed.
        """
        lists: list[list[Hit]] = []
        for (what, _), answer in zip(searches, self.client.msearch([(self.index, body) for _, body in searches])):
            if "error" in answer:
                raise EngineError(f"{what} failed: {json.dumps(answer['error'])[:500]}", answer.get("status"))
            lists.append(_hits(answer))
        return lists

    def _hybrid_lists(self, bodies: Mapping[str, dict]) -> list[list[Hit]]:
        """:meth:`_msearch_lists` for the named lists of a hybrid query."""
        return self._msearch_lists(
            [(f"the {name} list of a hybrid query on {self.index}", body) for name, body in bodies.items()]
        )

    def run_hybrid_template(self, params: dict) -> list[Hit]:
        """The stored ``<index>-hybrid`` template, fused by the index's default pipeline: one call,
        as a storefront makes it.
        """
        return _hits(self.client.search_template(self.index, search_template_id(self.spec, hybrid), params))

    def similar(
        self,
        product_id: str,
        k: int = 10,
        num_candidates: int | None = None,
        tag_weight: float = similar.DEFAULT_TAG_WEIGHT,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> list[Hit]:
        """Products similar to ``product_id`` by image and shared tags, the product itself excluded.

        Raises:
            NotFoundError: no such product, or it has no image vector.
        """
        source = self.client.get_source(self.index, product_id, ["image_vector", "tag_weights"])
        if source is None:
            raise NotFoundError(f"product {product_id!r} is not in {self.index!r}")
        if not source.get("image_vector"):
            raise NotFoundError(f"product {product_id!r} of {self.index!r} has no image vector")
        return self.run(
            similar,
            similar.params(
                product_id,
                source["image_vector"],
                source.get("tag_weights", {}),
                k,
                num_candidates,
                tag_weight,
                category=category,
                attributes=attributes,
            ),
        )

    def fusion_site(self, fusion: str = "rrf", weights: Mapping[str, float] | None = None) -> str:
        """Where :meth:`hybrid` fuses: ``"engine"`` (OpenSearch with neural-search; RRF
        there takes no per-list weights) or ``"client"``.
        """
        if not self.adapter.hybrid or (fusion == "rrf" and weights):
            return "client"
        return "engine"

    def text(
        self,
        query: str,
        projection: Any = None,
        relations: Any = None,
        size: int = 10,
        offset: int = 0,
        fusion: str = "rrf",
        weights: Mapping[str, float] | None = None,
        window: int = 100,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
        where: str = "auto",
        pin_ratio: float | None = PIN_RATIO,
    ) -> list[Hit]:
        """A shopper's text query through the default hybrid: BM25 + query tags + text->image kNN, fused by RRF.

        The query tags are the words of ``query`` that are catalog tags (IDF-weighted, with
        ``relations``: :func:`~vistag.search.text_tags.tags_from_text`, expanded by the
        relations) and the tags ``projection`` reads from the text; ``projection`` (a
        :class:`~vistag.models.text_image.TextImageProjection` trained on this index's
        backbone) also gives the image-space vector of the text. Without a projection or
        relations the missing lists are left out (BM25 alone at the least). A known item
        (the query holds every word of BM25's best hit's title, or that hit scores
        ``pin_ratio`` times the second) stays first.

        Examples:
            >>> proj = TextImageProjection.load("model/text-image")                    # doctest: +SKIP
            >>> searcher.text("navy blue shirt", proj, TagRelations.load("relations"))  # doctest: +SKIP
        """
        tag_weights, vector = self.read_query(query, projection, relations)
        return self.hybrid(
            query,
            tag_weights or None,
            vector,
            size=size,
            offset=offset,
            fusion=fusion,
            weights=weights,
            window=window,
            category=category,
            attributes=attributes,
            relations=relations,
            where=where,
            pin_ratio=pin_ratio,
        )

    def read_query(self, query: str, projection: Any = None, relations: Any = None) -> tuple[dict[str, float], Any]:
        """What :meth:`text` sends for ``query``: its query tags and its image-space vector.

        The query tags are the words of ``query`` that are tags (IDF-weighted; needs
        ``relations``) merged, by the larger weight, with the tags ``projection`` reads; the
        vector is ``None`` without a projection.

        Examples:
            >>> searcher.read_query("navy blue shirt", proj, relations)[0]  # doctest: +SKIP
            {'navy-blue': 1.0, 'shirts': 0.93, 'blue': 0.21}
        """
        from vistag.search.text_tags import tags_from_text

        tag_weights: dict[str, float] = {}
        df = relations.document_frequency() if relations is not None else {}
        if df:
            tag_weights = tags_from_text(query, df, self.document_count())
        vector = None
        if projection is not None:
            vector, read = projection.encode_query(query)
            for tag, w in read.items():
                tag_weights[tag] = max(tag_weights.get(tag, 0.0), w)
        return tag_weights, vector

    def document_count(self) -> int:
        """Documents in the index (asked once, then remembered: the IDF of query tags needs it)."""
        if self._count is None:
            self._count = int(self.client.count(self.index))
        return self._count

    def hybrid(
        self,
        query: str | None = None,
        tag_weights: Mapping[str, float] | None = None,
        vector: ImageQuery | None = None,
        size: int = 10,
        offset: int = 0,
        fusion: str = "rrf",
        weights: Mapping[str, float] | None = None,
        window: int = 100,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
        relations: TagRelations | None = None,
        discount: float = 0.5,
        where: str = "auto",
        pin_ratio: float | None = None,
    ) -> list[Hit]:
        """BM25 + tags + kNN, fused by ``rrf`` or ``weighted`` (min-max normalised) sums.

        Inside the engine in one ``hybrid`` request where it can (see
        :meth:`fusion_site`), else the lists run side by side in one ``_msearch``
        (filters inside each, kNN included) and are fused here.

        Args:
            query: keywords (BM25 over title and text), or ``None``.
            tag_weights: tags and their weights, or ``None``.
            vector: an image query (see :meth:`image`), or ``None``.
            size: results.
            offset: results skipped (paging).
            fusion: ``rrf`` or ``weighted``.
            window: candidates taken from each list (at least ``offset + size``).
            weights: per-list weights, keys ``text``, ``tags``, ``image``.
            category: a category path prefix filter.
            attributes: attribute filters.
            relations: :class:`~vistag.analyzers.relations.TagRelations` to expand the tags with.
            discount: weight factor of the related tags.
            where: ``auto``, ``engine`` or ``client``.
            pin_ratio: when the query holds every word of BM25's best hit's title, or that
                hit scores at least this many times the second (a known item: the shopper
                typed its name), it is put first; ``None``: never (see :func:`pin_known_item`).

        Raises:
            ConfigError: ``where="engine"`` on a cluster that cannot fuse.
        """
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}: {', '.join(FUSIONS)}")
        possible = self.fusion_site(fusion, weights)
        site = possible if where == "auto" else where
        if site == "engine":
            if possible != "engine":
                raise ConfigError(
                    f"{self.client.label} cannot fuse {fusion!r} hybrid queries itself "
                    "(OpenSearch with the neural-search plugin can; RRF takes no weights)"
                )
            expanded = self.expand(tag_weights, relations, discount) if tag_weights else None
            vec = self.vector_of(vector).tolist() if vector is not None else None
            if not (pin_ratio and query):
                body = self._engine_hybrid_body(
                    query, expanded, vec, size, offset, fusion, weights, window, category, attributes
                )
                return _hits(self.client.search(self.index, body))
            # The fused answer carries only fused scores: BM25's two best, for the known-item
            # check, ride in the same _msearch.
            body = self._engine_hybrid_body(
                query, expanded, vec, offset + size, 0, fusion, weights, window, category, attributes
            )
            best_two = self.body(keyword, keyword.params(query, 2, 0, category, attributes))
            fused_hits, bm25 = self._hybrid_lists({"hybrid": body, "text": best_two})
            return pin_known_item(fused_hits, bm25, pin_ratio, query)[offset : offset + size]
        window = max(window, offset + size)
        bodies: dict[str, dict] = {}  # every list in one _msearch: the engine runs them side by side
        if query:
            bodies["text"] = self.body(keyword, keyword.params(query, window, 0, category, attributes))
        if tag_weights:
            bodies["tags"] = self.body(
                tags, tags.params(self.expand(tag_weights, relations, discount), window, 0, category, attributes)
            )
        if vector is not None:  # a vector, or an image to embed
            bodies["image"] = self.body(
                image,
                image.params(self.vector_of(vector).tolist(), window, None, category=category, attributes=attributes),
            )
        if not bodies:
            raise ConfigError("a hybrid query needs text, tags or an image")
        lists = dict(zip(bodies, self._hybrid_lists(bodies)))
        by_id = {h.id: h for hits in lists.values() for h in hits}
        fused = FUSIONS[fusion](
            {name: [(h.id, h.score) for h in hits] for name, hits in lists.items()}, weights=weights
        )
        fused_hits = [Hit(doc_id, score, by_id[doc_id].title, by_id[doc_id].source) for doc_id, score in fused]
        if pin_ratio and "text" in lists:
            fused_hits = pin_known_item(fused_hits, lists["text"], pin_ratio, query)
        return fused_hits[offset : offset + size]

"""What a relevance run compares: vistag's query types, the hybrids, and any search template.

A :class:`Strategy` is a name, a kind and its parameters; :func:`run_strategy` turns one
query into a ranked list of product ids through a :class:`~vistag.search.queries.Searcher`.

========== ====================================================================================
kind       what runs (the query's own product, when it has one, is left out of the results)
========== ====================================================================================
keyword    BM25 on the text (:meth:`~vistag.search.queries.Searcher.keyword`)
tags       the words of the text that are catalog tags, IDF-weighted (:meth:`~vistag.search.queries.Searcher.tags`)
expand     the same tags expanded by the learned tag relations
image      kNN on the query's photo, or on its product's stored vector
similar    :meth:`~vistag.search.queries.Searcher.similar` from the query's product
text_image kNN on the text projected into the image space
hybrid     the default text hybrid (:meth:`~vistag.search.queries.Searcher.text`: BM25 + query
           tags + text -> image); ``params``: ``fusion`` (``rrf``/``weighted``), ``weights``
           (per list: ``text``, ``tags``, ``image``), ``where`` (``client``/``engine``/``auto``),
           ``expand`` (default true; false: BM25 + the text's tag words, not expanded, and no
           tags read by the projection: :meth:`~vistag.search.queries.Searcher.hybrid`)
template   a stored search template (``params.id``) or a mustache template file
           (``params.source``, rendered here) with ``params.params``; ``{text}``, ``{product}``
           and ``{k}`` in its string values are the query's
========== ====================================================================================

Examples:
    >>> hybrid = {"name": "rrf 1/2/1", "kind": "hybrid", "params": {"weights": {"tags": 2}}}
    >>> parse_strategies(["keyword", hybrid])[1].kind
    'hybrid'
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vistag.errors import ConfigError, NotFoundError
from vistag.relevance.queries import Query
from vistag.search.queries import Searcher
from vistag.search.text_tags import tags_from_text

KINDS = ("keyword", "tags", "expand", "image", "similar", "text_image", "hybrid", "template")
#: Kinds that read the query's text / need its photo or product.
TEXT_KINDS = {"keyword", "tags", "expand", "text_image", "hybrid"}
IMAGE_KINDS = {"image", "similar"}


@dataclass(frozen=True)
class Strategy:
    """One way of answering a query.

    Attributes:
        name: how reports name it.
        kind: one of :data:`KINDS`.
        params: kind-specific parameters (see the module docstring).
    """

    name: str
    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"strategy {self.name!r}: unknown kind {self.kind!r} (one of {', '.join(KINDS)})")
        if self.kind == "template" and not (self.params.get("id") or self.params.get("source")):
            raise ConfigError(f"strategy {self.name!r}: a template strategy needs params.id or params.source")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        return {**asdict(self), "params": dict(self.params)}

    def applies_to(self, query: Query) -> bool:
        """Whether the query has what this strategy reads (text, or a photo or product)."""
        if self.kind in TEXT_KINDS:
            return bool(query.text)
        if self.kind == "image":
            return bool(query.image or query.product)
        if self.kind == "similar":
            return bool(query.product)
        return True


def parse_strategies(items: Iterable[str | Mapping[str, Any]]) -> list[Strategy]:
    """Strategies from names (a kind alone: ``"keyword"``) or objects ``{"name", "kind", "params"}``.

    Raises:
        ConfigError: an unknown kind, or two strategies with one name.
    """
    out: list[Strategy] = []
    for item in items:
        if isinstance(item, str):
            out.append(Strategy(item, item))
        else:
            kind = str(item.get("kind") or item.get("name") or "")
            out.append(Strategy(str(item.get("name") or kind), kind, dict(item.get("params") or {})))
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise ConfigError(f"strategy names must differ: {names}")
    return out


def read_strategies(path: str | Path) -> list[Strategy]:
    """Strategies from a JSON file (a list, as :func:`parse_strategies` takes).

    Raises:
        NotFoundError: no such file.
        ConfigError: not a JSON list, or a bad strategy.
    """
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"strategies file {path} does not exist")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(items, list):
        raise ConfigError(f"{path}: a strategies file is a JSON list")
    return parse_strategies(items)


@dataclass
class Context:
    """What some strategies need besides the searcher.

    Attributes:
        relations: learned tag relations (``expand``, ``hybrid``), or ``None``.
        projection: the text -> image projection (``text_image``, ``hybrid``), or ``None``.
        document_frequency: tag -> documents carrying it (``tags``/``expand`` weight query words by IDF).
        documents: documents in the index.
    """

    relations: Any = None
    projection: Any = None
    document_frequency: Mapping[str, int] = field(default_factory=dict)
    documents: int = 0


def _fill(value: Any, query: Query, k: int) -> Any:
    if value == "{k}":
        return k
    if isinstance(value, str):
        return value.replace("{text}", query.text).replace("{product}", query.product).replace("{k}", str(k))
    if isinstance(value, Mapping):
        return {key: _fill(v, query, k) for key, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, query, k) for v in value]
    return value


def _vector_of(searcher: Searcher, query: Query) -> Any:
    if query.image:
        return query.image
    source = searcher.client.get_source(searcher.index, query.product, ["image_vector"]) if query.product else None
    vector = (source or {}).get("image_vector")
    if vector is None:
        raise NotFoundError(f"query product {query.product!r} has no image_vector in {searcher.index!r}")
    return np.asarray(vector, np.float32)


def _tag_words(query: Query, context: Context) -> dict[str, float]:
    """The words of the query's text that are catalog tags, IDF-weighted."""
    return tags_from_text(query.text, context.document_frequency, context.documents or 1)


def run_strategy(
    searcher: Searcher, strategy: Strategy, query: Query, k: int = 10, context: Context | None = None
) -> list[str]:
    """The ids ``strategy`` ranks for ``query``, best first, at most ``k`` (its product left out).

    Raises:
        ConfigError: the strategy needs a projection or relations the context lacks.
    """
    context = context or Context()
    p = dict(strategy.params)
    size = k + 1 if query.product else k
    kind = strategy.kind
    if kind == "keyword":
        hits = searcher.keyword(query.text, size=size)
    elif kind in ("tags", "expand"):
        weights = _tag_words(query, context)
        if kind == "expand" and context.relations is None:
            raise ConfigError(f"strategy {strategy.name!r} expands tags: give the tag relations")
        hits = (
            searcher.tags(weights, size=size, relations=context.relations if kind == "expand" else None)
            if weights
            else []
        )
    elif kind == "image":
        hits = searcher.image(_vector_of(searcher, query), k=size)
    elif kind == "similar":
        hits = searcher.similar(query.product, k=size)
    elif kind == "text_image":
        if context.projection is None:
            raise ConfigError(f"strategy {strategy.name!r} needs the text->image projection")
        hits = searcher.image(context.projection.encode([query.text])[0], k=size)
    elif kind == "hybrid" and not p.get("expand", True):  # BM25 + the words that are tags, not expanded
        weights = _tag_words(query, context)
        vector = context.projection.encode([query.text])[0] if context.projection is not None else None
        hits = searcher.hybrid(
            query.text,
            weights or None,
            vector,
            size=size,
            fusion=str(p.get("fusion", "rrf")),
            weights=p.get("weights"),
            where=str(p.get("where", "auto")),
        )
    elif kind == "hybrid":
        hits = searcher.text(
            query.text,
            context.projection,
            context.relations,
            size=size,
            fusion=str(p.get("fusion", "rrf")),
            weights=p.get("weights"),
            where=str(p.get("where", "auto")),
        )
    else:  # template
        params = _fill(dict(p.get("params") or {}), query, size)
        if p.get("id"):
            resp = searcher.client.search_template(searcher.index, str(p["id"]), params)
        else:
            from vistag.documents.mustache import render

            source = Path(str(p["source"]))
            if not source.is_file():
                raise NotFoundError(f"strategy {strategy.name!r}: template file {source} does not exist")
            resp = searcher.client.search(searcher.index, json.loads(render(source.read_text(), params)))
        return [str(h["_id"]) for h in resp["hits"]["hits"] if str(h["_id"]) != query.product][:k]
    return [h.id for h in hits if h.id != query.product][:k]

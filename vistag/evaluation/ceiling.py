"""The ceiling the labels allow: how often the same photo, listed under several product ids, carries different labels.

A model that sees only the photo cannot tell two rows with the same image apart, so where
their labels disagree at least one of them is out of its reach. Grouping rows by the hash
of their image bytes (``sha256`` in the bundled catalog) gives the byte-identical twins;
for each task the share of twin *pairs* whose labels differ is a floor on the label noise,
and the rows whose labels agree with every twin are a cleaner set to score a model on.

Near twins (re-shot or re-encoded photos) are found by embedding: :func:`near_twin_groups`
joins rows whose vectors have a cosine of at least 0.99. Some of those are colour variants of
one design photographed alike, which is not label noise: look at a sample before reading the
rates as a ceiling.

Examples:
    >>> rows = [
    ...     {"id": "1", "sha256": "a", "baseColour": "Blue", "gender": "Men"},
    ...     {"id": "2", "sha256": "a", "baseColour": "Navy Blue", "gender": "Men"},
    ...     {"id": "3", "sha256": "b", "baseColour": "Red", "gender": "Women"},
    ... ]
    >>> groups = twin_groups(rows)
    >>> [[r["id"] for r in g] for g in groups]
    [['1', '2']]
    >>> table = label_disagreement(groups, ["gender", "baseColour"])
    >>> table["baseColour"].pairs, table["baseColour"].disagreeing, table["gender"].disagreeing
    (1, 1, 0)
    >>> sorted(conflicting_ids(groups, "baseColour"))
    ['1', '2']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

Row = Mapping[str, str]


@dataclass(frozen=True)
class Disagreement:
    """Twin pairs of one task whose two labels are both present, and how many of them differ."""

    task: str
    pairs: int
    disagreeing: int

    @property
    def rate(self) -> float:
        """Share of the pairs whose labels differ (0.0 with no pairs)."""
        return self.disagreeing / self.pairs if self.pairs else 0.0


def twin_groups(rows: Iterable[Row], key: str = "sha256", id_column: str = "id") -> list[list[Row]]:
    """Groups of two or more rows with the same image hash and different product ids, in catalog order.

    Args:
        rows: catalog rows (mappings of column to value).
        key: the column holding the hash of the image bytes.
        id_column: the product id column; rows repeating an id count once; rows without a hash
            are left out.
    """
    keyed = ((digest, row) for row in rows if (digest := (row.get(key) or "").strip()))
    return _groups(keyed, id_column)


def _groups(keyed: Iterable[tuple[Hashable, Row]], id_column: str) -> list[list[Row]]:
    """Rows grouped by key, one row per product id, groups of two or more ids, in first-seen order."""
    by_key: dict[Hashable, dict[str, Row]] = defaultdict(dict)
    for group_key, row in keyed:
        by_key[group_key].setdefault(str(row.get(id_column, "")), row)
    return [list(group.values()) for group in by_key.values() if len(group) > 1]


def _label(row: Row, task: str) -> str | None:
    value = (row.get(task) or "").strip()
    return value or None


def label_disagreement(groups: Sequence[Sequence[Row]], tasks: Sequence[str]) -> dict[str, Disagreement]:
    """Per task, the twin pairs (within each group) with both labels present, and how many differ.

    Args:
        groups: from :func:`twin_groups`.
        tasks: label columns, e.g. ``["gender", "articleType", "baseColour"]``.
    """
    out = {}
    for task in tasks:
        pairs = disagreeing = 0
        for group in groups:
            labels = [label for label in (_label(row, task) for row in group) if label is not None]
            for a, b in combinations(labels, 2):
                pairs += 1
                disagreeing += a != b
        out[task] = Disagreement(task, pairs, disagreeing)
    return out


def conflicting_ids(groups: Sequence[Sequence[Row]], task: str, id_column: str = "id") -> set[str]:
    """Ids of the rows whose ``task`` label differs from at least one twin's.

    Scoring a model without these rows scores it on the rows whose labels agree with their twins'.
    """
    out: set[str] = set()
    for group in groups:
        labelled = [(str(row.get(id_column, "")), _label(row, task)) for row in group]
        values = {label for _, label in labelled if label is not None}
        if len(values) > 1:
            out.update(row_id for row_id, label in labelled if label is not None)
    return out


def near_twin_groups(
    rows: Sequence[Row], vectors: np.ndarray, threshold: float = 0.99, k: int = 10, id_column: str = "id"
) -> list[list[Row]]:
    """Groups of rows (two or more ids) joined by pairs whose unit vectors have a cosine ``>= threshold``.

    Neighbours come from the exact scan, or from the HNSW graph (exact similarities) from
    :data:`~vistag.analyzers.ann.APPROXIMATE_FROM` rows up; groups are the connected pairs.

    Args:
        rows: catalog rows, row ``i`` with vector ``i``.
        vectors: (n, D) unit embeddings.
        threshold: the cosine from which two photos count as the same.
        k: neighbours looked at per row.
        id_column: the product id column.

    Examples:
        >>> v = np.array([[1, 0], [0.99995, 0.01], [0, 1]], dtype=np.float32)
        >>> v /= np.linalg.norm(v, axis=1, keepdims=True)
        >>> [[r["id"] for r in g] for g in near_twin_groups([{"id": "a"}, {"id": "b"}, {"id": "c"}], v)]
        [['a', 'b']]
    """
    from vistag.analyzers.ann import choose_method
    from vistag.analyzers.knn_tagger import top_k_rows

    n = len(rows)
    k = min(k, n - 1)
    if k < 1:
        return []
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    index = None
    if choose_method("auto", n) == "hnsw":
        from vistag.analyzers.ann import HnswNeighbours

        index = HnswNeighbours.build(vectors)
    for start in range(0, n, 4096):
        queries = np.ascontiguousarray(vectors[start : start + 4096], dtype=np.float32)
        exclude = np.arange(start, start + len(queries))
        found, sims = index.search(queries, k, exclude) if index else top_k_rows(queries, vectors, k, exclude)
        for i, j in zip(*np.nonzero(sims >= threshold)):
            a, b = root(start + int(i)), root(int(found[i, j]))
            if a != b:
                parent[a] = b
    return _groups(((root(i), row) for i, row in enumerate(rows)), id_column)

"""Label vocabularies and the category hierarchy of a training catalog (no torch).

Every label column becomes a :class:`Vocabulary`. Values seen fewer than
``min_count`` times are folded into one ``other`` class (so a head never has a
class it saw three times); empty and missing values encode as ``-1`` and are
*masked* in the loss, never treated as a negative. The hierarchy is the set of
root -> leaf paths observed in training, used to decode consistent predictions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from vistag.catalog.vocabulary import normalize_tag

#: Label given to values rarer than the vocabulary's ``min_count``.
OTHER = "other"
MISSING = -1


def clean_label(value: object) -> str | None:
    """A label value as a stripped string, or ``None`` when missing/empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text if normalize_tag(text) else None


@dataclass
class Vocabulary:
    """Classes of one label column.

    Attributes:
        column: the catalog column.
        classes: class names; the index is the head's output unit.
        counts: training examples of each class.
        folded: original values folded into :data:`OTHER`, with their counts.
    """

    column: str
    classes: list[str]
    counts: list[int]
    folded: dict[str, int] = field(default_factory=dict)

    @classmethod
    def fit(cls, column: str, values: Iterable[object], min_count: int = 1, fold_rare: bool = True) -> Vocabulary:
        """Build from training values.

        Args:
            column: the column (or ``tags``).
            values: training values; missing ones are skipped.
            min_count: values seen fewer times are rare.
            fold_rare: rare values become one ``other`` class; ``False`` drops them
                (tag vocabularies: a tag ``other`` would mean nothing).
        """
        counter = Counter(v for v in (clean_label(x) for x in values) if v is not None)
        kept = {v: n for v, n in counter.items() if n >= min_count}
        folded = {v: n for v, n in counter.items() if n < min_count}
        classes = sorted(kept)
        counts = [kept[c] for c in classes]
        if folded and fold_rare:
            if OTHER in kept:
                counts[classes.index(OTHER)] += sum(folded.values())
            else:
                classes.append(OTHER)
                counts.append(sum(folded.values()))
        return cls(column, classes, counts, dict(sorted(folded.items())))

    def __len__(self) -> int:
        return len(self.classes)

    def index(self) -> dict[str, int]:
        """Class name -> output unit."""
        return {c: i for i, c in enumerate(self.classes)}

    def encode(self, values: Iterable[object]) -> np.ndarray:
        """Class indexes; missing values give ``-1``, unseen or folded ones ``other`` (or ``-1`` without one)."""
        index = self.index()
        other = index.get(OTHER, MISSING)
        out = []
        for value in values:
            label = clean_label(value)
            out.append(MISSING if label is None else index.get(label, other))
        return np.asarray(out, dtype=np.int64)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"column": self.column, "classes": self.classes, "counts": self.counts, "folded": self.folded}

    @classmethod
    def from_dict(cls, data: Mapping) -> Vocabulary:
        """Inverse of :meth:`to_dict`."""
        return cls(data["column"], list(data["classes"]), list(data["counts"]), dict(data.get("folded", {})))


@dataclass
class Hierarchy:
    """The category levels (root -> leaf) and the paths observed in training.

    Attributes:
        levels: the level columns, root first.
        paths: ``(P, L)`` class indexes, one row per observed path.
    """

    levels: list[str]
    paths: np.ndarray

    @classmethod
    def fit(cls, vocabularies: Sequence[Vocabulary], codes: np.ndarray) -> Hierarchy:
        """Observed paths from ``codes`` ``(N, L)`` (rows with a missing level are ignored)."""
        complete = codes[(codes >= 0).all(axis=1)] if len(codes) else codes.reshape(0, len(vocabularies))
        paths = np.unique(complete, axis=0) if len(complete) else np.zeros((0, len(vocabularies)), np.int64)
        return cls([v.column for v in vocabularies], paths.astype(np.int64))

    def decode(self, log_probs: Sequence[np.ndarray], top_k: int = 5) -> tuple[np.ndarray, list[np.ndarray]]:
        """The best consistent paths for each row.

        A path's score is the sum of its levels' log-probabilities, so a leaf
        always comes with its own parents.

        Args:
            log_probs: one ``(N, C_level)`` array per level.
            top_k: how many paths to rank.

        Returns:
            ``(best_paths (N, top_k, L), per-level top_k class indexes)``: for level
            ``l``, classes ranked by the best path through them.
        """
        n = len(log_probs[0])
        if len(self.paths) == 0:
            raise ValueError("the hierarchy has no complete training path")
        scores = np.zeros((n, len(self.paths)), dtype=np.float64)
        for level, lp in enumerate(log_probs):
            scores += lp[:, self.paths[:, level]]
        k = min(top_k, len(self.paths))
        order = np.argsort(-scores, axis=1)[:, :k]
        best = self.paths[order]
        per_level = []
        for level, lp in enumerate(log_probs):
            node_best = np.full((n, lp.shape[1]), -np.inf)
            np.maximum.at(
                node_best, (np.arange(n)[:, None], np.broadcast_to(self.paths[:, level], scores.shape)), scores
            )
            per_level.append(np.argsort(-node_best, axis=1)[:, :top_k])
        return best, per_level

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {"levels": self.levels, "paths": self.paths.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping) -> Hierarchy:
        """Inverse of :meth:`to_dict`."""
        paths = np.asarray(data["paths"], dtype=np.int64)
        if not data["levels"]:
            paths = np.zeros((0, 0), dtype=np.int64)
        paths = paths.reshape(len(paths), len(data["levels"]))
        return cls(list(data["levels"]), paths)


def tag_targets(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], vocab: Vocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label targets and their mask for the tag head.

    A tag is *known* for a row when at least one column it can come from has a
    value in that row; the mask is 0 for unknown tags so a missing label is
    never read as "not this tag".

    Returns:
        ``(targets (N, T) float32 0/1, mask (N, T) float32 0/1)``.
    """
    index = vocab.index()
    sources: dict[int, set[str]] = {}  # tag unit -> the columns it was seen in
    for row in rows:
        for column in columns:
            tag = normalize_tag(row.get(column))
            if tag in index:
                sources.setdefault(index[tag], set()).add(column)
    targets = np.zeros((len(rows), len(vocab)), dtype=np.float32)
    mask = np.zeros_like(targets)
    col_units = {c: [t for t, cols in sources.items() if c in cols] for c in columns}
    for i, row in enumerate(rows):
        for column in columns:
            tag = normalize_tag(row.get(column))
            if tag is None:
                continue
            mask[i, col_units[column]] = 1.0
            if tag in index:
                targets[i, index[tag]] = 1.0
    return targets, mask

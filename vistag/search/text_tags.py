"""Text -> tags: the words of a text query that are catalog tags, weighted by rarity.

A query such as ``"blue denim jeans for men"`` becomes ``{"jeans": 2.3, "blue": 1.4,
"men": 0.6}``: each word and word pair is slugged like a label (``Navy Blue`` ->
``navy-blue``), singular, plural and unhyphenated forms are tried (``T-shirt`` ->
``tshirts``), and each tag found weighs its
inverse document frequency ``log(N / df)`` (normalised so the rarest weighs 1), so
the product type outweighs ``men``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping

from vistag.catalog.vocabulary import normalize_tag


def _forms(slug: str) -> list[str]:
    """The slug, its plural/singular forms, and the same without hyphens (``t-shirt`` -> ``tshirts``)."""
    out = []
    for base in dict.fromkeys((slug, slug.replace("-", ""))):
        out += [base, f"{base}s", f"{base}es"]
        if base.endswith("es"):
            out.append(base[:-2])
        if base.endswith("s"):
            out.append(base[:-1])
    return list(dict.fromkeys(out))


def tags_from_text(text: str, document_frequency: Mapping[str, int], total: int) -> dict[str, float]:
    """Catalog tags found in ``text`` with IDF weights in (0, 1].

    Args:
        text: the query.
        document_frequency: products carrying each tag (e.g. ``TagRelations.counts``).
        total: products in the catalog.
    """
    words = text.split()
    grams = [f"{a} {b}" for a, b in itertools.pairwise(words)] + words  # pairs first: "navy blue" before "blue"
    found: dict[str, float] = {}
    covered: set[str] = set()
    for gram in grams:
        if gram in covered:
            continue
        slug = normalize_tag(gram)
        if not slug:
            continue
        for cand in _forms(slug):
            if document_frequency.get(cand, 0) > 0:
                found[cand] = math.log((total + 1) / document_frequency[cand])
                covered.update(gram.split())
                break
    if not found:
        return {}
    top = max(found.values()) or 1.0
    return {t: round(max(w / top, 0.05), 4) for t, w in sorted(found.items(), key=lambda p: -p[1])}

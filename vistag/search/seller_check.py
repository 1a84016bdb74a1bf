"""Seller tag check (the keyword-spam motive of Sahay et al.): which of a seller's tags does the photo support?

The image's ``k`` nearest catalog products vote with their own catalog labels
(category levels and attributes; predicted tags for unlabelled products). They come
from the ``image`` search template, so a storefront can run the same check with the
stored template. For each seller tag, *support* is the share of neighbours that
carry it:

* ``supported``: support >= ``support_min`` (0.3);
* ``contradicted``: support == 0 although the tag exists in the catalog, so
  products that look like this never carry it (the typical spam tag);
* ``weak``: in between;
* ``unknown``: the catalog never uses the tag -- nothing to judge it by;
* ``suggested``: neighbour tags with support >= ``suggest_min`` (0.6) the seller left out.

References:
    A. Sahay, A. Bagree, K. Susanto, N. Padiyara, U. Chaturvedi, "Image Tagging for Search and Recommendation".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from vistag.catalog.vocabulary import normalize_tag
from vistag.search.queries import Searcher


@dataclass
class TagCheck:
    """The verdict on a seller's tags."""

    supported: list[dict] = field(default_factory=list)
    weak: list[dict] = field(default_factory=list)
    contradicted: list[dict] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    suggested: list[dict] = field(default_factory=list)
    neighbours: int = 0

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return asdict(self)


def check_seller_tags(
    searcher: Searcher,
    vector: Sequence[float],
    seller_tags: Sequence[str],
    k: int = 20,
    support_min: float = 0.3,
    suggest_min: float = 0.6,
) -> TagCheck:
    """Judge ``seller_tags`` (free text is slugged like catalog labels) against the image's neighbours."""
    hits = searcher.image(vector, k=k)
    total: dict[str, float] = {}
    for hit in hits:
        for tag, weight in neighbour_labels(hit.source).items():
            total[tag] = total.get(tag, 0.0) + weight
    support = {t: w / max(len(hits), 1) for t, w in total.items()}
    tags = list(dict.fromkeys(t for t in (normalize_tag(x) for x in seller_tags) if t))
    known = _known_tags(searcher, tags)
    out = TagCheck(neighbours=len(hits))
    for tag in tags:
        s = round(support.get(tag, 0.0), 3)
        if tag not in known:
            out.unknown.append(tag)
        elif s >= support_min:
            out.supported.append({"tag": tag, "support": s})
        elif s == 0:
            out.contradicted.append({"tag": tag, "support": s})
        else:
            out.weak.append({"tag": tag, "support": s})
    out.suggested = [
        {"tag": t, "support": round(s, 3)}
        for t, s in sorted(support.items(), key=lambda p: -p[1])
        if s >= suggest_min and t not in tags
    ]
    return out


def neighbour_labels(source: dict) -> dict[str, float]:
    """What a neighbour says about itself: its catalog labels (category levels and
    attributes, slugged like tags) with weight 1; a product without labels falls back
    to its own predicted ``tags`` weighted by their presence scores, unless a
    title-aware model wrote them (``model.tagger`` ends in ``+title``): the check judges
    the photo, so tags read from a title never vote.
    """
    labels = [v for k, v in source.get("category", {}).items() if k.startswith("lvl")]
    labels += list(source.get("attributes", {}).values())
    slugs = {t: 1.0 for t in (normalize_tag(v) for v in labels) if t}
    if slugs:
        return slugs
    if str(source.get("model", {}).get("tagger", "")).endswith("+title"):
        return {}
    own = set(source.get("tags", []))
    return {t: float(w) for t, w in source.get("tag_weights", {}).items() if t in own}


def _known_tags(searcher: Searcher, tags: Sequence[str]) -> set[str]:
    if not tags:
        return set()
    body = {"size": 0, "aggs": {"known": {"filters": {"filters": {t: {"term": {"tags": t}} for t in tags}}}}}
    buckets = searcher.client.search(searcher.index, body)["aggregations"]["known"]["buckets"]
    return {t for t, b in buckets.items() if b["doc_count"] > 0}

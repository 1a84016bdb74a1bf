"""Tag vocabulary: how label values become tags.

A tag is the *slug* of a label value: lower-case ASCII, words joined by ``-``
(``"Navy Blue"`` -> ``navy-blue``, ``"T-Shirts"`` -> ``t-shirts``). Tags carry no
column prefix, so a storefront asks for ``tshirts`` or ``casual`` directly; when two
columns give the same slug (``subCategory=Watches`` and ``articleType=Watches``)
they are the same tag. The columns a catalog's tags come from are set in its
schema (``tags``); empty and missing values give no tag (they are masked, not
negatives).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
MISSING = {"", "na", "n/a", "nan", "none", "null", "-"}


def normalize_tag(value: object) -> str | None:
    """Slug of a label value, or ``None`` for an empty/missing one."""
    if value is None:
        return None
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode().strip().lower()
    if text in MISSING:
        return None
    slug = _NON_ALNUM.sub("-", text).strip("-")
    return slug or None


def tags_from_labels(labels: Mapping[str, object], columns: Iterable[str]) -> list[str]:
    """Tags of one row from its label ``columns``, in column order, without duplicates."""
    seen: dict[str, None] = {}
    for column in columns:
        tag = normalize_tag(labels.get(column))
        if tag:
            seen.setdefault(tag, None)
    return list(seen)

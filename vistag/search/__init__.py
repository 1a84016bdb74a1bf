"""Reading a vistag index: keyword, tag, image, similar, text and hybrid queries, rendered from the same templates a
storefront stores, identical on both engines.

* :mod:`~vistag.search.queries` -- :class:`~vistag.search.queries.Searcher` and :class:`~vistag.search.queries.Hit`;
* :mod:`~vistag.search.fusion` -- client-side fusion (RRF, min-max weighted sums);
* :mod:`~vistag.search.text_tags` -- the words of a text query that are catalog tags;
* :mod:`~vistag.search.seller_check` -- which of a seller's tags the photo supports;
* :mod:`~vistag.search.reference_tagger` -- kNN tags from neighbours the engine finds.
"""

from vistag.search.queries import Hit, Searcher

__all__ = ["Hit", "Searcher"]

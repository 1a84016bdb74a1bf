"""What tags a product: the inverse-distance-weighted kNN tagger over a labelled reference set, trained heads, and
learned tag relations (numpy; models only through their outputs).

* :mod:`~vistag.analyzers.knn_tagger` -- IDW kNN scores over a reference set scanned in chunks;
* :mod:`~vistag.analyzers.reference` -- embed a labelled catalog into a reference set;
* :mod:`~vistag.analyzers.taggers` -- the taggers the indexer and the service call (kNN, heads, both);
* :mod:`~vistag.analyzers.tagger` -- :class:`Tagger`, tags for images with no engine;
* :mod:`~vistag.analyzers.relations` -- tag co-occurrence and name similarity, for expansion.

Examples:
    >>> from vistag.analyzers import KnnTagger, ReferenceSet
    >>> import numpy as np
    >>> ref = ReferenceSet(["a", "b"], np.eye(2, dtype=np.float32), [["shirts"], ["shoes"]])
    >>> KnnTagger(ref, k=1).tag(np.array([[1.0, 0.0]], dtype=np.float32))
    [[('shirts', 1.0)]]
"""

from vistag.analyzers.knn_tagger import MIN_TAG_SCORE, KnnTagger, ReferenceSet
from vistag.analyzers.relations import TagRelations
from vistag.analyzers.tagger import Tagger

__all__ = ["MIN_TAG_SCORE", "KnnTagger", "ReferenceSet", "TagRelations", "Tagger"]

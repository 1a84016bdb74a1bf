"""Tags from catalog labels and the inverse-distance-weighted kNN tagger (no torch)."""

from vistag.analyzers.knn_tagger import KnnTagger, ReferenceSet
from vistag.catalog.vocabulary import normalize_tag, tags_from_labels

__all__ = ["KnnTagger", "ReferenceSet", "normalize_tag", "tags_from_labels"]

"""vistag: visual tagging and search-engine indexing for e-commerce catalogs.

Importing this package is cheap: it does not import torch, open a connection or
touch the disk. Heavy parts live in sub-packages and load on use:

* :mod:`vistag.engine` -- local Elasticsearch/OpenSearch nodes and the HTTP client.
* :mod:`vistag.mappings` -- index templates and stored search templates.
* :mod:`vistag.models` -- CNN backbones and batched image embedding (torch).
* :mod:`vistag.analyzers` -- tags from labels and the kNN tagger.
* :mod:`vistag.indexer` -- catalog reading, image loading and bulk indexing.
* :mod:`vistag.search` -- keyword, tag and image queries.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]

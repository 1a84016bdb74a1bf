"""Retrieval strategies: each module keeps the fields it searches, its query and its template together.

Every strategy exposes:

* ``NAME`` -- suffix of its stored search template id (``<index>-<NAME>``);
* ``properties(adapter, spec)`` -- the mapping of the fields it owns;
* ``template(adapter, spec)`` -- the mustache source of its search request;
* ``params(...)`` -- the template parameters for a request, built from Python values.
"""

from vistag.documents.strategies import image, keyword, similar, tags

STRATEGIES = (keyword, tags, image, similar)

__all__ = ["STRATEGIES", "image", "keyword", "similar", "tags"]

"""The HTTP side of vistag on FastAPI: the inference API a storefront backend and an engine call, and the demo
storefront page.

* :mod:`~vistag.service.app` -- ``vistag service``: ``/v1/embed``, ``/v1/tag``, ``/v1/analyze``,
  health and metrics, with micro-batching (:mod:`~vistag.service.batcher`) and safe
  inputs (:mod:`~vistag.service.inputs`, :mod:`~vistag.service.fetch`);
* :mod:`~vistag.service.model` -- what the service runs (an embedder and a tagger);
* :mod:`~vistag.service.storefront` -- ``vistag serve``: the demo page and its JSON API;
* :mod:`~vistag.service.remote` -- the page's image queries through a running service.
"""

"""Engine-side pipelines that call ``vistag service`` (OpenSearch with ml-commons).

:func:`install_inference` wires an index to a running service:

1. cluster settings: the service URL becomes a trusted connector endpoint, and a
   service on a loopback or private address is allowed
   (``plugins.ml_commons.connector.private_ip_enabled``);
2. an ml-commons remote connector (``POST <service>/v1/analyze`` with the document's
   ``image``) and a remote model, deployed; the first predictions after a node start
   fail for a few seconds ("Fetching master key timed out"), so it waits until one
   answers;
3. an ingest pipeline ``vistag-ingest-<index>`` with the ``ml_inference`` processor,
   set as the index's ``default_pipeline``: a raw row written with a plain ``_bulk``
   (``id``, ``title``, ``image`` as a URL or base64) is stored with ``image_vector``,
   ``tags``, ``tag_weights``, ``model`` and the ``image`` object, as ``vistag index``
   writes them;
4. a search pipeline ``vistag-image-<index>`` with the ``ml_inference`` request
   processor: ``POST <index>/_search?search_pipeline=vistag-image-<index>`` with a kNN
   query holding a placeholder vector and ``{"ext": {"ml_inference": {"image": ...}}}``
   gets the vector written in by the engine (filters kept).

The processor calls the service once per document (about 30 at a time within one
bulk), so the service must answer single images fast.

Examples:
    >>> install_inference(OpenSearch("http://127.0.0.1:9200"), "products", "http://127.0.0.1:8000")  # doctest: +SKIP
    InferenceSetup(connector_id='...', model_id='...', ingest_pipeline='vistag-ingest-products', ...)
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from vistag.engine.client import Client, EngineClient, as_engine
from vistag.errors import ConfigError, EngineError

logger = logging.getLogger(__name__)

#: A 1x1 PNG: the probe prediction that tells the model is usable.
_PROBE = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"
#: The placeholder a storefront puts in the kNN query; the search pipeline overwrites it.
PLACEHOLDER_VECTOR = [0.0]


@dataclass(frozen=True)
class InferenceSetup:
    """What :func:`install_inference` created."""

    connector_id: str
    model_id: str
    ingest_pipeline: str
    search_pipeline: str
    service_url: str

    def to_dict(self) -> dict:
        """As JSON-ready dict."""
        return asdict(self)


def ingest_pipeline_body(model_id: str, with_predictions: bool = False) -> dict:
    """The ingest pipeline: one ``ml_inference`` call per document that has an ``image`` string."""
    outputs = {
        "image_vector": "embedding",
        "tags": "tags",
        "tag_weights": "tag_weights",
        "model": "model",
        "image": "image",
    }
    if with_predictions:  # a trained model: its predicted fields, and the predicted path as the category
        outputs.update(predicted="predicted", category="category_fields")
    return {
        "description": "vistag: embed and tag the product image through vistag service",
        "processors": [
            {
                "ml_inference": {
                    "model_id": model_id,
                    "if": "ctx.image instanceof String",  # rows already tagged by vistag index carry an image object
                    "input_map": [{"image": "image"}],
                    "output_map": [outputs],
                    "override": True,
                }
            }
        ],
    }


def search_pipeline_body(model_id: str) -> dict:
    """The search pipeline: the request's ``ext.ml_inference.image`` becomes the kNN query vector."""
    return {
        "description": "vistag: query by image; the engine embeds the image through vistag service",
        "request_processors": [
            {
                "ml_inference": {
                    "model_id": model_id,
                    "input_map": [{"image": "ext.ml_inference.image"}],
                    "output_map": [{"query.knn.image_vector.vector": "embedding"}],
                }
            }
        ],
    }


def image_query(image: str, k: int = 10, filters: list[dict] | None = None) -> dict:
    """The request body a storefront sends with the search pipeline (``image``: URL or base64)."""
    knn: dict[str, Any] = {"vector": PLACEHOLDER_VECTOR, "k": k}
    if filters:
        knn["filter"] = {"bool": {"filter": filters}}
    return {
        "size": k,
        "_source": {"excludes": ["image_vector"]},
        "query": {"knn": {"image_vector": knn}},
        "ext": {"ml_inference": {"image": image}},
    }


def _is_private(host: str) -> bool:
    try:
        addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    return any(not ipaddress.ip_address(a.split("%", 1)[0]).is_global for a in addresses)


def install_inference(
    client: Client, index: str, service_url: str, token: str | None = None, wait: float = 120.0
) -> InferenceSetup:
    """Register ``service_url`` as a remote model and install the ingest and search pipelines of ``index``.

    Args:
        client: an ``OpenSearch`` client (or an :class:`EngineClient`) of a cluster with ml-commons.
        index: the (existing) index to wire.
        service_url: where the engine reaches ``vistag service``, e.g. ``http://10.0.0.5:8000``.
        token: the service's bearer token (stored as the connector's credential).
        wait: seconds to wait for the model to answer.

    Raises:
        ConfigError: the cluster has no ml-commons (Elasticsearch here: use the two-step
            flow), the index does not exist, or the model never answered.
    """
    engine: EngineClient = as_engine(client)
    info = engine.info()
    if info.engine != "opensearch" or not info.has("opensearch-ml"):
        raise ConfigError(
            f"{engine.label} has no ml-commons plugin: engine-side pipelines need OpenSearch with it "
            "(locally `vistag engine start --with ml`); otherwise call /v1/embed, then the image query"
        )
    if not engine.index_exists(index):
        raise ConfigError(
            f"index {index!r} does not exist: create it first (`vistag mappings install` or `vistag index`)"
        )
    base = service_url.rstrip("/")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--service must be an http(s) URL, not {service_url!r}")
    settings: dict[str, Any] = {"plugins.ml_commons.trusted_connector_endpoints_regex": [f"^{re.escape(base)}/.*$"]}
    if _is_private(parts.hostname):
        settings["plugins.ml_commons.connector.private_ip_enabled"] = True
    engine.perform("PUT", "/_cluster/settings", {"persistent": settings})

    connector = engine.perform(
        "POST",
        "/_plugins/_ml/connectors/_create",
        {
            "name": f"vistag-{index}",
            "description": f"vistag service at {base}",
            "version": 1,
            "protocol": "http",
            "parameters": {},
            "credential": {"token": token or "unused"},  # 2.19 refuses an empty credential
            "actions": [
                {
                    "action_type": "predict",
                    "method": "POST",
                    "url": f"{base}/v1/analyze",
                    "headers": {"content-type": "application/json", "Authorization": "Bearer ${credential.token}"},
                    "request_body": '{ "image": "${parameters.image}" }',
                }
            ],
        },
    )["connector_id"]
    registered = engine.perform(
        "POST",
        "/_plugins/_ml/models/_register",
        {
            "name": f"vistag-{index}",
            "function_name": "remote",
            "connector_id": connector,
            "description": f"vistag service at {base}",
        },
        params={"deploy": "true"},
    )
    model_id = registered.get("model_id") or _wait_task(engine, registered["task_id"], wait)
    analyzed = _wait_predict(engine, model_id, wait)
    with_predictions = str(analyzed.get("model", {}).get("tagger", "")).startswith(("heads", "ensemble"))

    ingest = f"vistag-ingest-{index}"
    engine.perform("PUT", f"/_ingest/pipeline/{ingest}", ingest_pipeline_body(model_id, with_predictions))
    engine.perform("PUT", f"/{index}/_settings", {"index": {"default_pipeline": ingest}})
    search = f"vistag-image-{index}"
    engine.put_search_pipeline(search, search_pipeline_body(model_id))
    logger.info(
        "%s: model %s calls %s; ingest pipeline %s is %s's default; search pipeline %s",
        engine.label,
        model_id,
        base,
        ingest,
        index,
        search,
    )
    return InferenceSetup(connector, model_id, ingest, search, base)


def _wait_task(engine: EngineClient, task_id: str, wait: float) -> str:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        task = engine.perform("GET", f"/_plugins/_ml/tasks/{task_id}")
        if task.get("model_id") and task.get("state") in ("COMPLETED", "CREATED", "RUNNING"):
            return task["model_id"]
        if task.get("state") == "FAILED":
            raise ConfigError(f"registering the remote model failed: {task.get('error')}")
        time.sleep(0.5)
    raise ConfigError(f"the remote model was not registered within {wait:.0f}s")


def _wait_predict(engine: EngineClient, model_id: str, wait: float) -> dict:
    """Predict until the model answers (after a node start ml-commons needs a few seconds)."""
    deadline = time.monotonic() + wait
    last = ""
    while time.monotonic() < deadline:
        try:
            resp = engine.perform(
                "POST", f"/_plugins/_ml/models/{model_id}/_predict", {"parameters": {"image": _PROBE}}
            )
            return resp["inference_results"][0]["output"][0]["dataAsMap"]
        except EngineError as exc:
            last = str(exc)
            if exc.status in (400, 401, 403) and "master key" not in last:
                raise ConfigError(f"the engine cannot call the service: {last}") from None
        except (KeyError, IndexError):
            last = "an answer without dataAsMap"
        time.sleep(1.0)
    raise ConfigError(f"the remote model did not answer within {wait:.0f}s: {last}")

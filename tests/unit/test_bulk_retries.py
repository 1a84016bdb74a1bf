"""The bulk layer's retry and give-up paths, with an official client whose ``bulk`` fails on purpose
(as elasticsearch-py's own tests do with a failing bulk client). No engine is contacted."""

from __future__ import annotations

import json
import threading

import numpy as np
import orjson
import pytest
from opensearchpy import OpenSearch, TransportError
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from vistag.engine.client import EngineClient
from vistag.errors import BulkIndexError, EngineUnavailable
from vistag.indexer.bulk import bulk, expand_action, parallel_bulk, streaming_bulk


class ScriptedBulkClient(OpenSearch):
    """An ``OpenSearch`` client whose ``bulk`` follows a script, one step per call.

    A step is ``"ok"``, an item status for every item (``429``), a mapping
    ``{position in the request: status}`` (others ok), or an exception to raise.
    """

    def __init__(self, script):
        super().__init__(hosts=["http://127.0.0.1:9"])  # never contacted
        self.script = list(script)
        self.calls: list[list[dict]] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def bulk(self, body, params=None, **kwargs):
        lines = [json.loads(line) for line in body.decode().splitlines() if line]
        actions = [line for line in lines if set(line) & {"index", "create", "update", "delete"}]
        with self._lock:
            self.calls.append(actions)
            self.threads.add(threading.current_thread().name)
            step = self.script.pop(0) if self.script else "ok"
        if isinstance(step, Exception):
            raise step
        items = []
        for i, action in enumerate(actions):
            op, meta = next(iter(action.items()))
            status = step if isinstance(step, int) else (step.get(i, 201) if isinstance(step, dict) else 201)
            item = {"_id": meta.get("_id"), "status": status}
            if status >= 300:
                item["error"] = {
                    "type": "es_rejected_execution_exception" if status == 429 else "mapper_parsing_exception",
                    "reason": "scripted",
                }
            items.append({op: item})
        return {"errors": any(i[next(iter(i))]["status"] >= 300 for i in items), "items": items}


def _docs(n):
    return [{"_id": str(i), "title": f"t{i}"} for i in range(n)]


def _engine(script):
    raw = ScriptedBulkClient(script)
    return EngineClient(raw), raw


def test_only_rejected_items_are_resent_and_counted():
    engine, raw = _engine([{1: 429, 3: 429}])
    pauses = []
    result = bulk(engine, _docs(5), "products", sleep=pauses.append, initial_backoff=0.1)
    assert (result.indexed, result.rejected, result.retries) == (5, 0, 2)
    assert [a["index"]["_id"] for a in raw.calls[1]] == ["1", "3"]  # the resend holds the two rejected items only
    assert len(pauses) == 1 and 0.05 <= pauses[0] <= 0.1


def test_backoff_is_exponential_and_capped():
    engine, _ = _engine([429, 429, 429, 429, 429])
    pauses = []
    result = bulk(engine, _docs(2), "products", sleep=pauses.append, initial_backoff=1.0, max_backoff=3.0)
    assert result.indexed == 2 and result.retries == 10
    assert all(0.5 * min(3.0, 2**i) <= p <= min(3.0, 2**i) for i, p in enumerate(pauses))
    assert max(pauses) <= 3.0


def test_give_up_yields_the_item_with_its_doc():
    engine, _ = _engine([429, 429, 429])
    out = list(streaming_bulk(engine, _docs(1), "products", max_retries=2, sleep=lambda s: None))
    assert out == [
        (
            False,
            {
                "_id": "0",
                "status": 429,
                "error": "es_rejected_execution_exception: scripted",
                "doc": {"_id": "0", "title": "t0"},
            },
        )
    ]


def test_permanent_errors_are_not_retried_and_raise_on_request():
    engine, raw = _engine([{0: 400}])
    with pytest.raises(BulkIndexError, match="1 actions were refused") as exc:
        bulk(engine, _docs(3), "products", raise_on_error=True, sleep=lambda s: None)
    assert len(raw.calls) == 1
    assert exc.value.errors[0]["doc"] == {"_id": "0", "title": "t0"}


def test_lost_connection_retries_the_whole_request_then_gives_up_with_the_docs():
    lost = OSConnectionError("N/A", "connection refused", None)
    engine, raw = _engine([lost, "ok"])
    assert bulk(engine, _docs(3), "products", sleep=lambda s: None).indexed == 3
    assert len(raw.calls) == 2 and len(raw.calls[1]) == 3
    engine, _ = _engine([lost] * 4)
    with pytest.raises(EngineUnavailable, match="giving up after 3 tries") as exc:
        list(streaming_bulk(engine, _docs(3), "products", max_retries=2, sleep=lambda s: None))
    assert [d["_id"] for d in exc.value.body] == ["0", "1", "2"]


def test_whole_request_429_is_retried():
    engine, raw = _engine([TransportError(429, "too_many_requests", {"error": {"type": "x", "reason": "busy"}}), "ok"])
    assert bulk(engine, _docs(2), "products", sleep=lambda s: None).indexed == 2
    assert len(raw.calls) == 2


def test_parallel_bulk_sends_every_chunk_through_the_users_client_and_reports_lost_docs():
    engine, raw = _engine([])
    results = list(parallel_bulk(engine, _docs(40), "products", threads=3, chunk_size=5, sleep=lambda s: None))
    assert sum(ok for ok, _ in results) == 40 and len(raw.calls) == 8
    assert all(name.startswith("vistag-bulk") for name in raw.threads)  # the same object, from the sender threads
    lost = OSConnectionError("N/A", "gone", None)
    engine, _ = _engine([lost] * 50)
    with pytest.raises(EngineUnavailable) as exc:
        list(parallel_bulk(engine, _docs(10), "products", threads=2, chunk_size=5, max_retries=1, sleep=lambda s: None))
    assert sorted(d["_id"] for d in exc.value.body) == [str(i) for i in range(10)]


def test_op_types_routing_and_deletes_of_missing_docs():
    engine, raw = _engine([{1: 404}])
    docs = [
        {"_id": "a", "_op_type": "create", "_routing": "r1", "x": 1},
        {"_id": "b", "_op_type": "delete"},
        {"_id": "c", "_op_type": "update", "x": 2},
    ]
    result = bulk(engine, docs, "products", sleep=lambda s: None)
    assert result.indexed == 3  # a delete of a missing document is done, not an error
    assert raw.calls[0] == [
        {"create": {"_index": "products", "_id": "a", "routing": "r1"}},
        {"delete": {"_index": "products", "_id": "b"}},
        {"update": {"_index": "products", "_id": "c"}},
    ]
    assert expand_action(docs[2], "products")[1] == b'{"doc":{"x":2}}\n'
    assert expand_action(docs[1], "products")[1] is None
    with pytest.raises(ValueError, match="unknown _op_type"):
        expand_action({"_id": "1", "_op_type": "upsert"}, "products")


def test_float32_vectors_are_written_exactly_and_shorter_than_doubles():
    vector = np.random.default_rng(0).standard_normal(1840).astype(np.float32)
    _, source = expand_action({"_id": "1", "image_vector": vector}, "products")
    back = np.asarray(orjson.loads(source)["image_vector"], dtype=np.float32)
    assert np.array_equal(back, vector)
    as_doubles = json.dumps({"image_vector": vector.tolist()}, separators=(",", ":")).encode()
    assert len(source) < 0.7 * len(as_doubles)


def _failing_source(n, error):
    yield from _docs(n)
    raise error


@pytest.mark.parametrize("threads", [1, 3])
def test_a_failing_source_still_sends_and_reports_what_it_built(threads):
    """A search behind the documents gives up after 7 documents: with chunks of 3, the
    two full chunks and the partial one are sent and reported before the error goes on."""
    engine, raw = _engine([])
    results = []
    with pytest.raises(EngineUnavailable, match="msearch"):
        for result in parallel_bulk(
            engine,
            _failing_source(7, EngineUnavailable("POST _msearch -> HTTP 429", 429)),
            "p",
            threads=threads,
            chunk_size=3,
        ):
            results.append(result)
    assert [item["_id"] for ok, item in results if ok] == [str(i) for i in range(7)]
    assert [len(c) for c in raw.calls] == [3, 3, 1]


def test_a_full_chunk_leaves_before_the_next_document_is_asked_for():
    from vistag.indexer.bulk import chunk_actions

    asked = []

    def docs():
        for doc in _docs(6):
            asked.append(doc["_id"])
            yield doc

    chunks = chunk_actions(docs(), "p", max_count=3)
    first = next(chunks)
    assert len(first) == 3 and asked == ["0", "1", "2"]  # not "3": the 4th doc may be slow to come (a kNN scan)

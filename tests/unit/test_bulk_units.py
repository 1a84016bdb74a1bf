import json

from vistag.indexer.bulk import chunk_actions, expand_action


def test_expand_action_strips_private_keys():
    action, source = expand_action({"_id": 7, "_line": 3, "title": "é"}, "products")
    assert json.loads(action) == {"index": {"_index": "products", "_id": "7"}}
    assert json.loads(source) == {"title": "é"}
    assert action.endswith(b"\n") and source.endswith(b"\n")


def test_chunks_bounded_by_count_and_bytes():
    docs = [{"_id": i, "text": "x" * 100} for i in range(25)]
    by_count = list(chunk_actions(docs, "i", max_count=10, max_bytes=1 << 20))
    assert [len(c) for c in by_count] == [10, 10, 5]
    by_bytes = list(chunk_actions(docs, "i", max_count=100, max_bytes=600))
    assert all(sum(len(a) + len(s) for a, s, _ in c) <= 600 for c in by_bytes)
    assert sum(len(c) for c in by_bytes) == 25
    huge = list(chunk_actions([{"_id": 1, "t": "y" * 5000}], "i", max_bytes=100))
    assert len(huge) == 1  # a single oversized document is sent alone

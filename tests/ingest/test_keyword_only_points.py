"""A keyword-only chunk (over the embedding budget) in both index engines: stored with a
BM25 vector and no dense one, found by keyword and hybrid search, never by dense search,
and skipped when dense vectors are read back (MMR)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from copilot.index.base import IndexStore
from copilot.index.server_store import ServerVectorStore
from copilot.index.store import EdgeVectorStore

DIM = 4


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path) -> Iterator[IndexStore]:
    if request.param == "edge":
        made: IndexStore = EdgeVectorStore(tmp_path / "shard", DIM)
    else:
        made = ServerVectorStore(QdrantClient(":memory:"), "keyword_only", DIM)
    yield made
    made.close()


def node(text: str, embedding: list[float] | None, **meta: object) -> TextNode:
    metadata = {"owner": "ann", "item_id": "ledger", **meta}
    return TextNode(id_=str(uuid.uuid4()), text=text, metadata=metadata, embedding=embedding)


def test_a_keyword_only_chunk_is_found_by_keyword_never_by_vector(store):
    dense = node("supplier ledger summary", [1.0, 0.0, 0.0, 0.0])
    keyword = node("row of supplier codeword287", None, keyword_only=True)
    store.add([dense, keyword])
    assert store.count("ann") == 2
    query = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)

    def texts(**kw: object) -> list[str]:
        return [h.payload["text"] for h in store.search("ann", **kw)]  # type: ignore[arg-type]

    assert texts(text="codeword287", dense=None, mode="bm25") == ["row of supplier codeword287"]
    assert texts(text="codeword287", dense=query, mode="dense") == ["supplier ledger summary"]
    assert "row of supplier codeword287" in texts(text="codeword287", dense=query)
    assert list(store.vectors("ann", [dense.node_id, keyword.node_id])) == [dense.node_id]


def test_a_chunk_without_a_vector_must_say_it_is_keyword_only(store):
    with pytest.raises(ValueError, match="has no embedding"):
        store.add([node("forgot to embed this", None)])

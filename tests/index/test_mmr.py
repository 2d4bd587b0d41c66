"""MMR picks relevant results that are not near-copies of each other, on both stores."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from qdrant_client import QdrantClient

from copilot.index.mmr import diverse_search, mmr
from copilot.index.server_store import ServerVectorStore
from copilot.index.store import EdgeVectorStore

DIM = 8
RNG = np.random.default_rng(3)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def near(v, scale=0.02) -> np.ndarray:
    return unit(v + RNG.normal(scale=scale, size=DIM))


def corpus():
    """A query; five near-duplicates, the most relevant; two other relevant clusters.

    Built from orthogonal directions so the geometry is known: the duplicates sit at cosine
    ~0.86 to the query, the others at ~0.74, and the clusters ~0.6 from one another.
    """
    q, r_dup, r_a, r_b = np.linalg.qr(RNG.normal(size=(DIM, 4)))[0].T
    dup, other_a, other_b = unit(q + 0.6 * r_dup), unit(q + 0.9 * r_a), unit(q + 0.9 * r_b)
    rows = [(f"dup{i}", near(dup)) for i in range(5)]
    rows += [(f"a{i}", near(other_a)) for i in range(2)] + [
        (f"b{i}", near(other_b)) for i in range(2)
    ]
    return q, rows


def mean_pairwise_similarity(vectors) -> float:
    m = np.asarray(vectors)
    sims = m @ m.T
    n = len(m)
    return float((sims.sum() - n) / (n * (n - 1)))


def test_mmr_trades_near_duplicates_for_diversity():
    query, rows = corpus()
    candidates = [(name, vec, float(vec @ query)) for name, vec in rows]
    top3 = [name for name, _, _ in sorted(candidates, key=lambda c: -c[2])[:3]]
    assert all(name.startswith("dup") for name in top3)  # the problem MMR solves

    picked = mmr(query, candidates, k=3, lambda_=0.5)

    assert picked[0].startswith("dup")  # the most relevant still comes first
    assert {name[0] for name in picked} == {"d", "a", "b"}  # one per cluster
    vec = dict(rows)
    assert mean_pairwise_similarity([vec[n] for n in picked]) < mean_pairwise_similarity(
        [vec[n] for n in top3]
    )
    assert mmr(query, candidates, k=3, lambda_=1.0) == top3  # lambda 1 is plain relevance


def test_mmr_edges():
    query, rows = corpus()
    candidates = [(name, vec, 1.0) for name, vec in rows]
    assert mmr(query, candidates, k=0) == []
    assert mmr(query, [], k=3) == []
    assert sorted(mmr(query, candidates, k=50)) == sorted(name for name, _ in rows)
    assert len(mmr(None, candidates, k=3)) == 3  # no query vector: equal scores, still runs
    with pytest.raises(ValueError, match="lambda_"):
        mmr(query, candidates, k=3, lambda_=1.5)


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    if request.param == "edge":
        s = EdgeVectorStore(tmp_path / "index", DIM)
    else:
        s = ServerVectorStore(QdrantClient(":memory:"), "mmr", DIM)
    with s:
        yield s


def test_diverse_search_on_a_store(store):
    query, rows = corpus()
    nodes = {}
    for owner in ("alice", "bob"):
        for name, vec in rows:
            node = TextNode(
                id_=str(uuid.uuid4()),
                text=f"weekly status update {name}",
                embedding=vec.tolist(),
                metadata={"owner": owner, "item_id": f"local:{name}", "title": name},
            )
            nodes[owner, name] = node
            store.add([node])
    embedder = SimpleNamespace(embed_query=lambda t: query)

    found = store.vectors("alice", [n.node_id for n in nodes.values()])
    assert set(found) == {nodes["alice", name].node_id for name, _ in rows}  # never bob's

    results = diverse_search(store, embedder, "alice", "weekly status", k=3, fetch_k=20)
    assert {r.item_id.removeprefix("local:")[0] for r in results} == {"d", "a", "b"}
    assert {r.chunk_id for r in results} <= {nodes["alice", name].node_id for name, _ in rows}

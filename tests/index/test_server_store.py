"""The scale-out index (a Qdrant server through qdrant-client) behaves like the embedded one.

The behaviour checks of ``tests/test_store.py`` run here unchanged against
:class:`ServerVectorStore` on qdrant-client's local mode, which speaks the server's API: they
are imported below and pick up this module's ``store`` fixture. The tests after them cover
what only the server store has (URLs, collections, refused LlamaIndex calls) and one whole
sync with ``COPILOT_QDRANT_URL`` set.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
import qdrant_edge as qe
from qdrant_client import QdrantClient, models

from copilot.index import bm25
from copilot.index.filters import SearchFilters, scoped, search_conditions
from copilot.index.server_store import (
    ServerVectorStore,
    client_filter,
    collection_name,
    open_client,
)
from tests.index.test_store import (  # noqa: F401  (collected here, run on this module's store)
    DIM,
    chunk,
    ids_of,
    random_unit,
    test_add_then_query_through_llamaindex,
    test_bad_input_is_refused_with_a_clear_error,
    test_bm25_finds_an_exact_rare_term,
    test_bm25_statistics_are_per_owner,
    test_delete_by_ref_doc_id_needs_and_respects_owner,
    test_delete_item_keeps_the_new_version,
    test_dense_finds_a_paraphrase_bm25_cannot,
    test_every_path_needs_an_owner,
    test_hybrid_weights_can_mute_one_side,
    test_llamaindex_metadata_filters,
    test_llamaindex_sparse_and_hybrid_modes,
    test_no_query_ever_returns_another_owners_chunk,
    test_owner_can_come_from_a_metadata_filter,
    test_search_filters,
    test_stop_words_only_query_finds_nothing_instead_of_failing,
    test_title_words_find_every_chunk_of_an_item,
    test_upserting_the_same_id_twice_replaces_the_point,
)


@pytest.fixture
def store():
    with ServerVectorStore(QdrantClient(":memory:"), "copilot_test", DIM) as s:
        yield s


# ---- what only the server store has -------------------------------------------------------


def test_collection_is_made_for_multitenancy(monkeypatch):
    client = QdrantClient(":memory:")
    indexes = {}  # local mode accepts payload indexes but does not keep them: record them
    monkeypatch.setattr(
        client,
        "create_payload_index",
        lambda c, f, field_schema, **kw: indexes.update({f: field_schema}),
    )
    ServerVectorStore(client, "copilot_test", DIM)

    info = client.get_collection("copilot_test")
    assert info.config.params.vectors["dense"].distance == models.Distance.COSINE
    assert info.config.params.sparse_vectors["bm25"].modifier == models.Modifier.IDF
    assert info.config.metadata["bm25"] == bm25.SIGNATURE
    assert indexes["owner"].is_tenant is True
    assert indexes["modified_ts"] == models.PayloadSchemaType.FLOAT
    assert {"item_id", "item_hash", "source", "kind", "sender", "folder"} <= set(indexes)


def test_data_survives_close_and_reopen_in_local_mode(tmp_path):
    url = f"local:{tmp_path / 'qdrant'}"
    nodes = [chunk(f"persisted text {i}", chunk=i, locator={"page": i}) for i in range(20)]
    with ServerVectorStore(open_client(url), "c", DIM) as s:
        s.add(nodes, batch_size=7)  # several upload batches
        before = ids_of(
            s.search("alice", text="", dense=np.array(nodes[5].embedding), mode="dense")
        )

    with ServerVectorStore(open_client(url), "c", DIM) as s:
        assert s.count() == 20
        after = s.search("alice", text="", dense=np.array(nodes[5].embedding), mode="dense")
        assert ids_of(after) == before
        assert after[0].payload["locator"] == {"page": 5}
        assert s.item_chunk_ids("alice", "local:a.docx") == [n.node_id for n in nodes]


def test_one_collection_per_embedding_model(store):
    assert collection_name("all-minilm-l6-v2") == "copilot_all-minilm-l6-v2"
    assert collection_name("azure-my deployment/v2") == "copilot_azure-my_deployment_v2"
    with pytest.raises(ValueError, match="one collection per embedding model"):
        ServerVectorStore(store.client, "copilot_test", 384)


def test_url_forms(tmp_path):
    assert open_client(":memory:").get_collections().collections == []
    assert open_client(f"local:{tmp_path}").get_collections().collections == []
    for bad in ("qdrant.example.com:6333", "local:", "ftp://x"):
        with pytest.raises(ValueError, match="COPILOT_QDRANT_URL"):
            open_client(bad)


def test_llamaindex_calls_that_ignore_the_owner_are_refused(store):
    store.add([chunk("text")])
    for call in (lambda: store.get_nodes(), lambda: store.delete_nodes(["x"]), store.clear):
        with pytest.raises(NotImplementedError, match=r"owner|every user"):
            call()
    assert store.count() == 1


def test_filters_translate_one_to_one():
    filters = SearchFilters(
        kinds=("mail",), senders=("Boss@X.com",), modified_from=datetime(2024, 1, 1, tzinfo=UTC)
    )
    flt = client_filter(scoped("alice", *search_conditions(filters)))
    assert flt.must[0] == models.FieldCondition(key="owner", match=models.MatchValue(value="alice"))
    assert flt.must[1] == models.FieldCondition(key="kind", match=models.MatchAny(any=["mail"]))
    assert flt.must[2].match == models.MatchAny(any=["boss@x.com"])
    assert flt.must[3].range.gte == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match="unsupported condition on 'x'"):
        client_filter(qe.Filter(must=[qe.FieldCondition("x", is_empty=True)]))


def test_stored_vectors_are_returned_for_the_owner_only(store):
    mine, theirs = chunk("a"), chunk("b", owner="bob")
    store.add([mine, theirs])
    found = store.vectors("alice", [mine.node_id, theirs.node_id])
    assert list(found) == [mine.node_id]
    assert np.allclose(found[mine.node_id], mine.embedding, atol=1e-6)


def test_same_ranking_as_the_embedded_store(store, tmp_path):
    from copilot.index.store import EdgeVectorStore

    words = [
        "budget",
        "invoice",
        "meeting",
        "printer",
        "offsite",
        "contract",
        "audit",
        "roadmap",
        "hiring",
        "travel",
    ]
    rand = np.random.default_rng(5)
    nodes = [
        chunk(" ".join(rand.choice(words, 5)), item_id=f"local:{i}", title=str(rand.choice(words)))
        for i in range(60)
    ]
    store.add(nodes)
    with EdgeVectorStore(tmp_path / "edge", DIM) as edge:
        edge.add(nodes)
        for _ in range(20):
            text, dense = " ".join(rand.choice(words, 2)), np.array(random_unit())
            args = dict(text=text, dense=dense, k=10)
            ours, theirs = store.search("alice", **args), edge.search("alice", **args)
            # Scores, not ids: BM25 ties (same words) may come back in another order.
            # float32 in one engine, float64 in the other: equal to well within 1e-3.
            assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-3)
            # RRF works on ranks, so tie order changes its scores a little; it still runs.
            assert len(store.search("alice", **args, fusion="rrf")) == 10
            # Feedback reads the top chunks' stored vectors back from either engine alike.
            ours, theirs = (s.search("alice", **args, feedback=3) for s in (store, edge))
            assert np.allclose([h.score for h in ours], [h.score for h in theirs], atol=1e-3)


# ---- the whole pipeline on the server store -----------------------------------------------


def test_sync_and_search_with_a_qdrant_url(tmp_path, monkeypatch):
    from connectors.local import LocalFolder
    from copilot.cli.demo import build_workspace
    from copilot.config import Settings
    from copilot.index.search import search
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    monkeypatch.setenv("COPILOT_QDRANT_URL", f"local:{tmp_path / 'qdrant'}")
    settings = Settings(home=tmp_path / "home", parse_workers=1, parse_timeout_s=20)
    folder = build_workspace(tmp_path / "docs")
    with Workspace(settings) as ws:
        assert isinstance(ws.store, ServerVectorStore)
        report = sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, ws.embedder)
        assert report.failed == 0, report.failures
        assert ws.store.count("ann") == report.chunks > 8
        hits = search(ws.store, ws.embedder, "ann", "legacy invoice export nightly batch risk", k=3)
        assert hits[0].title == "Atlas status report.docx"
        assert search(ws.store, ws.embedder, "bob", "invoice export", k=3) == []
        again = sync(LocalFolder(folder, owner="ann"), settings, ws.state, ws.store, ws.embedder)
        assert again.indexed == 0 and ws.store.count("ann") == report.chunks

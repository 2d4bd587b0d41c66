"""The embedded index: LlamaIndex interface, search modes, filters, deletes, persistence,
locking and, above all, that one owner never sees another owner's chunks.

Vectors are small hand-made ones (8-d), so these tests never load an embedding model.
"""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from copilot.index.store import EdgeVectorStore, IndexLockedError, SearchFilters

DIM = 8
RNG = np.random.default_rng(7)


def unit(v) -> list[float]:
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v)).tolist()


def random_unit() -> list[float]:
    return unit(RNG.normal(size=DIM))


def chunk(text, *, owner="alice", item_id="local:a.docx", vector=None, chunk=0, **meta):
    """One chunk as the ingestion pipeline hands it over: a TextNode with its payload."""
    return TextNode(
        id_=str(uuid.uuid4()),
        text=text,
        embedding=vector if vector is not None else random_unit(),
        metadata={"owner": owner, "item_id": item_id, "chunk": chunk, **meta},
    )


@pytest.fixture
def store(tmp_path):
    with EdgeVectorStore(tmp_path / "index", DIM) as s:
        yield s


def ids_of(hits) -> list[str]:
    return [h.id for h in hits]


# ---- LlamaIndex interface -----------------------------------------------------------------


def test_add_then_query_through_llamaindex(store):
    nodes = [chunk(f"paragraph {i}", item_id=f"local:{i}.txt", title=f"Doc {i}") for i in range(6)]
    assert store.add(nodes) == [n.node_id for n in nodes]

    result = store.query(
        VectorStoreQuery(query_embedding=nodes[3].embedding, similarity_top_k=2), owner="alice"
    )

    assert result.ids[0] == nodes[3].node_id
    assert result.similarities[0] == pytest.approx(1.0, abs=1e-5)
    top = result.nodes[0]
    assert top.get_content() == "paragraph 3"
    assert top.metadata["title"] == "Doc 3"
    assert top.ref_doc_id == "local:3.txt"


def test_llamaindex_sparse_and_hybrid_modes(store):
    store.add([chunk("quarterly budget review"), chunk("holiday rota for december")])
    sparse = VectorStoreQuery(
        query_str="december rota", similarity_top_k=5, mode=VectorStoreQueryMode.SPARSE
    )
    assert [n.get_content() for n in store.query(sparse, owner="alice").nodes] == [
        "holiday rota for december"
    ]
    hybrid = VectorStoreQuery(
        query_str="budget",
        query_embedding=random_unit(),
        similarity_top_k=5,
        mode=VectorStoreQueryMode.HYBRID,
    )
    result = store.query(hybrid, owner="alice")
    assert result.nodes[0].get_content() == "quarterly budget review"
    assert len(result.nodes) == 2


def test_llamaindex_metadata_filters(store):
    store.add(
        [
            chunk("one", kind="mail", chunk=0),
            chunk("two", kind="file", chunk=1),
            chunk("three", kind="file", chunk=2),
        ]
    )

    def texts(filters):
        q = VectorStoreQuery(query_embedding=random_unit(), similarity_top_k=10, filters=filters)
        return sorted(n.get_content() for n in store.query(q, owner="alice").nodes)

    eq = MetadataFilters(filters=[MetadataFilter(key="kind", value="file")])
    assert texts(eq) == ["three", "two"]
    nin = MetadataFilters(
        filters=[MetadataFilter(key="kind", value=["file"], operator=FilterOperator.NIN)]
    )
    assert texts(nin) == ["one"]
    gte = MetadataFilters(filters=[MetadataFilter(key="chunk", value=1, operator="<=")])
    assert texts(gte) == ["one", "two"]
    either = MetadataFilters(
        filters=[MetadataFilter(key="kind", value="mail"), MetadataFilter(key="chunk", value=2)],
        condition=FilterCondition.OR,
    )
    assert texts(either) == ["one", "three"]


def test_owner_can_come_from_a_metadata_filter(store):
    store.add([chunk("mine"), chunk("theirs", owner="bob")])
    only_bob = MetadataFilters(filters=[MetadataFilter(key="owner", value="bob")])
    q = VectorStoreQuery(query_embedding=random_unit(), similarity_top_k=10, filters=only_bob)
    assert [n.get_content() for n in store.query(q).nodes] == ["theirs"]
    with pytest.raises(ValueError, match="conflicts"):
        store.query(q, owner="alice")


def test_every_path_needs_an_owner(store):
    store.add([chunk("text")])
    with pytest.raises(ValueError, match="owner"):
        store.query(VectorStoreQuery(query_embedding=random_unit()))
    # owner == X under OR does not constrain anything, so it does not count as an owner
    loose = MetadataFilters(
        filters=[MetadataFilter(key="owner", value="alice"), MetadataFilter(key="x", value=1)],
        condition=FilterCondition.OR,
    )
    with pytest.raises(ValueError, match="owner"):
        store.query(VectorStoreQuery(query_embedding=random_unit(), filters=loose))
    with pytest.raises(ValueError, match="owner"):
        store.search("", text="text", dense=None, mode="bm25")
    with pytest.raises(ValueError, match="owner"):
        store.delete("local:a.docx")
    with pytest.raises(ValueError, match="owner"):
        store.item_chunk_ids(None, "local:a.docx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="owner"):
        store.add([chunk("no owner", owner="")])
    assert store.count() == 1


# ---- search modes -------------------------------------------------------------------------


def test_bm25_finds_an_exact_rare_term(store):
    store.add([chunk(f"minutes of the weekly meeting number {i}") for i in range(50)])
    needle = chunk("please order part ZX-4411 before friday", item_id="graph-mail:42")
    store.add([needle])

    hits = store.search("alice", text="zx-4411", dense=None, mode="bm25", k=3)
    assert ids_of(hits) == [needle.node_id]
    assert hits[0].payload["text"] == "please order part ZX-4411 before friday"
    # hybrid keeps it on top even when the (random) query vector points elsewhere
    hybrid = store.search("alice", text="zx-4411", dense=np.array(random_unit()), k=3)
    assert hybrid[0].id == needle.node_id


def test_dense_finds_a_paraphrase_bm25_cannot(store):
    topic = RNG.normal(size=DIM)
    target = chunk("the meeting moves to thursday", vector=unit(topic))
    store.add([target] + [chunk(f"unrelated note {i}") for i in range(30)])
    query_vector = np.array(unit(topic + RNG.normal(scale=0.1, size=DIM)))
    text = "reschedule our get-together"  # no word in common with the target

    assert store.search("alice", text=text, dense=None, mode="bm25") == []
    assert store.search("alice", text=text, dense=query_vector, mode="dense")[0].id == (
        target.node_id
    )
    assert store.search("alice", text=text, dense=query_vector, mode="hybrid")[0].id == (
        target.node_id
    )


def test_title_words_find_every_chunk_of_an_item(store):
    store.add(
        [
            chunk("first part", title="Hydrology survey", chunk=0),
            chunk("second part", title="Hydrology survey", chunk=1),
            chunk("hydrology is mentioned once here", item_id="local:b.txt", title="Other"),
        ]
    )
    hits = store.search("alice", text="hydrology", dense=None, mode="bm25")
    assert len(hits) == 3
    assert {h.payload["item_id"] for h in hits[:2]} == {"local:a.docx"}


def test_stop_words_only_query_finds_nothing_instead_of_failing(store):
    store.add([chunk("the cat")])
    assert store.search("alice", text="the of and", dense=None, mode="bm25") == []
    with pytest.raises(ValueError, match="query vector"):
        store.search("alice", text="cat", dense=None, mode="dense")


def test_hybrid_weights_can_mute_one_side(store):
    store.add([chunk(f"note {i}") for i in range(10)] + [chunk("kumquat")])
    query_vector = np.array(random_unit())
    dense = store.search("alice", text="kumquat", dense=query_vector, mode="dense", k=5)
    dense_only = store.search(
        "alice", text="kumquat", dense=query_vector, mode="hybrid", k=5, weights=(1.0, 0.0)
    )
    assert ids_of(dense_only) == ids_of(dense)


def test_bm25_statistics_are_per_owner(store):
    """Bob's documents must not move Alice's scores: no side channel through IDF."""
    store.add([chunk("invoice for the printer"), chunk("lunch menu"), chunk("team offsite")])
    before = store.search("alice", text="invoice", dense=None, mode="bm25")[0].score
    store.add([chunk(f"invoice {i}", owner="bob") for i in range(40)])
    after = store.search("alice", text="invoice", dense=None, mode="bm25")[0].score
    assert after == pytest.approx(before)


# ---- filters ------------------------------------------------------------------------------


def test_search_filters(store):
    def at(day):
        return datetime(2024, 3, day, tzinfo=UTC).timestamp()

    store.add(
        [
            chunk("report", item_id="local:r", source="local", kind="file", modified_ts=at(1)),
            chunk(
                "report mail",
                item_id="graph-mail:1",
                source="graph-mail",
                kind="mail",
                sender="Boss@Example.com",
                folder="Inbox",
                modified_ts=at(10),
            ),
            chunk(
                "report sent",
                item_id="graph-mail:2",
                source="graph-mail",
                kind="mail",
                sender="me@example.com",
                folder="Sent Items",
                modified_ts=at(20),
            ),
        ]
    )

    def found(**filters):
        hits = store.search(
            "alice", text="report", dense=None, mode="bm25", filters=SearchFilters(**filters)
        )
        return sorted(h.payload["item_id"] for h in hits)

    assert found() == ["graph-mail:1", "graph-mail:2", "local:r"]
    assert found(sources=("local",)) == ["local:r"]
    assert found(kinds=("mail",)) == ["graph-mail:1", "graph-mail:2"]
    assert found(senders=("boss@EXAMPLE.com",)) == ["graph-mail:1"]
    assert found(folders=("Sent Items", "Archive")) == ["graph-mail:2"]
    assert found(item_ids=("local:r", "graph-mail:2")) == ["graph-mail:2", "local:r"]
    assert found(modified_from=datetime(2024, 3, 5)) == ["graph-mail:1", "graph-mail:2"]
    assert found(modified_to=datetime(2024, 3, 10, tzinfo=UTC)) == ["graph-mail:1", "local:r"]
    assert found(
        modified_from=datetime(2024, 3, 2), modified_to=datetime(2024, 3, 15), kinds=("mail",)
    ) == ["graph-mail:1"]
    assert found(kinds=("mail",), folders=("Inbox",), senders=("nobody@x",)) == []


# ---- writes and deletes -------------------------------------------------------------------


def test_upserting_the_same_id_twice_replaces_the_point(store):
    node = chunk("first wording")
    store.add([node])
    node.text = "second wording"
    store.add([node])
    assert store.count("alice") == 1
    assert store.search("alice", text="wording", dense=None, mode="bm25")[0].payload["text"] == (
        "second wording"
    )


def test_delete_item_keeps_the_new_version(store):
    old = [chunk(f"old {i}", chunk=i, item_hash="h1") for i in range(3)]
    new = [chunk(f"new {i}", chunk=i, item_hash="h2") for i in range(2)]
    other = chunk("other item", item_id="local:b.docx", item_hash="h1")
    bobs = chunk("bob's copy", owner="bob", item_hash="h1")  # same item id, other owner
    store.add([*old, other, bobs])
    store.add(new)

    store.delete_item("alice", "local:a.docx", keep_hash="h2")

    assert store.item_chunk_ids("alice", "local:a.docx") == [n.node_id for n in new]
    assert store.item_chunk_ids("alice", "local:b.docx") == [other.node_id]
    assert store.item_chunk_ids("bob", "local:a.docx") == [bobs.node_id]


def test_delete_by_ref_doc_id_needs_and_respects_owner(store):
    store.add([chunk("a0", chunk=0), chunk("a1", chunk=1), chunk("b", owner="bob")])
    store.delete("local:a.docx", owner="alice")
    assert store.count("alice") == 0
    assert store.count("bob") == 1
    assert store.count() == 1


def test_bad_input_is_refused_with_a_clear_error(store):
    meta = {"owner": "alice", "item_id": "local:x"}
    with pytest.raises(ValueError, match="UUID"):
        store.add([TextNode(id_="not-a-uuid", text="x", embedding=random_unit(), metadata=meta)])
    with pytest.raises(ValueError, match="8-d"):
        store.add([chunk("x", vector=[0.1] * 4)])
    with pytest.raises(ValueError, match="NaN"):
        store.add([chunk("x", vector=[float("nan")] * DIM)])
    with pytest.raises(ValueError, match="no embedding"):
        store.add(
            [TextNode(id_=str(uuid.uuid4()), text="x", metadata={"owner": "a", "item_id": "i"})]
        )
    with pytest.raises(ValueError, match="NaN"):
        store.search("alice", text="", dense=np.full(DIM, np.inf), mode="dense")
    with pytest.raises(ValueError, match="mode"):
        store.search("alice", text="x", dense=None, mode="fuzzy")  # type: ignore[arg-type]
    assert store.count() == 0


# ---- persistence and locking --------------------------------------------------------------


def test_data_survives_close_and_reopen(tmp_path):
    nodes = [chunk(f"persisted text {i}", chunk=i, locator={"page": i}) for i in range(20)]
    query = np.array(nodes[5].embedding)
    with EdgeVectorStore(tmp_path / "index", DIM) as s:
        s.add(nodes)
        s.optimize()
        s.add([chunk("written after optimize", item_id="local:late.txt")])
        before = ids_of(s.search("alice", text="", dense=query, mode="dense"))

    with EdgeVectorStore(tmp_path / "index", DIM) as s:
        assert s.count() == 21
        after = s.search("alice", text="", dense=query, mode="dense")
        assert ids_of(after) == before
        assert after[0].payload["locator"] == {"page": 5}
        assert after[0].payload["text"] == "persisted text 5"
        assert len(s.search("alice", text="persisted", dense=query, mode="hybrid", k=50)) == 21
        assert len(s.item_chunk_ids("alice", "local:late.txt")) == 1


def test_reopening_with_another_vector_size_is_refused(tmp_path):
    EdgeVectorStore(tmp_path / "index", DIM).close()
    with pytest.raises(ValueError, match="one index directory per embedding model"):
        EdgeVectorStore(tmp_path / "index", 384)
    EdgeVectorStore(tmp_path / "index", DIM).close()  # the failed open left no lock behind


def test_queries_run_in_the_callers_thread_not_a_pool(tmp_path):
    # The binding holds the interpreter lock for a whole query: with the engine's default
    # pool (a thread per CPU) every other thread of a server waited while pool threads
    # competed for the cores (docs/benchmarks.md, "One search thread").
    script = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        from llama_index.core.schema import TextNode
        from copilot.index.store import EdgeVectorStore

        def pool():
            tasks = os.listdir("/proc/self/task")
            names = [open(f"/proc/self/task/{t}/comm").read() for t in tasks]
            return sum(n.startswith("edge-search") for n in names)

        node = TextNode(text="pool", embedding=[1.0] + [0.0] * 7,
                        metadata={"owner": "a", "item_id": "x"})
        for _ in range(2):  # created, then reopened
            with EdgeVectorStore(Path(sys.argv[1]), 8) as s:
                if not s.count():
                    s.add([node])
                assert s.search("a", text="pool", dense=node.embedding)
                print(pool())
    """)
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "index")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    created, reopened = (int(n) for n in run.stdout.split())
    assert created <= 1 and reopened <= 1


def test_one_store_per_directory(tmp_path):
    path = tmp_path / "index"
    first = EdgeVectorStore(path, DIM)
    with pytest.raises(IndexLockedError, match="already open"):
        EdgeVectorStore(path, DIM)

    script = (
        "import sys\nfrom pathlib import Path\n"
        "from copilot.index.store import EdgeVectorStore, IndexLockedError\n"
        "try:\n    EdgeVectorStore(Path(sys.argv[1]), 8)\n"
        "except IndexLockedError as e:\n    print(e); sys.exit(3)\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=60
    )
    assert other.returncode == 3, other.stderr
    assert "already open" in other.stdout

    first.close()
    first.close()  # closing twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        first.count()
    EdgeVectorStore(path, DIM).close()


# ---- tenant isolation ---------------------------------------------------------------------


def test_no_query_ever_returns_another_owners_chunk(store):
    """Two owners with identical items (same text, vectors, item ids, payload): every kind
    of query for one owner must come back with that owner's chunks only."""
    rand = random.Random(11)
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
    owners = ("alice", "bob")
    items = []
    for i in range(40):
        text = " ".join(rand.choices(words, k=6))
        meta = {
            "item_id": f"graph-mail:{i}",
            "source": rand.choice(["graph-mail", "local"]),
            "kind": rand.choice(["mail", "file"]),
            "sender": rand.choice(["a@x.com", "b@x.com"]),
            "folder": rand.choice(["Inbox", "Sent Items"]),
            "modified_ts": float(1_700_000_000 + i * 86_400),
            "title": rand.choice(words),
        }
        items.append((text, random_unit(), meta))
    for owner in owners:
        store.add([chunk(t, owner=owner, vector=v, **m) for t, v, m in items])
    store.optimize()

    seen = 0
    for _ in range(300):
        owner = rand.choice(owners)
        dense = np.array(rand.choice(items)[1]) if rand.random() < 0.8 else None
        filters = rand.choice(
            [
                None,
                SearchFilters(kinds=("mail",)),
                SearchFilters(sources=("local",), senders=("a@x.com",)),
                SearchFilters(folders=("Inbox",), modified_from=datetime(2023, 11, 20)),
                SearchFilters(item_ids=tuple(f"graph-mail:{i}" for i in range(5))),
            ]
        )
        hits = store.search(
            owner,
            text=" ".join(rand.choices(words, k=rand.randint(1, 3))),
            dense=dense,
            mode=rand.choice(
                ["hybrid", "dense", "bm25"] if dense is not None else ["hybrid", "bm25"]
            ),
            k=rand.choice([1, 10, 100]),
            filters=filters,
            feedback=rand.choice([0, 3]),  # the dense list again, towards the top chunks
        )
        assert {h.payload["owner"] for h in hits} <= {owner}
        seen += len(hits)

        other = "bob" if owner == "alice" else "alice"
        sneaky = MetadataFilters(
            filters=[MetadataFilter(key="owner", value=other), MetadataFilter(key="x", value=1)],
            condition=FilterCondition.OR,
        )
        q = VectorStoreQuery(
            query_embedding=rand.choice(items)[1], similarity_top_k=20, filters=sneaky
        )
        assert {n.metadata["owner"] for n in store.query(q, owner=owner).nodes} <= {owner}

    assert seen > 1000  # the queries did find things: the check above is not vacuous
    for i in range(40):
        assert len(store.item_chunk_ids("alice", f"graph-mail:{i}")) == 1
    store.delete_item("alice", "graph-mail:0")
    assert store.item_chunk_ids("bob", "graph-mail:0") != []
    assert store.count("alice") == 39
    assert store.count("bob") == 40

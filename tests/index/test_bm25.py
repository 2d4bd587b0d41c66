"""The BM25 vectors the index stores: what a chunk's vector holds, and how the engine scores it.

The scoring test pins the formula the BM25 variant study (``bench/bm25_variants.py``) uses
to re-score chunks offline: if the engine's IDF or length normalisation changed, those
offline tables would no longer describe the product, and this test says so.
"""

from __future__ import annotations

import math
import uuid

import pytest
from llama_index.core.schema import TextNode

from copilot.index import bm25
from copilot.index.store import EdgeVectorStore


def weights(vector) -> dict[int, float]:
    return dict(zip(vector.indices, vector.values, strict=True))


def test_a_title_word_is_in_every_chunk_and_counts_more_than_one_body_mention():
    body_only = weights(bm25.document_vector("the quarterly budget was approved"))
    titled = weights(bm25.document_vector("the meeting ran late", title="Budget"))
    [budget] = bm25.query_vector("budget").indices
    assert budget in titled  # the chunk never says "budget", its item's title does
    assert titled[budget] > body_only[budget]  # written twice: tf 2 against tf 1


def test_accents_and_word_forms_meet_in_one_term():
    assert bm25.query_vector("Müller").indices == bm25.query_vector("muller").indices
    assert bm25.query_vector("invoices").indices == bm25.query_vector("invoice").indices


def test_stop_words_alone_make_an_empty_query():
    assert bm25.query_vector("the of and").indices == []


def test_the_engine_scores_idf_over_the_owners_chunks_times_the_stored_weight(tmp_path):
    """score = sum over query terms of ln(1 + (N - df + 0.5) / (df + 0.5)) * stored weight,
    with N and df counted over the owner's chunks (not items): the reason long items,
    split into many chunks, get other statistics than whole-document BM25."""
    texts = ["invoice for the printer toner", "printer jammed again", "lunch menu", "offsite"]
    nodes = [
        TextNode(
            id_=str(uuid.uuid4()),
            text=text,
            embedding=[1.0, 0.0],
            metadata={"owner": "alice", "item_id": "local:one-item.txt", "chunk": i},
        )
        for i, text in enumerate(texts)
    ]
    with EdgeVectorStore(tmp_path / "index", 2) as store:
        store.add(nodes)
        [hit] = store.search("alice", text="printer invoice", dense=None, mode="bm25", k=1)
    chunk_vectors = [weights(bm25.document_vector(text)) for text in texts]
    n = len(texts)  # four chunks, though all belong to one item
    expected = 0.0
    for term in bm25.query_vector("printer invoice").indices:
        df = sum(term in vector for vector in chunk_vectors)  # printer 2, invoice 1
        expected += math.log(1 + (n - df + 0.5) / (df + 0.5)) * chunk_vectors[0][term]
    assert hit.payload["text"] == texts[0]
    assert hit.score == pytest.approx(expected, rel=1e-5)

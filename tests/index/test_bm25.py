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
from qdrant_edge import Bm25, Bm25Config

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


def test_an_items_vector_is_the_engines_bm25_of_its_whole_text():
    """``item_vector`` adds up chunk term counts and weights them as the engine's own BM25
    would weight the item's whole text (with the item length normaliser)."""
    texts = ["Invoice for the printer toner, Müller 2024.", "Printer jammed again; printer!"]
    counts: dict[int, int] = {}
    for text in texts:
        for term, n in bm25.term_counts(text).items():
            counts[term] = counts.get(term, 0) + n
    config = Bm25Config(k=bm25.K1, b=bm25.B, avg_len=bm25.ITEM_AVG_LEN, ascii_folding=True)
    whole = Bm25(config).embed_document("\n".join(texts))
    assert weights(bm25.item_vector(counts)) == pytest.approx(weights(whole), rel=1e-6)


def test_the_engine_scores_an_item_by_its_whole_text_plus_its_best_chunk(tmp_path):
    """score = sum over query terms of ln(1 + (N - df + 0.5) / (df + 0.5)) * (whole-item
    weight + best chunk's weight), with N and df counted over the owner's items (not
    chunks): a long item split into many chunks counts once, as in whole-document BM25."""
    items = {
        "local:report.txt": ["invoice for the printer toner", "printer jammed again"],
        "local:menu.txt": ["lunch menu"],
        "local:plan.txt": ["offsite plan", "printer budget"],
    }
    nodes = [
        TextNode(
            id_=str(uuid.uuid4()),
            text=text,
            embedding=[1.0, 0.0],
            metadata={"owner": "alice", "item_id": item, "chunk": i},
        )
        for item, texts in items.items()
        for i, text in enumerate(texts)
    ]
    with EdgeVectorStore(tmp_path / "index", 2) as store:
        store.add(nodes)
        [hit] = store.search("alice", text="printer invoice", dense=None, mode="bm25", k=1)
    config = Bm25Config(k=bm25.K1, b=bm25.B, avg_len=bm25.ITEM_AVG_LEN, ascii_folding=True)
    whole = {item: weights(Bm25(config).embed_document("\n".join(t))) for item, t in items.items()}
    best = weights(bm25.document_vector(items["local:report.txt"][0]))
    n = len(items)  # three items, though five chunks
    expected = 0.0
    for term in bm25.query_vector("printer invoice").indices:
        df = sum(term in vector for vector in whole.values())  # printer 2, invoice 1
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        expected += idf * (whole["local:report.txt"][term] + best[term])
    assert hit.payload["text"] == items["local:report.txt"][0]  # the best chunk is the hit
    assert hit.score == pytest.approx(expected, rel=1e-5)

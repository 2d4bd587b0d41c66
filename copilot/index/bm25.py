"""BM25 sparse vectors for the index, made in-process by ``qdrant_edge.Bm25``.

The engine stores term frequencies; the IDF part is applied at query time by the sparse
field's ``Modifier.Idf``. So a document vector is fixed when it is written, and changing
anything below (tokeniser, folding, ``avg_len``) means rebuilding the index: that is why the
settings are one signature that the store records on disk and checks on open.

What the tokeniser does (checked on qdrant-edge-py 0.9): words split on punctuation
(``Zx-4411``, ``foo@bar.com``, ``Q3_report_v2.docx`` all split into their parts), lower-cased,
English stop words dropped, Snowball English stemming (``running`` -> ``run``, not ``ran``),
numbers kept. We add ASCII folding so ``Müller`` finds ``Muller`` and ``café`` finds
``cafe``. The ``Multilingual`` tokeniser would segment CJK text but drops pure numbers
(years, invoice numbers), which matter more in office mail, so we keep ``Word``.

Whole items (issue 18): BM25 over chunks loses to BM25 over whole documents on long
documents, so each item also gets one item-level vector (:func:`item_vector`), made from
the term counts of all its chunks with the same k1 and b, its length normalised against
``ITEM_AVG_LEN``. Search adds an item's whole-item score to its best chunk's score, both
with IDF counted over items (``copilot.index.planner``; measured in docs/benchmarks.md,
"BM25 on chunks").
"""

from __future__ import annotations

from qdrant_edge import Bm25, Bm25Config, SparseVector

# A 200-token (wordpiece) chunk is about 150 words, ~90 once stop words go, plus the title.
# BM25's length normalisation is relative to this, so it should sit near the real average.
AVG_LEN = 100.0
K1 = 1.2
B = 0.75
# The title is written twice: every chunk of an item is findable by its title words
# (mail subject, file name), and the second copy is a mild boost (tf 1 -> 2 is about +37%
# at k1=1.2), not enough to drown the chunk's own text.
TITLE_REPEAT = 2

SIGNATURE = f"word+fold;k1={K1};b={B};avg_len={AVG_LEN};title_x{TITLE_REPEAT}"
# The length an item's length is normalised against. The true mean differs per user (a
# mailbox of one-chunk messages, a folder of 40-page reports) and is not known when an
# item is written, so it is the chunk's: no second constant, and the whole-item and the
# chunk weight that search adds up are on one length scale. A long item's whole-item
# weight is then damped and its best chunk carries it. Measured against 300 and 1,000
# and the collection's true mean in docs/benchmarks.md ("BM25 on chunks").
ITEM_AVG_LEN = AVG_LEN
# Changing it (or how item texts are counted) rebuilds the item vectors on the next open
# (copilot.index.items): they are made from the stored chunks, so no re-sync is needed.
ITEM_SIGNATURE = f"{SIGNATURE};item_avg_len={ITEM_AVG_LEN};prefix_once"

_model = Bm25(Bm25Config(k=K1, b=B, avg_len=AVG_LEN, ascii_folding=True))
# k1 huge and b = 0 make the stored weight the raw term count: tf (k1+1) / (tf + k1) -> tf
_counter = Bm25(Bm25Config(k=1e9, b=0.0, avg_len=AVG_LEN, ascii_folding=True))


def document_vector(text: str, title: str = "") -> SparseVector:
    """The sparse vector stored for one chunk: its title (boosted) and its text."""
    parts = [title] * TITLE_REPEAT if title.strip() else []
    parts.append(text)
    return _model.embed_document("\n".join(parts))


def query_vector(text: str) -> SparseVector:
    """The sparse vector for a query: each distinct term once, weight 1."""
    return _model.embed_query(text)


def term_counts(text: str) -> dict[int, int]:
    """How often each term occurs in ``text``, by the same tokeniser as the vectors."""
    vector = _counter.embed_document(text)
    return {i: round(v) for i, v in zip(vector.indices, vector.values, strict=True)}


def title_counts(title: str) -> dict[int, int]:
    """The term counts a title adds to a chunk's or an item's vector (it is repeated)."""
    return term_counts("\n".join([title] * TITLE_REPEAT)) if title.strip() else {}


def item_vector(counts: dict[int, int]) -> SparseVector:
    """The stored vector of a whole item from its term counts: the engine's BM25 weight
    ``tf (k1+1) / (tf + k1 (1 - b + b len / ITEM_AVG_LEN))``, ``len`` being the item's
    number of terms, as :func:`document_vector` computes it for a chunk."""
    length = sum(counts.values())
    norm = K1 * (1 - B + B * length / ITEM_AVG_LEN)
    terms = sorted(t for t, n in counts.items() if n > 0)
    return SparseVector(
        indices=terms, values=[counts[t] * (K1 + 1) / (counts[t] + norm) for t in terms]
    )

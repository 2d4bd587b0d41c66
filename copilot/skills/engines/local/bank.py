"""The prototype bank's vectors, shipped for the engine's own encoder.

Why: the bank and the calibration sentences are ~390 texts. MiniLM embeds them in ~0.5 s
at a process's first sentiment run; e5 (``encoder.py``) takes ~8 s on one core, a wait a
person would see. So their e5 vectors ship beside the head (``sentiment_bank_e5.npz``,
float16, written by ``bench/train_sentiment_head.py --encoder e5``) with the sha256 of the
texts they were made from: when the bank is edited and the file not remade, the digest
differs and the engine embeds the bank itself, slower but never wrong.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from copilot.skills.engines.local import prototypes
from copilot.skills.engines.local.encoder import E5_ID

BANK_FILES = {E5_ID: Path(__file__).with_name("sentiment_bank_e5.npz")}


def bank_texts_with_calibration() -> list[str]:
    """The bank's prototypes (positive, negative, neutral), then the calibration sentences:
    the order of the shipped vectors."""
    return [
        *prototypes.POSITIVE,
        *prototypes.NEGATIVE,
        *prototypes.NEUTRAL,
        *prototypes.CALIBRATION,
    ]


def texts_digest(texts: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()


def shipped_vectors(model_id: str, texts: Sequence[str], dim: int) -> np.ndarray | None:
    """The shipped vectors of ``texts`` in ``model_id``'s space, or None when there are
    none for exactly these texts (or the file is unreadable)."""
    path = BANK_FILES.get(model_id)
    if path is None or not path.is_file():
        return None
    try:
        with path.open("rb") as handle, np.load(handle, allow_pickle=False) as data:
            digest, vectors = str(data["digest"]), data["vectors"]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    if digest != texts_digest(texts) or vectors.shape != (len(texts), dim):
        return None
    if not np.isfinite(vectors).all():
        return None
    result: np.ndarray = vectors.astype(np.float32)
    return result


def write_vectors(path: Path, texts: Sequence[str], vectors: np.ndarray) -> None:
    """What ``shipped_vectors`` reads (float16: the cosine similarities move by < 1e-3)."""
    digest = np.array(texts_digest(texts))
    np.savez_compressed(path, digest=digest, vectors=vectors.astype(np.float16))

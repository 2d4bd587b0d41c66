"""The index of another process on this machine: reads through the process that owns it.

Why: the embedded index admits one process (Qdrant Edge has one writer, and the copilot
locks the folder), yet one Python process serves ~20 streamed runs at most before they queue
for its interpreter lock (docs/benchmarks.md, "API under load"). ``copilot serve --workers
N`` therefore runs N API processes on one port: the first owns the index, the
state store's jobs and the model process; the others serve runs and searches, embed their
own queries and call the owner only for the index search itself (~1–5 ms of its time
against ~40 ms for a whole run). ``RemoteIndex`` is that call: the ``IndexStore`` reads a
run needs (``search``, ``vectors``, ``count``) over loopback HTTP to the owner's internal
routes (``copilot.api.internal``), with the service's local admin token. Everything that
writes is refused with a clear error: writes belong to the owner (a worker forwards the
routes that write, ``copilot.api.forward``).

The wire format lives here, for both ends: a query vector as base64 float32 (a JSON list of
384 floats is 4× the bytes and slower to parse), filters as plain JSON, hits as
``{"id", "score", "payload"}``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import httpx
import numpy as np
from llama_index.core.schema import BaseNode

from copilot.errors import CopilotError
from copilot.index.base import Fusion, Hit, Mode, SearchFilters

SEARCH_PATH = "/internal/index/search"
VECTORS_PATH = "/internal/index/vectors"
COUNT_PATH = "/internal/index/count"
TIMEOUT_S = 30.0  # a search on a busy owner takes milliseconds; this bounds a hung one
POOL = 64  # connections kept to the owner: one per run thread that may search at once


class RemoteIndexError(CopilotError, RuntimeError):
    """The index owner could not be asked, or this process may not write."""

    kind = "index_unavailable"
    status = 503
    title = "The index is not available"


class RemoteIndex:
    """``IndexStore``'s reads over HTTP to the process that owns the index."""

    def __init__(self, base_url: str, token: str, dim: int, *, timeout_s: float = TIMEOUT_S):
        self._dim = dim
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
            limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL),
            trust_env=False,  # loopback: never through a proxy from the environment
        )

    @property
    def dim(self) -> int:
        return self._dim

    def search(
        self,
        owner: str,
        *,
        text: str,
        dense: np.ndarray | None,
        k: int = 10,
        mode: Mode = "hybrid",
        filters: SearchFilters | None = None,
        candidates: int = 100,
        rrf_k: int = 60,
        weights: tuple[float, float] | None = None,
        fusion: Fusion | None = None,
        feedback: int | None = None,
    ) -> list[Hit]:
        body = {
            "owner": owner, "text": text, "dense": encode_vector(dense), "k": k, "mode": mode,
            "filters": encode_filters(filters), "candidates": candidates, "rrf_k": rrf_k,
            "weights": list(weights) if weights is not None else None, "fusion": fusion,
            "feedback": feedback,
        }  # fmt: skip
        found = self._post(SEARCH_PATH, body)
        return [Hit(h["id"], float(h["score"]), h["payload"]) for h in found]

    def vectors(self, owner: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found = self._post(VECTORS_PATH, {"owner": owner, "ids": list(ids)})
        return {i: decode_vector(v) for i, v in found.items() if v is not None}

    def count(self, owner: str | None = None) -> int:
        return int(self._post(COUNT_PATH, {"owner": owner}))

    # -- writes belong to the owner ------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        raise self._read_only("add chunks")

    def delete_item(self, owner: str, item_id: str, keep_hash: str | None = None) -> None:
        raise self._read_only("delete an item")

    def set_item_payload(self, owner: str, item_id: str, values: dict[str, Any]) -> None:
        raise self._read_only("change an item")

    def item_chunk_ids(self, owner: str, item_id: str) -> list[str]:
        raise self._read_only("list an item's chunks")  # only the pipeline asks

    def vectors_by_key(self, owner: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        raise self._read_only("look up vectors by text")  # only the pipeline asks

    def item_vectors_by_key(self, owner: str, item_id: str) -> dict[str, np.ndarray]:
        raise self._read_only("read an item's vectors")  # only the pipeline asks

    def optimize(self) -> None:
        raise self._read_only("optimise the index")

    def flush(self) -> None:
        """Nothing is written here, so nothing to flush."""

    def close(self) -> None:
        self._client.close()

    def _read_only(self, what: str) -> RemoteIndexError:
        return RemoteIndexError(
            f"This API worker reads the index through {self.base_url} and cannot {what}; "
            "the service's first process does that."
        )

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            response = self._client.post(path, json=body)
        except httpx.HTTPError as exc:
            raise RemoteIndexError(
                f"The index owner at {self.base_url} did not answer ({type(exc).__name__}): "
                "is the service's first process running?"
            ) from exc
        if response.status_code != 200:
            raise RemoteIndexError(
                f"The index owner at {self.base_url} answered {response.status_code} to "
                f"{path}: {response.text[:300]}"
            )
        return response.json()


def encode_vector(vector: np.ndarray | None) -> str | None:
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def decode_vector(value: str, dim: int | None = None) -> np.ndarray:
    """A vector from ``encode_vector``; a wrong size is a ValueError naming it."""
    raw = base64.b64decode(value, validate=True)
    if len(raw) % 4 or (dim is not None and len(raw) != 4 * dim):
        raise ValueError(f"a vector of {len(raw)} bytes is not {dim or 'n'} float32 values")
    return np.frombuffer(raw, dtype="<f4").copy()


def encode_filters(filters: SearchFilters | None) -> dict[str, Any] | None:
    if filters is None:
        return None
    out: dict[str, Any] = {}
    for name, value in asdict(filters).items():
        if isinstance(value, datetime):
            out[name] = value.isoformat()
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    return out


def decode_filters(value: dict[str, Any] | None) -> SearchFilters | None:
    """Filters from ``encode_filters``; an unknown field or a wrong type is a ValueError."""
    if value is None:
        return None
    fields: dict[str, Any] = {}
    for name, raw in value.items():
        if name in ("modified_from", "modified_to"):
            fields[name] = datetime.fromisoformat(raw) if raw is not None else None
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            fields[name] = tuple(raw)
        else:
            raise ValueError(f"filter {name!r}: expected a list of strings")
    return SearchFilters(**fields)  # an unknown name is a TypeError: reported as such


def encode_hits(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    return [{"id": h.id, "score": h.score, "payload": h.payload} for h in hits]

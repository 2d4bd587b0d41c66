"""The index owner's routes for its own API workers (``copilot serve --workers N``).

A worker process serves runs and searches but cannot open the embedded index (one process
may), so it asks the process that owns it: ``POST /internal/index/search``, ``…/vectors``
and ``…/count``, in the wire format of ``copilot.index.remote``. Only the service's local
admin token from this machine is accepted (the workers get it from the service that starts
them): the body names any owner, which is what a worker serving many users needs, and
exactly why no user's token may call these. Not in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from copilot.api.deps import Api, api_of
from copilot.api.loopback import is_loopback
from copilot.api.problems import Problem
from copilot.index.base import Fusion, Mode
from copilot.index.remote import (
    COUNT_PATH,
    SEARCH_PATH,
    VECTORS_PATH,
    decode_filters,
    decode_vector,
    encode_hits,
    encode_vector,
)

MAX_IDS = 1000
MAX_K = 1000


async def service_itself(request: Request) -> Api:
    """The app's ``Api``, for a caller holding the local admin token from this machine."""
    api = api_of(request)
    peer = request.client.host if request.client else None
    if not (peer and is_loopback(peer) and api.auth.is_admin_token(
        request.headers.get("authorization")
    )):  # fmt: skip
        raise Problem(403, "Only the service's own processes may use /internal routes.")
    return api


ServiceDep = Annotated[Api, Depends(service_itself)]
router = APIRouter(prefix="", tags=["internal"], include_in_schema=False)


class SearchBody(BaseModel):
    owner: str = Field(min_length=1, max_length=512)
    text: str = Field(max_length=100_000)
    dense: str | None = None
    k: int = Field(10, ge=1, le=MAX_K)
    mode: Mode = "hybrid"
    filters: dict[str, Any] | None = None
    candidates: int = Field(100, ge=1, le=MAX_K)
    rrf_k: int = Field(60, ge=1, le=10_000)
    weights: tuple[float, float] | None = None
    fusion: Fusion | None = None
    feedback: int | None = Field(None, ge=0, le=MAX_K)


class VectorsBody(BaseModel):
    owner: str = Field(min_length=1, max_length=512)
    ids: list[str] = Field(max_length=MAX_IDS)


class CountBody(BaseModel):
    owner: str | None = Field(None, max_length=512)


@router.post(SEARCH_PATH)
def index_search(body: SearchBody, api: ServiceDep) -> list[dict[str, Any]]:
    ws = api.workspace
    try:
        dense = decode_vector(body.dense, ws.store.dim) if body.dense is not None else None
        filters = decode_filters(body.filters)
    except (ValueError, TypeError) as exc:
        raise Problem(422, f"bad search request: {exc}") from None
    hits = ws.store.search(
        body.owner, text=body.text, dense=dense, k=body.k, mode=body.mode, filters=filters,
        candidates=body.candidates, rrf_k=body.rrf_k, weights=body.weights, fusion=body.fusion,
        feedback=body.feedback,
    )  # fmt: skip
    return encode_hits(hits)


@router.post(VECTORS_PATH)
def index_vectors(body: VectorsBody, api: ServiceDep) -> dict[str, str | None]:
    found = api.workspace.store.vectors(body.owner, body.ids)
    return {chunk_id: encode_vector(vector) for chunk_id, vector in found.items()}


@router.post(COUNT_PATH)
def index_count(body: CountBody, api: ServiceDep) -> int:
    return api.workspace.store.count(body.owner)

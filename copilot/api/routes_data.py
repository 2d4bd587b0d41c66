"""/v1/me, /v1/search, /v1/runs and /v1/files: the caller's own data, nobody else's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from copilot.api import schemas
from copilot.api.deps import ApiDep, LimitedUserDep, UserDep
from copilot.api.problems import Problem
from copilot.index.filters import SearchFilters
from copilot.index.search import format_locator, search
from copilot.skills.engines.select import choose_engine

router = APIRouter(prefix="/v1", tags=["data"])
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@router.get("/me", response_model=schemas.Me)
def me(api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Who the token says you are, and what answers your skills."""
    engine = choose_engine(api.settings)
    return {
        "user_id": user.user_id,
        "name": user.name,
        "upn": user.upn,
        "tenant_id": user.tenant_id,
        "engine": engine,
        "model": api.settings.llm_model if engine == "llm" else None,
    }


@router.post("/search", response_model=list[schemas.SearchHit])
def search_index(body: schemas.SearchIn, api: ApiDep, user: LimitedUserDep) -> list[dict]:
    """Hybrid search of the caller's index."""
    filters = SearchFilters(kinds=tuple(body.kinds), sources=tuple(body.sources))
    ws = api.workspace
    results = search(ws.store, ws.embedder, user.user_id, body.query, k=body.k, mode=body.mode,
                     filters=filters)  # fmt: skip
    return [
        {
            "item_id": r.item_id,
            "title": r.title,
            "url": r.url,
            "kind": r.kind,
            "locator": r.locator,
            "where": format_locator(r.locator),
            "score": r.score,
            "snippet": r.snippet,
        }
        for r in results
    ]


def _record(r: Any, *, full: bool = False) -> dict[str, Any]:
    out = {
        "id": r.id,
        "skill_id": r.skill_id,
        "skill_version": r.skill_version,
        "engine": r.engine,
        "model": r.model,
        "created_at": r.created_at,
        "status": r.status,
        "output": r.output,
        "citations": r.citations,
        "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens,
        "cost_usd": r.cost_usd,
        "latency_ms": r.latency_ms,
        "rating": r.rating,
        "edited_text": r.edited_text,
        "error": r.error,
    }
    if full:
        out["messages"] = r.messages
    return out


@router.get("/runs", response_model=list[schemas.RunRecordOut])
def list_runs(
    api: ApiDep,
    user: UserDep,
    skill_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    before: float | None = None,
) -> list[dict[str, Any]]:
    """The caller's runs, newest first; page with `before` = the last `created_at`."""
    runs = api.runner.runs.list(user.user_id, skill_id=skill_id, limit=limit, before=before)
    return [_record(r) for r in runs]


@router.get("/runs/{run_id}", response_model=schemas.RunRecordOut)
def get_run(run_id: str, api: ApiDep, user: UserDep) -> dict[str, Any]:
    """One run, with the exact messages that were sent."""
    return _record(api.runner.runs.get(user.user_id, run_id), full=True)


@router.post("/runs/{run_id}/feedback", response_model=schemas.RunRecordOut)
def feedback(run_id: str, body: schemas.FeedbackIn, api: ApiDep, user: UserDep) -> dict:
    """Thumbs up (+1) or down (-1), and the text as the user finally used it."""
    if body.rating is None and body.edited_text is None and body.comment is None:
        raise Problem(422, "Send a rating, an edited text or a comment.")
    record = api.runner.runs.feedback(
        user.user_id, run_id, rating=body.rating, edited_text=body.edited_text,
        comment=body.comment,
    )  # fmt: skip
    return _record(record)


@router.post(
    "/files/sentiment",
    response_class=FileResponse,
    responses={200: {"content": {XLSX: {}}, "description": "The scored workbook."}},
)
def sentiment_workbook(
    api: ApiDep,
    user: LimitedUserDep,
    file: Annotated[UploadFile, File(description="An .xlsx workbook.")],
    column: Annotated[str, Form(description="Header name or letter of the text column.")],
    sheet: Annotated[str | None, Form()] = None,
    skill_id: Annotated[str, Form()] = "sentiment",
    engine: Annotated[str, Form()] = "auto",
) -> FileResponse:
    """Upload a workbook; get it back with label, score and aspects per row, plus a
    summary sheet with counts and a chart."""
    from copilot.office.scoring import score_workbook

    if engine not in ("auto", "llm", "local"):
        raise Problem(422, "engine is auto, llm or local.")
    folder = Path(tempfile.mkdtemp(prefix="copilot-upload-"))
    src, out = folder / "upload.xlsx", folder / "scored.xlsx"
    with src.open("wb") as f:
        while chunk := file.file.read(1 << 20):
            f.write(chunk)
    try:
        score_workbook(api.runner, user.user_id, skill_id, src, column, sheet=sheet, out=out,
                       engine=engine)  # fmt: skip
    except BaseException:
        _remove(folder)
        raise
    name = Path(file.filename or "workbook.xlsx").stem[:80] or "workbook"
    return FileResponse(
        out,
        media_type=XLSX,
        filename=f"{name}-scored.xlsx",
        background=BackgroundTask(_remove, folder),
    )


def _remove(folder: Path) -> None:
    for p in folder.iterdir():
        p.unlink(missing_ok=True)
    folder.rmdir()

"""/v1/me, /v1/search, /v1/runs and /v1/files: the caller's own data, nobody else's."""

from __future__ import annotations

import re
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from copilot.api import schemas, streaming
from copilot.api.deps import ApiDep, LimitedUserDep, UserDep
from copilot.api.problems import Problem
from copilot.index.filters import SearchFilters
from copilot.index.search import place, search
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
            "where": place(r.kind, r.locator, r.sender, r.date),
            "score": r.score,
            "snippet": r.snippet,
            "sender": r.sender,
            "date": r.date,
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
        "comment": r.comment,
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
    limit: Annotated[int, Query(ge=1, le=schemas.RUNS_PAGE)] = 50,
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
async def sentiment_workbook(
    request: Request,
    api: ApiDep,
    user: LimitedUserDep,
    file: Annotated[UploadFile, File(description="An .xlsx workbook.")],
    column: Annotated[
        str, Form(max_length=200, description="Header name or letter of the text column.")
    ],
    sheet: Annotated[str | None, Form(max_length=200)] = None,
    skill_id: Annotated[str, Form(max_length=100)] = "sentiment",
    engine: Annotated[schemas.Engine, Form()] = "auto",
) -> FileResponse:
    """Upload a workbook; get it back with label, score, confidence and aspects per row,
    plus a summary sheet with counts and a chart.

    The workbook is read and the scored copy written in a sandboxed worker process (memory
    limit, deadline) after the same container checks a synced file gets; a workbook over
    the size, cell or row limits is refused with the limit named. A client that hangs up
    stops the scoring at its next row or batch (499): a model does not go on scoring
    thousands of rows for nobody.
    """
    from copilot.office.scoring import score_workbook

    name = safe_name(file.filename or "workbook.xlsx")
    folder = Path(tempfile.mkdtemp(prefix="copilot-upload-"))
    src, out = folder / "upload.xlsx", folder / "scored.xlsx"

    def work(cancel: threading.Event) -> None:
        _save_upload(file, src, name, api.settings.max_file_bytes)
        score_workbook(api.runner, user.user_id, skill_id, src, column, sheet=sheet, out=out,
                       engine=engine, name=name, cancel=cancel)  # fmt: skip

    try:
        await streaming.until_done(request, api.run_pool, work, None, "scoring")
    except BaseException:
        _remove(folder)
        raise
    return FileResponse(
        out,
        media_type=XLSX,
        filename=f"{Path(name).stem[:80] or 'workbook'}-scored.xlsx",
        background=BackgroundTask(_remove, folder),
    )


def _save_upload(file: UploadFile, target: Path, name: str, max_bytes: int) -> None:
    """Copy the upload to ``target``, refusing it (413) once it passes ``max_bytes``."""
    size = 0
    with target.open("wb") as f:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > max_bytes:
                raise Problem(413, f"{name} is over the {max_bytes / 2**20:g} MB limit for a file.")
            f.write(chunk)


def safe_name(filename: str) -> str:
    """An upload's name as errors and the download show it: no folders, no odd characters."""
    base = Path(filename.replace("\\", "/")).name
    return re.sub(r"[^\w. ()-]+", "_", base).strip(" .")[:120] or "workbook.xlsx"


def _remove(folder: Path) -> None:
    for p in folder.iterdir():
        p.unlink(missing_ok=True)
    folder.rmdir()

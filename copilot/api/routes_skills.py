"""/v1/skills: list, read, edit, version and run skills (built-in and the user's own)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from copilot.api import schemas, streaming
from copilot.api.deps import Api, ApiDep, LimitedUserDep, UserDep
from copilot.api.problems import Problem
from copilot.skills.library.store import StoredSkill
from copilot.skills.library.testing import compare_samples
from copilot.skills.request import InputError, ItemNotFound, RunRequest, from_api
from copilot.skills.templates.builtin import builtin_ids

router = APIRouter(prefix="/v1/skills", tags=["skills"])


def detail(stored: StoredSkill) -> dict[str, Any]:
    t = stored.template
    return {
        "id": stored.id,
        "name": t.name,
        "description": t.description,
        "source": stored.source,
        "version": stored.version,
        "surfaces": list(t.metadata.surfaces),
        "task": t.metadata.task,
        "forked_from": stored.forked_from,
        "shadows_builtin": stored.source == "personal" and stored.id in builtin_ids(),
        "text": stored.text,
        "inputs": [
            {
                "name": name,
                "type": spec.type,
                "description": spec.description,
                "default": spec.default,
                "required": spec.is_required,
            }
            for name, spec in t.inputs.items()
        ],
        "output_format": t.metadata.output.format,
        "retrieval": t.metadata.retrieval.enabled,
    }


@router.get("", response_model=list[schemas.SkillSummary])
def list_skills(api: ApiDep, user: UserDep, surface: str | None = None) -> list[dict[str, Any]]:
    """Built-in skills and the caller's personal ones (optionally only for one surface)."""
    return [info.__dict__ for info in api.runner.skills.list(user.user_id, surface=surface)]


@router.post("", response_model=schemas.SkillDetail, status_code=status.HTTP_201_CREATED)
def import_skill(body: schemas.ImportSkill, api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Import a `.prompty` file as a personal skill (validated; errors name the line)."""
    return detail(api.runner.skills.import_text(user.user_id, body.text, skill_id=body.id))


@router.get("/{skill_id}", response_model=schemas.SkillDetail)
def get_skill(
    skill_id: str, api: ApiDep, user: UserDep, version: int | None = None
) -> dict[str, Any]:
    return detail(api.runner.skills.get(user.user_id, skill_id, version))


@router.put("/{skill_id}", response_model=schemas.SkillDetail)
def save_skill(
    skill_id: str, body: schemas.SaveSkill, api: ApiDep, user: UserDep
) -> dict[str, Any]:
    """Save a new version of a personal skill."""
    return detail(api.runner.skills.save(user.user_id, skill_id, body.text, message=body.message))


@router.delete("/{skill_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_skill(skill_id: str, api: ApiDep, user: UserDep) -> Response:
    api.runner.skills.delete(user.user_id, skill_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{skill_id}/fork", response_model=schemas.SkillDetail, status_code=status.HTTP_201_CREATED
)
def fork_skill(
    skill_id: str, body: schemas.ForkSkill, api: ApiDep, user: UserDep
) -> dict[str, Any]:
    return detail(api.runner.skills.fork(user.user_id, skill_id, body.new_id))


@router.get("/{skill_id}/versions", response_model=list[schemas.SkillVersion])
def versions(skill_id: str, api: ApiDep, user: UserDep) -> list[dict[str, Any]]:
    return [v.__dict__ for v in api.runner.skills.history(user.user_id, skill_id)]


@router.post("/{skill_id}/revert", response_model=schemas.SkillDetail)
def revert(skill_id: str, body: schemas.RevertSkill, api: ApiDep, user: UserDep) -> dict[str, Any]:
    """Make an old version current again, as a new version (history is never rewritten)."""
    return detail(api.runner.skills.revert(user.user_id, skill_id, body.version))


@router.get("/{skill_id}/export", response_class=PlainTextResponse)
def export(
    skill_id: str, api: ApiDep, user: UserDep, version: int | None = None
) -> PlainTextResponse:
    text = api.runner.skills.export_text(user.user_id, skill_id, version)
    return PlainTextResponse(
        text,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{skill_id}.prompty"'},
    )


@router.get("/{skill_id}/samples")
def samples(skill_id: str, api: ApiDep, user: UserDep) -> dict[str, dict[str, Any]]:
    """Saved sample inputs that the test route re-runs."""
    return api.runner.skills.samples(user.user_id, skill_id)


@router.put("/{skill_id}/samples/{name}", status_code=status.HTTP_204_NO_CONTENT)
def save_sample(
    skill_id: str, name: str, body: schemas.SaveSample, api: ApiDep, user: UserDep
) -> Response:
    api.runner.skills.add_sample(user.user_id, skill_id, name, body.inputs)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{skill_id}/samples/{name}", status_code=status.HTTP_204_NO_CONTENT)
def delete_sample(skill_id: str, name: str, api: ApiDep, user: UserDep) -> Response:
    api.runner.skills.delete_sample(user.user_id, skill_id, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{skill_id}/test")
def test_skill(
    skill_id: str, body: schemas.TestSkill, api: ApiDep, user: LimitedUserDep
) -> list[dict[str, Any]]:
    """Re-run the saved samples on the current version and, if given, an edited text."""
    return compare_samples(
        api.runner,
        user.user_id,
        skill_id,
        candidate_text=body.candidate_text,
        engine=body.engine,
    )


def _request(
    api: Api, user_id: str, skill_id: str, body: schemas.RunSkill, *, dry_run: bool = False
) -> RunRequest:
    """The run request for ``body`` (``copilot.skills.request`` assembles every surface's)."""
    try:
        return from_api(
            lambda: api.runner.skills.get(user_id, skill_id).template,
            skill_id,
            state=api.workspace.state,
            owner=user_id,
            inputs=body.inputs,
            item_id=body.item_id,
            query=body.query,
            engine=body.engine,
            retrieval=body.retrieval,
            dry_run=dry_run,
            conversation=[(t.question, t.answer) for t in body.conversation],
        )
    except ItemNotFound as exc:
        raise Problem(404, f"No indexed item {exc.item_id!r}.") from None
    except InputError as exc:
        raise Problem(400, str(exc)) from None


@router.post(
    "/{skill_id}/run",
    response_model=schemas.RunOut,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def run_skill(
    skill_id: str, body: schemas.RunSkill, request: Request, api: ApiDep, user: LimitedUserDep
) -> Any:
    """Run a skill. Ask for `text/event-stream` to get events as it runs: `sources`,
    `delta` (text as it is written), then `done` (citations, usage) or `error`."""
    run = _request(api, user.user_id, skill_id, body)

    def work(emit: Any, cancel: Any) -> Any:
        return api.runner.run_request(user.user_id, run, on_event=emit, cancel=cancel)

    timeout = api.settings.run_timeout_s
    if "text/event-stream" in request.headers.get("accept", ""):
        return StreamingResponse(
            streaming.stream(api.run_pool, work, timeout),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return await streaming.run_json(request, api.run_pool, work, timeout)


@router.post("/{skill_id}/preview", response_model=schemas.PreviewOut)
def preview(
    skill_id: str, body: schemas.RunSkill, api: ApiDep, user: LimitedUserDep
) -> dict[str, Any]:
    """The dry run: exactly the messages that would be sent (redactions applied)."""
    run = _request(api, user.user_id, skill_id, body, dry_run=True)
    result = api.runner.run_request(user.user_id, run)
    return {
        "engine": result.engine,
        "model": result.model,
        "messages": [{"role": m.role, "content": m.content} for m in result.messages],
        "redactions": result.redactions,
        "sources": [streaming.source_out(s) for s in result.sources],
        "budget_tokens": result.budget_tokens,
    }


@router.post("/{skill_id}/read-ahead", response_model=schemas.ReadAheadOut)
def read_ahead(
    skill_id: str, body: schemas.RunSkill, api: ApiDep, user: LimitedUserDep
) -> dict[str, Any]:
    """Have the embedded model read this run's prompt now, while it is idle, so that the
    same run sent a moment later starts writing at once (on a CPU, reading a new mail is
    most of the wait). Outlook's pane sends it when it opens on a mail. Nothing is
    recorded; answers when the reading is done."""
    run = _request(api, user.user_id, skill_id, body)
    return {"status": api.runner.read_ahead(user.user_id, run)}

"""/v1/admin/finetune: dataset preview, start, status and cancel of fine-tuning jobs.

Admins only: a user id listed in ``settings.admins``; anyone else gets a 403 problem, and
the check runs before any data is read. A preview shows counts, diversity, what was
redacted, validation and the cost estimate, never the text of anyone's runs: residual
personal-data hits are listed by line and kind without the matched text, and contributing
users by number, not by id. Only opted-in users' runs are used (``copilot.finetune.consent``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from copilot.api.auth import Principal
from copilot.api.deps import ApiDep, UserDep
from copilot.api.problems import Problem
from copilot.finetune import jobs
from copilot.finetune.dataset import Dataset, build_dataset, write_dataset
from copilot.finetune.privacy import Pseudonymiser, dataset_policy
from copilot.finetune.validate import DEFAULT_EPOCHS, FinetuneError

router = APIRouter(prefix="/v1/admin/finetune", tags=["finetune"])
PRIVATE = ("examples_per_user",)  # ids of other users stay out of API answers


def admin(api: ApiDep, user: UserDep) -> Principal:
    """The caller, if an admin; a 403 problem otherwise."""
    if user.user_id not in api.settings.admins:
        raise Problem(403, "Fine-tuning is for admins: ask one to add your id to COPILOT_ADMINS.")
    return user


AdminDep = Annotated[Principal, Depends(admin)]


class DatasetIn(BaseModel):
    skill_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    user: str | None = Field(default=None, max_length=256, description="One user's runs.")
    all_users_with_consent: bool = False
    min_rating: int = Field(default=1, ge=-1, le=1)
    base_model: str = Field(default="gpt-4o-mini", min_length=1, max_length=200)
    epochs: int = Field(default=DEFAULT_EPOCHS, ge=1, le=50)
    max_user_share: float | None = Field(default=None, gt=0, lt=1)
    pseudonymise_settings_names: bool = False


class StartIn(DatasetIn):
    suffix: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,40}$")


def _build(api: Any, body: DatasetIn) -> Dataset:
    settings = api.settings
    names = Pseudonymiser(settings.redact_names) if body.pseudonymise_settings_names else None
    try:
        return build_dataset(
            api.runner.runs, body.skill_id, policy=dataset_policy(settings), user=body.user,
            all_users_with_consent=body.all_users_with_consent, min_rating=body.min_rating,
            pseudonyms=names, embedder=api.workspace.embedder,
            max_user_share=body.max_user_share, settings=settings, base_model=body.base_model,
            epochs=body.epochs,
        )  # fmt: skip
    except FinetuneError as exc:
        raise Problem(422, str(exc)) from None


def _public(dataset: Dataset) -> dict[str, Any]:
    report = {k: v for k, v in dataset.report.items() if k not in PRIVATE}
    report["residual"] = [{"file": f, **h.as_dict(with_text=False)} for f, h in dataset.hits]
    return report


def _service(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except jobs.ServiceError as exc:
        status = 404 if exc.status == 404 else 502  # a job the service does not know
        raise Problem(status, str(exc), code="finetune_service") from None
    except FinetuneError as exc:
        raise Problem(422, str(exc)) from None


@router.post("/preview")
def preview(body: DatasetIn, api: ApiDep, _: AdminDep) -> dict[str, Any]:
    """What a dataset would hold: counts, diversity, redactions, validation, cost."""
    return _public(_build(api, body))


@router.post("/jobs", status_code=201)
def start(body: StartIn, api: ApiDep, who: AdminDep) -> dict[str, Any]:
    """Build the dataset from approved runs, validate, upload and start a job."""
    dataset = _build(api, body)
    folder = api.settings.home_dir / "finetune"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    try:
        paths = write_dataset(dataset, folder / f"{body.skill_id}-{stamp}.jsonl")
    except FinetuneError as exc:
        raise Problem(422, str(exc), dataset=_public(dataset)) from None
    job = _service(
        jobs.start_job, api.settings, paths[0], body.base_model, epochs=body.epochs,
        suffix=body.suffix, validation=paths[1] if len(paths) > 1 else None,
    )  # fmt: skip
    return {"job": job, "dataset": _public(dataset), "started_by": who.user_id}


@router.get("/jobs")
def list_jobs(
    api: ApiDep, _: AdminDep, limit: Annotated[int, Query(ge=1, le=100)] = 20
) -> list[dict[str, Any]]:
    """The newest fine-tuning jobs."""
    return _service(jobs.list_jobs, api.settings, limit=limit)


@router.get("/jobs/{job_id}")
def status(job_id: str, api: ApiDep, _: AdminDep) -> dict[str, Any]:
    """A job's state and its newest events; `fine_tuned_model` once it succeeded."""
    job = _service(jobs.job_status, api.settings, job_id)
    job["events"] = _service(jobs.job_events, api.settings, job_id, limit=20)
    return job


@router.post("/jobs/{job_id}/cancel")
def cancel(job_id: str, api: ApiDep, _: AdminDep) -> dict[str, Any]:
    """Cancel a job that has not finished."""
    return _service(jobs.cancel_job, api.settings, job_id)

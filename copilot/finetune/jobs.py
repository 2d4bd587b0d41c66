"""Fine-tuning jobs through the openai SDK: upload files, start, watch, cancel, list.

The client is built from the same settings as the skill engine (``openai_engine``): Azure
OpenAI when ``llm_azure_endpoint`` is set (its fine-tuning API has the same shape under
``/openai/…`` with an ``api-version``), else OpenAI or a compatible server at
``llm_base_url``. The SDK's own retries are on here (jobs are not streamed, and a repeated
GET is harmless); a POST that creates a job is not repeated by us.

A training file is validated before it is uploaded: a format error found by the service
after the upload costs a queue slot and an hour; found here, it costs a second and names
the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import openai

from copilot.finetune.validate import (
    DEFAULT_EPOCHS,
    FinetuneError,
    Validation,
    max_tokens_of,
    validate_file,
)

SUFFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_EVENTS = 100
MAX_LIST = 100
TERMINAL = ("succeeded", "failed", "cancelled")


class ServiceError(FinetuneError):
    """The fine-tuning service refused or failed a request (or could not be reached)."""

    kind = "finetune_service"
    status = 502
    title = "The fine-tuning service failed"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, status=404 if status == 404 else 502)  # 404: an unknown job
        self.upstream_status = status  # the service's HTTP status, None when it was not reached


def client_for(settings: Any) -> openai.OpenAI:
    """An SDK client for the configured LLM server, like ``OpenAIEngine`` builds one."""
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    timeout = settings.llm_timeout_s
    if settings.llm_azure_endpoint:
        if not key:
            raise FinetuneError("Azure OpenAI needs an API key: set COPILOT_LLM_API_KEY")
        return openai.AzureOpenAI(
            azure_endpoint=settings.llm_azure_endpoint,
            api_version=settings.llm_azure_api_version,
            api_key=key,
            timeout=timeout,
            max_retries=2,
        )
    if settings.llm_base_url or key:
        return openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=key or "not-needed",
            timeout=timeout,
            max_retries=2,
        )
    raise FinetuneError(
        "no LLM server is configured: set COPILOT_LLM_API_KEY (OpenAI), "
        "COPILOT_LLM_AZURE_ENDPOINT or COPILOT_LLM_BASE_URL"
    )


def _call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """One SDK call; its errors become a FinetuneError that says what failed."""
    try:
        return fn(*args, **kwargs)
    except openai.APIStatusError as e:
        detail = _detail(e)
        raise ServiceError(
            f"{what} failed: HTTP {e.status_code}: {detail}", e.status_code
        ) from None
    except openai.APIConnectionError as e:
        raise ServiceError(f"{what} failed: cannot reach the server ({e})") from None
    except openai.APIError as e:
        raise ServiceError(f"{what} failed: {e.message[:300]}") from None


def _detail(e: openai.APIStatusError) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or e.message)[:300]


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise FinetuneError(f"invalid job id {job_id!r}")
    return job_id


def upload(client: openai.OpenAI, path: Path) -> str:
    """Upload a JSONL file with purpose "fine-tune"; returns the file id."""
    with path.open("rb") as f:
        uploaded = _call(f"uploading {path.name}", client.files.create, file=(path.name, f),
                         purpose="fine-tune")  # fmt: skip
    return str(uploaded.id)


def checked(path: Path, settings: Any) -> Validation:
    """Validate a file about to be uploaded; FinetuneError naming the first lines if bad."""
    result = validate_file(path, max_tokens=max_tokens_of(settings))
    if not result.ok:
        lines = "; ".join(f"line {n}: {p}" for n, p in result.errors[:5])
        raise FinetuneError(f"{path.name} is not a valid training file ({lines})")
    return result


def start_job(
    settings: Any,
    train: Path,
    base_model: str,
    *,
    epochs: int | None = DEFAULT_EPOCHS,
    suffix: str | None = None,
    validation: Path | None = None,
    client: openai.OpenAI | None = None,
) -> dict[str, Any]:
    """Validate, upload and start a job; returns it as ``job_info``."""
    if suffix is not None and not SUFFIX.fullmatch(suffix):
        raise FinetuneError("a suffix is 1-40 letters, digits, '-' or '_'")
    if epochs is not None and (isinstance(epochs, bool) or not 1 <= epochs <= 50):
        raise FinetuneError("epochs must be a whole number from 1 to 50")
    checked(train, settings)
    if validation is not None:
        checked(validation, settings)
    client = client or client_for(settings)
    request: dict[str, Any] = {"model": base_model, "training_file": upload(client, train)}
    if validation is not None:
        request["validation_file"] = upload(client, validation)
    if suffix is not None:
        request["suffix"] = suffix
    if epochs is not None:
        request["hyperparameters"] = {"n_epochs": epochs}  # Azure and OpenAI both take this
    return job_info(_call("starting the job", client.fine_tuning.jobs.create, **request))


def job_status(settings: Any, job_id: str, *, client: openai.OpenAI | None = None) -> dict:
    client = client or client_for(settings)
    job = _call(f"reading job {job_id}", client.fine_tuning.jobs.retrieve, check_job_id(job_id))
    return job_info(job)


def job_events(
    settings: Any, job_id: str, *, limit: int = 20, client: openai.OpenAI | None = None
) -> list[dict[str, Any]]:
    """The job's newest events first, as the service lists them."""
    client = client or client_for(settings)
    page = _call(
        f"reading events of {job_id}",
        client.fine_tuning.jobs.list_events,
        check_job_id(job_id),
        limit=max(1, min(limit, MAX_EVENTS)),
    )
    return [
        {"created_at": e.created_at, "level": e.level, "message": e.message}
        for e in list(page.data)[:MAX_EVENTS]
    ]


def cancel_job(settings: Any, job_id: str, *, client: openai.OpenAI | None = None) -> dict:
    client = client or client_for(settings)
    job = _call(f"cancelling job {job_id}", client.fine_tuning.jobs.cancel, check_job_id(job_id))
    return job_info(job)


def list_jobs(
    settings: Any, *, limit: int = 20, client: openai.OpenAI | None = None
) -> list[dict[str, Any]]:
    """The newest jobs (one page; the service pages with ``after``)."""
    client = client or client_for(settings)
    page = _call("listing jobs", client.fine_tuning.jobs.list, limit=max(1, min(limit, MAX_LIST)))
    return [job_info(j) for j in list(page.data)[:MAX_LIST]]


def job_info(job: Any) -> dict[str, Any]:
    """The fields a person needs, from the SDK's FineTuningJob."""
    error = getattr(job, "error", None)
    message = None
    if error is not None and (getattr(error, "message", None) or getattr(error, "code", None)):
        message = getattr(error, "message", None) or getattr(error, "code", None)
    hyper = getattr(job, "hyperparameters", None)
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "fine_tuned_model": job.fine_tuned_model,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "trained_tokens": job.trained_tokens,
        "epochs": getattr(hyper, "n_epochs", None) if hyper is not None else None,
        "error": message,
        "done": job.status in TERMINAL,
    }

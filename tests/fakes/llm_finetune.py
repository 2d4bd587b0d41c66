"""The files and fine-tuning jobs endpoints of the scripted LLM server (``llm_server``).

    with ScriptedLLM() as llm:
        llm.finetune.script("fail")            # outcomes of the next jobs, in order
        ...                                    # default: "succeed"

A job moves one step each time it is read: validating_files → running → its outcome
(succeeded with ``fine_tuned_model`` "ft:BASE:org:SUFFIX:ID", failed with an error, or
cancelled), so a test that polls sees every state. Served under ``/v1/…`` (OpenAI) and
``/openai/…`` (Azure OpenAI).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
from collections import deque
from typing import Any

OUTCOMES = ("succeed", "fail", "cancel")
MAX_BODY = 16 * 1024 * 1024
_IDS = itertools.count(1)


class FineTuning:
    """Uploaded files and jobs, all in memory; thread-safe."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # (method, path, body)
        self._outcomes: dict[str, str] = {}
        self._script: deque[str] = deque()
        self._lock = threading.Lock()

    def script(self, *outcomes: str) -> None:
        for o in outcomes:
            if o not in OUTCOMES:
                raise ValueError(f"outcome is one of {OUTCOMES}")
        with self._lock:
            self._script.extend(outcomes)

    # -- routing ----------------------------------------------------------------------------

    def handle(self, handler: Any, method: str) -> bool:
        """Answer the request if it is ours; False leaves it to the chat handler."""
        path = handler.path.split("?")[0].rstrip("/")
        match = re.fullmatch(r"/(?:v1|openai)(/files|/fine_tuning/jobs(?:/[^/]+)*)", path)
        if match is None:
            return False
        parts = match.group(1).strip("/").split("/")
        with self._lock:
            status, payload = self._route(handler, method, parts)
        handler._send_json(status, payload)
        return True

    def _route(self, handler: Any, method: str, parts: list[str]) -> tuple[int, Any]:
        if parts == ["files"] and method == "POST":
            return self._upload(handler)
        if parts[:2] != ["fine_tuning", "jobs"]:
            return 404, _error(404, "no such route")
        rest = parts[2:]
        body = _json_body(handler) if method == "POST" else None
        self.requests.append((method, handler.path, body))
        if not rest:
            if method == "POST":
                return self._create(body)
            return 200, self._list(handler.path)
        job = self.jobs.get(rest[0])
        if job is None:
            return 404, _error(404, f"fine-tuning job {rest[0]} not found")
        if rest[1:] == [] and method == "GET":
            self._advance(job)
            return 200, job
        if rest[1:] == ["events"] and method == "GET":
            events = list(reversed(self.events[job["id"]]))
            return 200, {"object": "list", "data": events, "has_more": False}
        if rest[1:] == ["cancel"] and method == "POST":
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return 400, _error(400, f"job {job['id']} has already {job['status']}")
            self._finish(job, "cancelled")
            return 200, job
        return 404, _error(404, "no such route")

    # -- files and jobs ---------------------------------------------------------------------

    def _upload(self, handler: Any) -> tuple[int, Any]:
        length = min(int(handler.headers.get("content-length") or 0), MAX_BODY)
        raw = handler.rfile.read(length)
        head = f"Content-Type: {handler.headers.get('content-type', '')}\r\n\r\n".encode()
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                filename = part.get_filename() or filename
            fields[name] = part.get_payload(decode=True)
        self.requests.append(("POST", handler.path, {"purpose": fields.get("purpose")}))
        if fields.get("purpose") != b"fine-tune" or "file" not in fields:
            return 400, _error(400, "send a file with purpose fine-tune")
        file_id = f"file-{next(_IDS)}"
        self.contents[file_id] = fields["file"]
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(fields["file"]),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": "fine-tune",
            "status": "processed",
        }
        return 200, self.files[file_id]

    def _create(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not body.get("model"):
            return 400, _error(400, "model is required")
        for key in ("training_file", "validation_file"):
            if body.get(key) is not None and body[key] not in self.files:
                return 400, _error(400, f"invalid {key}: {body[key]}")
        if body.get("training_file") is None:
            return 400, _error(400, "training_file is required")
        n = next(_IDS)
        job_id = f"ftjob-{n:06d}"
        hyper = body.get("hyperparameters") or {}
        self.jobs[job_id] = {
            "id": job_id,
            "object": "fine_tuning.job",
            "created_at": int(time.time()),
            "error": None,
            "fine_tuned_model": None,
            "finished_at": None,
            "hyperparameters": {"n_epochs": hyper.get("n_epochs", "auto"), "batch_size": "auto",
                                "learning_rate_multiplier": "auto"},
            "model": body["model"],
            "organization_id": "org-scripted",
            "result_files": [],
            "seed": 42,
            "status": "validating_files",
            "trained_tokens": None,
            "training_file": body["training_file"],
            "validation_file": body.get("validation_file"),
            "suffix": body.get("suffix"),
        }  # fmt: skip
        self.events[job_id] = []
        self._outcomes[job_id] = self._script.popleft() if self._script else "succeed"
        self._event(job_id, "info", f"Created fine-tuning job: {job_id}")
        return 200, self.jobs[job_id]

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] == "validating_files":
            job["status"] = "running"
            self._event(job["id"], "info", "Files validated, moving job to queued state")
        elif job["status"] == "running":
            outcome = self._outcomes[job["id"]]
            self._finish(job, {"succeed": "succeeded", "fail": "failed"}.get(outcome, "cancelled"))

    def _finish(self, job: dict[str, Any], status: str) -> None:
        job["status"], job["finished_at"] = status, int(time.time())
        if status == "succeeded":
            suffix = job.get("suffix") or "custom"
            job["fine_tuned_model"] = f"ft:{job['model']}:org:{suffix}:{job['id'][-6:]}"
            epochs = job["hyperparameters"]["n_epochs"]
            size = len(self.contents.get(job["training_file"], b""))
            job["trained_tokens"] = size // 4 * (epochs if isinstance(epochs, int) else 1)
            self._event(job["id"], "info", "The job has successfully completed")
        elif status == "failed":
            job["error"] = {
                "code": "invalid_training_file",
                "param": "training_file",
                "message": "scripted failure: the training file was rejected",
            }
            self._event(job["id"], "error", "The job failed")
        else:
            self._event(job["id"], "info", "Job cancelled")

    def _event(self, job_id: str, level: str, message: str) -> None:
        events = self.events[job_id]
        events.append({"id": f"ftevent-{job_id}-{len(events)}", "object": "fine_tuning.job.event",
                       "created_at": int(time.time()), "level": level, "message": message,
                       "type": "message"})  # fmt: skip

    def _list(self, path: str) -> dict[str, Any]:
        query = dict(re.findall(r"[?&]([^=&]+)=([^&]*)", path))
        limit = int(query.get("limit", 20))
        jobs = sorted(self.jobs.values(), key=lambda j: j["id"], reverse=True)
        return {"object": "list", "data": jobs[:limit], "has_more": len(jobs) > limit}


def _json_body(handler: Any) -> Any:
    length = min(int(handler.headers.get("content-length") or 0), MAX_BODY)
    try:
        return json.loads(handler.rfile.read(length) or b"null")
    except ValueError:
        return None


def _error(status: int, message: str) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}

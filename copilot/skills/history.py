"""Skill runs: what was asked, what was sent, what came back, and what the user thought of it.

Why keep the exact messages: when an answer is wrong, the first question is "what did the
model actually see?", and the answer must not depend on re-rendering a template that has
since changed. Feedback lives on the run so that thumbs-up runs (with the user's edits)
become few-shot examples and, later, fine-tuning data.

Feedback scale: thumbs, `rating` is -1 (down) or +1 (up); `approved(min_rating=1)` is the
thumbs-up runs. Size: a run is recorded after its answer was shown, so an oversized run is
truncated rather than refused (refusing would lose the record of what left the machine):
message contents and output are cut to their caps with a visible marker, oversized inputs,
data or citations are dropped (the inputs hash stays), and `truncated` is set. A run stores
at most about 2 MB. Truncated runs are never `approved()`: they are not what the user saw.

`keep_inputs=False` stores only the inputs' hash. The messages are still kept, and they
contain whatever the template put in them: that is the audit record of what was sent.

The table is ``skill_runs`` in ``copilot.db.schema``; ``open_engine`` creates it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine, Row

from copilot.db.schema import skill_runs
from copilot.errors import CopilotError

MAX_OUTPUT_BYTES = 768 * 1024
MAX_MESSAGES_BYTES = 768 * 1024  # all message contents together
MAX_SIDE_BYTES = 128 * 1024  # each of: inputs, data, citations (as JSON)
MAX_CHUNK_IDS = 1000
MAX_ERROR_CHARS = 8000
MAX_EDITED_BYTES = MAX_OUTPUT_BYTES
MAX_COMMENT_BYTES = 16 * 1024
MAX_LIST = 500
RATINGS = (-1, 1)
_SURROGATE = re.compile("[\ud800-\udfff]")
_MARK = "\n[… truncated by copilot: {n} bytes over the limit]"


class RunNotFound(CopilotError, KeyError):
    kind = "run_not_found"
    status = 404
    title = "I can't find that run"

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass
class RunRecord:
    user: str
    skill_id: str
    skill_version: str  # "builtin" or "v3"
    engine: str
    model: str | None
    inputs: dict[str, Any]
    inputs_hash: str
    messages: list[dict[str, Any]]  # [{"role", "content"}] exactly as sent (after redaction)
    output: str
    data: Any | None
    citations: list[dict[str, Any]]
    chunk_ids: list[str]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_ms: float
    status: Literal["ok", "error", "cancelled"]
    error: str | None = None
    redactions: dict[str, int] = field(default_factory=dict)
    id: str = ""
    created_at: float = 0.0
    rating: int | None = None
    edited_text: str | None = None
    comment: str | None = None
    feedback_at: float | None = None
    truncated: bool = False  # set by the store when a field was cut to its cap


def inputs_hash(inputs: dict[str, Any]) -> str:
    """sha256 of canonical JSON (sorted keys, no spaces), so equal inputs hash equal."""
    return hashlib.sha256(_json(inputs, "inputs", sort_keys=True).encode("utf-8")).hexdigest()


class RunStore:
    """Every run of every skill, each readable only by the user who ran it."""

    def __init__(self, engine: Engine, *, keep_inputs: bool = True) -> None:
        self.engine = engine
        self.keep_inputs = keep_inputs
        self._lock = threading.Lock()
        self._last = 0.0

    def record(self, run: RunRecord) -> str:
        """Store a run and return its id; sets the run's `id`, `created_at`, `inputs_hash`
        (computed from the inputs when empty) and `truncated`."""
        row = _row(run, self.keep_inputs)
        with self._lock:  # strictly increasing here, so pagination by time never skips a run
            self._last = max(time.time(), self._last + 1e-6)
            row["created_at"] = self._last
        run_id = row["id"] = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(skill_runs.insert().values(**row))
        run.id, run.created_at, run.truncated = run_id, row["created_at"], row["truncated"]
        run.inputs_hash = row["inputs_hash"]
        return run_id

    def get(self, user: str, run_id: str) -> RunRecord:
        query = select(skill_runs).where(skill_runs.c.owner == user, skill_runs.c.id == run_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:  # another user's run looks exactly like a missing one
            raise RunNotFound(f"no run {run_id!r}")
        return _record(row)

    def list(
        self,
        user: str,
        *,
        skill_id: str | None = None,
        limit: int = 50,
        before: float | None = None,
    ) -> list[RunRecord]:
        """The user's runs, newest first; pass the last one's `created_at` as `before`.

        `created_at` strictly increases within one RunStore, so no run is skipped or repeated
        between pages; two processes recording in the same microsecond could tie (and a page
        boundary on that tie would skip one), which at the scale of one user's runs we accept.
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIST:
            raise ValueError(f"limit must be a whole number from 1 to {MAX_LIST}")
        if before is not None and (isinstance(before, bool) or not isinstance(before, int | float)):
            raise ValueError(f"before must be a run's created_at (a number), not {before!r}")
        c = skill_runs.c
        query = select(skill_runs).where(c.owner == user)
        if skill_id is not None:
            query = query.where(c.skill_id == skill_id)
        if before is not None:
            query = query.where(c.created_at < before)
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    def feedback(
        self,
        user: str,
        run_id: str,
        *,
        rating: int | None = None,
        edited_text: str | None = None,
        comment: str | None = None,
    ) -> RunRecord:
        """Set the given feedback fields (others unchanged): rating -1 or +1, the user's own
        corrected text, a comment. Returns the updated run."""
        values: dict[str, Any] = {}
        if rating is not None:
            if isinstance(rating, bool) or not isinstance(rating, int) or rating not in RATINGS:
                raise ValueError(f"rating must be -1 (thumbs down) or 1 (thumbs up): {rating!r}")
            values["rating"] = rating
        if edited_text is not None:
            values["edited_text"] = _check_text(edited_text, "edited text", MAX_EDITED_BYTES)
        if comment is not None:
            values["comment"] = _check_text(comment, "comment", MAX_COMMENT_BYTES)
        if not values:
            raise ValueError("no feedback given: pass rating, edited_text or comment")
        c = skill_runs.c
        update = skill_runs.update().where(c.owner == user, c.id == run_id)
        with self.engine.begin() as conn:
            if not conn.execute(update.values(**values, feedback_at=time.time())).rowcount:
                raise RunNotFound(f"no run {run_id!r}")
        return self.get(user, run_id)

    def approved(
        self, skill_id: str, *, user: str | None = None, min_rating: int = 1, limit: int = 1000
    ) -> builtins.list[RunRecord]:
        """Successful, untruncated runs rated at least `min_rating`, newest first, with the
        user's edited text (when there is one) as `output`: what the user approved of.

        `user=None` reads every user's runs: for the operator's fine-tuning export, never
        for a request made on one user's behalf.
        """
        c = skill_runs.c
        query = select(skill_runs).where(
            c.skill_id == skill_id,
            c.rating >= min_rating,
            c.status == "ok",
            c.truncated.is_(False),
        )
        if user is not None:
            query = query.where(c.owner == user)
        query = query.order_by(c.created_at.desc(), c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            runs = [_record(r) for r in conn.execute(query)]
        return [replace(r, output=r.edited_text) if r.edited_text is not None else r for r in runs]

    def delete_user(self, user: str) -> int:
        """The user's right to erase: every run of theirs, with its feedback. Returns the count."""
        with self.engine.begin() as conn:
            return conn.execute(delete(skill_runs).where(skill_runs.c.owner == user)).rowcount


# -- rows ----------------------------------------------------------------------------------


def _row(run: RunRecord, keep_inputs: bool) -> dict[str, Any]:
    """Validate a run and turn it into a row, cutting oversized fields to their caps."""
    for name in ("user", "skill_id", "skill_version", "engine"):
        value = getattr(run, name)
        if not isinstance(value, str) or not value or len(value) > 256:
            raise ValueError(f"run {name} must be a non-empty string of at most 256 characters")
    if run.status not in ("ok", "error", "cancelled"):
        raise ValueError(f"run status must be ok, error or cancelled, not {run.status!r}")
    for name in ("prompt_tokens", "completion_tokens"):
        value = getattr(run, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"run {name} must be a whole number >= 0, not {value!r}")
    if not isinstance(run.inputs, dict):
        raise ValueError("run inputs must be a mapping of input names to values")
    if not isinstance(run.output, str):
        raise ValueError(f"run output must be text, not {type(run.output).__name__}")
    if isinstance(run.latency_ms, bool) or not isinstance(run.latency_ms, int | float):
        raise ValueError(f"run latency_ms must be a number, not {run.latency_ms!r}")

    cut = False
    inputs = _json(run.inputs, "inputs", sort_keys=True) if keep_inputs else None
    if inputs is not None and _size(inputs) > MAX_SIDE_BYTES:
        inputs, cut = None, True
    data = None if run.data is None else _json(run.data, "data")
    if data is not None and _size(data) > MAX_SIDE_BYTES:
        data, cut = None, True
    citations = list(run.citations)
    while citations and _size(_json(citations, "citations")) > MAX_SIDE_BYTES:
        citations, cut = citations[: len(citations) // 2], True
    messages, cut_messages = _fit_messages(run.messages)
    output, cut_output = _cut(_clean(run.output), MAX_OUTPUT_BYTES)
    error = None if run.error is None else _clean(str(run.error)[:MAX_ERROR_CHARS])
    chunk_ids = [str(c) for c in run.chunk_ids[:MAX_CHUNK_IDS]]
    cut = cut or cut_messages or cut_output or len(run.chunk_ids) > MAX_CHUNK_IDS
    return {
        "owner": run.user,
        "skill_id": run.skill_id,
        "skill_version": run.skill_version,
        "engine": run.engine,
        "model": run.model,
        "inputs": inputs,
        "inputs_hash": run.inputs_hash or inputs_hash(run.inputs),
        "messages": _json(messages, "messages"),
        "output": output,
        "data": data,
        "citations": _json(citations, "citations"),
        "chunk_ids": _json(chunk_ids, "chunk_ids"),
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "cost_usd": None if run.cost_usd is None else float(run.cost_usd),
        "latency_ms": float(run.latency_ms),
        "status": run.status,
        "error": error,
        "redactions": _json(dict(run.redactions), "redactions"),
        "truncated": cut,
        "rating": None,
        "edited_text": None,
        "comment": None,
        "feedback_at": None,
    }


def _record(r: Row[Any]) -> RunRecord:
    return RunRecord(
        user=r.owner,
        skill_id=r.skill_id,
        skill_version=r.skill_version,
        engine=r.engine,
        model=r.model,
        inputs=json.loads(r.inputs) if r.inputs is not None else {},
        inputs_hash=r.inputs_hash,
        messages=json.loads(r.messages),
        output=r.output,
        data=json.loads(r.data) if r.data is not None else None,
        citations=json.loads(r.citations),
        chunk_ids=json.loads(r.chunk_ids),
        prompt_tokens=r.prompt_tokens,
        completion_tokens=r.completion_tokens,
        cost_usd=r.cost_usd,
        latency_ms=r.latency_ms,
        status=r.status,
        error=r.error,
        redactions=json.loads(r.redactions),
        id=r.id,
        created_at=r.created_at,
        rating=r.rating,
        edited_text=r.edited_text,
        comment=r.comment,
        feedback_at=r.feedback_at,
        truncated=bool(r.truncated),
    )


def _fit_messages(messages: list[Any]) -> tuple[list[dict[str, str]], bool]:
    """Messages as plain dicts; if their contents exceed the cap, cut the longest ones first
    (a long document in the user message, not the short system prompt, gives way)."""
    plain = []
    for m in messages:  # dicts, or Message objects as the engines send them
        get = m.get if isinstance(m, dict) else lambda key, m=m: getattr(m, key, None)
        role, content = get("role"), get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError("each run message needs a text role and a text content")
        plain.append({"role": role, "content": _clean(content)})
    sizes = [_size(m["content"]) for m in plain]
    if sum(sizes) <= MAX_MESSAGES_BYTES:
        return plain, False
    low, high = 0, max(sizes)  # the largest per-message cap under which everything fits
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(s, mid) for s in sizes) <= MAX_MESSAGES_BYTES:
            low = mid
        else:
            high = mid - 1
    return [{**m, "content": _cut(m["content"], low)[0]} for m in plain], True


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """`text` in at most `limit` UTF-8 bytes, ending with a marker saying it was cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= limit:
        return text, False
    mark = _MARK.format(n=len(raw) - limit)
    keep = max(0, limit - _size(mark))
    return raw[:keep].decode("utf-8", "ignore") + (mark if keep else ""), True


def _clean(text: str) -> str:
    """Lone surrogates (from broken input) cannot be stored as UTF-8: make them U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _json(value: Any, what: str, *, sort_keys: bool = False) -> str:
    def dump(ensure_ascii: bool) -> str:
        return json.dumps(
            value,
            ensure_ascii=ensure_ascii,
            allow_nan=False,
            sort_keys=sort_keys,
            separators=(",", ":"),
        )

    try:
        text = dump(ensure_ascii=False)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # lone surrogates: JSON's \u escapes store them losslessly
        return dump(ensure_ascii=True)
    except (TypeError, ValueError, RecursionError) as e:
        raise ValueError(f"run {what} must be plain JSON data: {e}") from e


def _check_text(value: Any, what: str, limit: int) -> str:
    """Feedback comes from a person who can shorten it: refuse, don't truncate."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, not {type(value).__name__}")
    if _size(value) > limit:
        raise ValueError(f"{what} is over the {limit}-byte limit")
    return _clean(value)

"""Saved sample inputs of a skill: named inputs that `copilot skills test` re-runs.

Samples belong to a skill id, not to a version: they are what a user tries an edit on, so
they outlive edits (and may stop fitting a later version's inputs; the test run says so).
A sample is checked against the skill's declared inputs when saved, the same way ``render``
checks them, so a saved sample is one that could run. Caps: MAX_SAMPLES per skill of at
most MAX_SAMPLE_BYTES each.

These are plain functions over a connection: ``SkillStore`` resolves the skill (and so the
owner's access to it) and runs them inside its own retrying transaction.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from copilot.db.engine import upsert
from copilot.db.schema import skill_samples
from copilot.skills.library.types import SURROGATE, SampleNotFound, SkillError
from copilot.skills.templates.models import PY_TYPES, SkillTemplate

MAX_SAMPLES = 50
MAX_SAMPLE_BYTES = 256 * 1024

_SAMPLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")


def sample_json(template: SkillTemplate, skill_id: str, name: str, inputs: Any) -> str:
    """The sample as stored (JSON), after checking its name and its inputs."""
    if not isinstance(name, str) or not _SAMPLE_NAME.fullmatch(name):
        raise SkillError(
            f"invalid sample name {name!r}: use 1-64 letters, digits, spaces, '.', '-' or '_'"
        )
    if not isinstance(inputs, dict):
        raise SkillError("sample inputs must be a mapping of input names to values")
    declared = template.inputs
    unknown = sorted(str(k) for k in inputs if k not in declared)
    if unknown:
        known = ", ".join(declared) or "none"
        raise SkillError(
            f"skill {skill_id!r} has no input(s) {', '.join(map(repr, unknown))}; "
            f"its inputs are: {known}"
        )
    for key, spec in declared.items():
        if key not in inputs:
            if spec.is_required:
                raise SkillError(f"the sample is missing the required input {key!r}")
            continue
        value = inputs[key]
        wrong = not isinstance(value, PY_TYPES[spec.type]) or (
            spec.type == "number" and isinstance(value, bool)
        )
        if value is not None and wrong:
            raise SkillError(f"input {key!r} should be a {spec.type}, got {type(value).__name__}")
    try:
        data = json.dumps(inputs, ensure_ascii=False, allow_nan=False, sort_keys=True)
        if SURROGATE.search(data):  # JSON escapes keep them; UTF-8 columns cannot
            data = json.dumps(inputs, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as e:
        raise SkillError(f"sample inputs must be plain JSON data: {e}") from e
    size = len(data.encode("utf-8", "surrogatepass"))
    if size > MAX_SAMPLE_BYTES:
        raise SkillError(f"the sample is {size} bytes, over the {MAX_SAMPLE_BYTES}-byte limit")
    return data


def put_sample(
    conn: Connection, dialect: str, user: str, skill_id: str, name: str, data: str
) -> None:
    """Save (or replace) one sample, refusing a new name once the skill has MAX_SAMPLES."""
    s = skill_samples.c
    others = conn.execute(
        select(func.count()).where(s.owner == user, s.skill_id == skill_id, s.name != name)
    ).scalar_one()
    if others >= MAX_SAMPLES:
        raise SkillError(
            f"skill {skill_id!r} already has {MAX_SAMPLES} samples, the most kept: delete one first"
        )
    row: dict[str, Any] = {"owner": user, "skill_id": skill_id, "name": name, "inputs": data}
    row["created_at"] = time.time()
    conn.execute(upsert(skill_samples, row, ("owner", "skill_id", "name"), dialect))


def read_samples(conn: Connection, user: str, skill_id: str) -> dict[str, dict[str, Any]]:
    s = skill_samples.c
    query = select(s.name, s.inputs).where(s.owner == user, s.skill_id == skill_id)
    return {r.name: json.loads(r.inputs) for r in conn.execute(query.order_by(s.name))}


def delete_sample(conn: Connection, user: str, skill_id: str, name: str) -> None:
    s = skill_samples.c
    query = delete(skill_samples).where(s.owner == user, s.skill_id == skill_id, s.name == name)
    if not conn.execute(query).rowcount:
        raise SampleNotFound(f"skill {skill_id!r} has no sample {name!r}")


def delete_samples(conn: Connection, user: str, skill_id: str) -> None:
    """Every sample of a skill: when the skill itself is deleted."""
    s = skill_samples.c
    conn.execute(delete(skill_samples).where(s.owner == user, s.skill_id == skill_id))

"""`copilot skills test`: re-run a skill's saved sample inputs, before and after an edit.

A prompt change is judged on evidence: the same inputs through the saved version and the
edited text side by side, nothing saved and no run recorded until the user decides.
"""

from __future__ import annotations

from typing import Any

from copilot.llm.errors import LLMError
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.prepare import SkillInputError
from copilot.skills.runner import SkillRunner
from copilot.skills.library.store import StoredSkill
from copilot.skills.templates.render import TemplateError, parse_template

MAX_SAMPLES = 20


def candidate_skill(skill_id: str, text: str) -> StoredSkill:
    """An edited, unsaved version (validated: a broken edit fails here, with its line)."""
    return StoredSkill(
        id=skill_id,
        source="personal",
        version=None,
        text=text,
        template=parse_template(text, f"{skill_id}.prompty"),
        created_at=None,
        message="candidate",
        forked_from=None,
    )


def compare_samples(
    runner: SkillRunner,
    user: str,
    skill_id: str,
    *,
    candidate_text: str | None = None,
    engine: str = "auto",
) -> list[dict[str, Any]]:
    """One row per sample: its inputs and the output of the current (and candidate) skill."""
    current = runner.skills.get(user, skill_id)
    candidate = candidate_skill(current.id, candidate_text) if candidate_text else None
    samples: dict[str, dict[str, Any]] = {}
    if isinstance(current.template.sample, dict):
        samples["template"] = dict(current.template.sample)
    samples.update(runner.skills.samples(user, current.id))
    if not samples:
        raise ValueError(
            f"the skill {current.id!r} has no sample inputs: add one with "
            f"`copilot skills samples {current.id} --add NAME --set key=value`"
        )
    rows = []
    for name, inputs in list(samples.items())[:MAX_SAMPLES]:
        row: dict[str, Any] = {"sample": name, "inputs": inputs}
        row["current"] = _one(runner, user, current, inputs, engine)
        if candidate is not None:
            row["candidate"] = _one(runner, user, candidate, inputs, engine)
        rows.append(row)
    return rows


def _one(
    runner: SkillRunner, user: str, skill: StoredSkill, inputs: dict[str, Any], engine: str
) -> dict[str, Any]:
    try:
        result = runner.run(user, skill, inputs, engine=engine, record=False)
    except (TemplateError, SkillInputError, LocalEngineError, LLMError) as exc:
        return {"engine": engine, "text": "", "error": str(exc)}
    return {
        "engine": result.engine,
        "text": result.text,
        "citations": len(result.citations),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": result.latency_ms,
    }

"""`copilot skills test`: re-run a skill's saved sample inputs, before and after an edit.

A prompt change is judged on evidence: the same inputs through the saved version and the
edited text side by side, nothing saved and no run recorded until the user decides.

Two identical outputs need a reason, or they read as "the test did nothing": each row
says whether the rendered messages changed and which engine answered. The local engine
follows a skill's task and inputs, not its prompt text, so an edit of the wording cannot
change its output; a changed prompt with the same model answer is a different finding
from an edit that changed nothing the model sees. Different outputs come with a diff.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from copilot.llm.errors import LLMError
from copilot.llm.types import Message
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.library.store import StoredSkill
from copilot.skills.prepare import SkillInputError
from copilot.skills.request import InputError
from copilot.skills.runner import SkillRunner
from copilot.skills.templates.fence import TAG
from copilot.skills.templates.render import TemplateError, parse_template

MAX_SAMPLES = 20
MAX_DIFF_LINES = 200  # a diff longer than this is cut: it is there to be read
# Each render fences inputs with a fresh random name: not a change of the prompt.
_FENCE_NAME = re.compile(rf"\b{re.escape(TAG)}-[0-9a-f]{{8}}\b")


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
    """One row per sample: its inputs, the output of the current (and candidate) skill,
    and with a candidate a ``comparison`` (why the outputs are the same, or their diff)."""
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
        before, sent_before = _one(runner, user, current, inputs, engine)
        row["current"] = before
        if candidate is not None:
            after, sent_after = _one(runner, user, candidate, inputs, engine)
            row["candidate"] = after
            row["comparison"] = compare(before, after, sent_before, sent_after)
        rows.append(row)
    return rows


def compare(
    before: dict[str, Any],
    after: dict[str, Any],
    sent_before: Sequence[Message],
    sent_after: Sequence[Message],
) -> dict[str, Any]:
    """Whether two runs of one sample differ, and why, in words and as diffs."""
    same_messages = _as_text(sent_before) == _as_text(sent_after)
    same_output = before.get("text", "") == after.get("text", "")
    engines = before.get("engine"), after.get("engine")
    prompt_diff = "" if same_messages else _diff(_as_text(sent_before), _as_text(sent_after))
    output_diff = "" if same_output else _diff(before.get("text", ""), after.get("text", ""))
    failed = [label for label, side in (("current", before), ("candidate", after))
              if side.get("error")]  # fmt: skip
    if failed:
        why = f"The {' and '.join(failed)} run failed, so there is nothing to compare."
    elif engines[0] != engines[1]:
        why = f"Not comparable: the current version ran on {engines[0]}, the edit on {engines[1]}."
    elif not same_output:
        why = "The outputs differ (diff below)."
        if same_messages:
            why += (" The rendered messages are the same: the difference is the model's "
                    "(it does not answer the same prompt the same way every time).")  # fmt: skip
    elif same_messages:
        why = (f"Identical: the edit changes nothing in the messages the {engines[0]} engine "
               "gets, so it answers the same.")  # fmt: skip
    elif engines[0] == "local":
        why = ("Identical: the local engine does not read the prompt's wording, only the "
               "skill's task and inputs, so an edit of the text cannot change its output. "
               "The rendered messages did change (prompt diff below); run with --engine llm "
               "or embedded to see the edit's effect.")  # fmt: skip
    else:
        why = ("Identical output although the rendered messages changed (prompt diff below): "
               f"the {engines[0]} model answered both the same way.")  # fmt: skip
    return {
        "same_output": same_output,
        "same_messages": same_messages,
        "same_engine": engines[0] == engines[1],
        "explanation": why,
        "output_diff": output_diff,
        "prompt_diff": prompt_diff,
    }


def _one(
    runner: SkillRunner, user: str, skill: StoredSkill, inputs: dict[str, Any], engine: str
) -> tuple[dict[str, Any], list[Message]]:
    try:
        result = runner.run(user, skill, inputs, engine=engine, record=False)
    except (TemplateError, SkillInputError, InputError, LocalEngineError, LLMError) as exc:
        return {"engine": engine, "text": "", "error": str(exc)}, []
    return {
        "engine": result.engine,
        "text": result.text,
        "citations": len(result.citations),
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": result.latency_ms,
    }, list(result.messages)


def _as_text(messages: Sequence[Message]) -> str:
    text = "\n".join(f"── {m.role}\n{m.content}" for m in messages)
    return _FENCE_NAME.sub(f"{TAG}-…", text)


def _diff(before: str, after: str) -> str:
    lines = list(
        difflib.unified_diff(
            before.splitlines(), after.splitlines(), "current", "candidate", lineterm="", n=2
        )
    )
    if len(lines) > MAX_DIFF_LINES:
        lines = [*lines[:MAX_DIFF_LINES], f"… {len(lines) - MAX_DIFF_LINES} more diff lines"]
    return "\n".join(lines)

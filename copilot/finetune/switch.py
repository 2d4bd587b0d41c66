"""Point a skill at a (fine-tuned) model, and compare two models on a skill's samples.

For one user, ``use_model`` saves a new version of their personal skill (forking the
built-in first) whose Prompty ``model.configuration.name`` is the model: the skill runner
sends a template's own model name, and the version history keeps the switch, so
``copilot skills revert`` undoes it like any edit. For everyone, ``use_for_all`` writes
the admin's per-skill override (``overrides``), which the runner reads when a skill's
template names no model.

The front matter is re-written with PyYAML: values are kept, comments in the front matter
are not (the previous version keeps them, and revert brings them back). The body is kept
byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from copilot.finetune.overrides import check_model_name, clear_skill_model, set_skill_model
from copilot.finetune.validate import FinetuneError
from copilot.llm.errors import LLMError
from copilot.llm.usage import estimate_cost
from copilot.skills.engines.local.engine import LocalEngineError
from copilot.skills.library.store import SkillStore, StoredSkill
from copilot.skills.library.testing import MAX_SAMPLES, candidate_skill
from copilot.skills.prepare import SkillInputError
from copilot.skills.runner import SkillRunner
from copilot.skills.templates.render import TemplateError

MAX_INPUTS_BYTES = 1024 * 1024


def with_model(text: str, model: str) -> str:
    """The same `.prompty` text with its model set to ``model`` (every name key it has)."""
    check_model_name(model)
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise FinetuneError("the skill text does not start with YAML front matter")
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        raise FinetuneError("the skill's front matter is not closed by a '---' line")
    data = yaml.safe_load("".join(lines[1:end])) or {}
    if not isinstance(data, dict):
        raise FinetuneError("the skill's front matter is not a mapping")
    spec = data.get("model") or {}
    if not isinstance(spec, dict):
        raise FinetuneError("the skill's `model:` is not a mapping")
    conf = spec.get("configuration") or {}
    if not isinstance(conf, dict):
        raise FinetuneError("the skill's `model.configuration` is not a mapping")
    conf["name"] = model
    if "azure_deployment" in conf:
        conf["azure_deployment"] = model
    if "id" in spec:
        spec["id"] = model
    data["model"] = {**spec, "configuration": conf}
    front = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000)
    return "---\n" + front + "---\n" + "".join(lines[end + 1 :])


def use_model(store: SkillStore, user: str, skill_id: str, model: str) -> StoredSkill:
    """Save a version of the user's skill that runs on ``model`` (forking a built-in)."""
    skill = store.get(user, skill_id)
    if skill.source == "builtin":
        skill = store.fork(user, skill.id)
    try:
        text = with_model(skill.text, model)
    except yaml.YAMLError as e:
        raise FinetuneError(f"cannot read the skill's front matter: {e}") from e
    return store.save(user, skill.id, text, message=f"fine-tuned model {model}")


def use_for_all(engine: Any, skill_id: str, model: str | None, admin: str) -> None:
    """The admin's override for every user whose skill names no model; None clears it."""
    if model is None:
        clear_skill_model(engine, skill_id)
    else:
        set_skill_model(engine, skill_id, model, admin)


# -- compare two models ------------------------------------------------------------------------


def load_inputs(path: Path) -> dict[str, dict[str, Any]]:
    """Sample inputs from JSON: {"name": {inputs}, ...} or [{inputs}, ...]."""
    try:
        if path.stat().st_size > MAX_INPUTS_BYTES:
            raise FinetuneError(f"{path} is over {MAX_INPUTS_BYTES} bytes")
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FinetuneError(f"cannot read {path}: {e.strerror or e}") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise FinetuneError(f"{path} is not JSON: {e}") from e
    if isinstance(data, list):
        data = {str(i): v for i, v in enumerate(data, 1)}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise FinetuneError(f"{path}: give an object of named inputs, or a list of inputs")
    return {str(k): v for k, v in data.items()}


def saved_inputs(store: SkillStore, user: str, skill: StoredSkill) -> dict[str, dict[str, Any]]:
    samples: dict[str, dict[str, Any]] = {}
    if isinstance(skill.template.sample, dict):
        samples["template"] = dict(skill.template.sample)
    samples.update(store.samples(user, skill.id))
    return samples


def compare_models(
    runner: SkillRunner,
    user: str,
    skill_id: str,
    models: list[str],
    inputs: dict[str, dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One row per sample: each model's output, tokens and cost (nothing is recorded)."""
    if len(models) < 2 or len(set(models)) != len(models):
        raise FinetuneError("give two different models to compare (--model A --model B)")
    for m in models:
        check_model_name(m)
    skill = runner.skills.get(user, skill_id)
    samples = inputs if inputs is not None else saved_inputs(runner.skills, user, skill)
    if not samples:
        raise FinetuneError(
            f"the skill {skill.id!r} has no sample inputs: pass --inputs FILE.json or add one "
            f"with `copilot skills samples {skill.id} --add NAME --set key=value`"
        )
    variants = {m: candidate_skill(skill.id, with_model(skill.text, m)) for m in models}
    rows = []
    for name, values in list(samples.items())[:MAX_SAMPLES]:
        row: dict[str, Any] = {"sample": name, "inputs": values, "outputs": {}}
        for m, variant in variants.items():
            row["outputs"][m] = _one(runner, user, variant, values, m)
        rows.append(row)
    return rows


def _one(
    runner: SkillRunner, user: str, skill: StoredSkill, inputs: dict[str, Any], model: str
) -> dict[str, Any]:
    try:
        result = runner.run(user, skill, inputs, engine="llm", record=False)
    except (TemplateError, SkillInputError, LocalEngineError, LLMError) as exc:
        return {"model": model, "text": "", "error": str(exc)}
    cost, priced_as = result.cost_usd, result.model
    if cost is None and model.startswith("ft:"):  # "ft:BASE:org:suffix:id": the base's price
        base = model.split(":")[1]
        cost = estimate_cost(runner.settings, base, result.prompt_tokens, result.completion_tokens)
        priced_as = f"{base} (base price; fine-tuned inference usually costs more)"
    return {
        "model": model,
        "answered_by": result.model,
        "text": result.text,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost_usd": cost,
        "priced_as": priced_as if cost is not None else None,
        "latency_ms": result.latency_ms,
    }

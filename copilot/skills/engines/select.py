"""Which engine (and which model) answers a run, decided in one place.

``auto`` (the default of ``COPILOT_ENGINE`` and of every ``--engine``) prefers the best
writer the machine can reach: the configured language model (``llm``), else the packaged
model run by the copilot itself (``embedded``, when one is installed), else the extractive
``local`` engine, which needs nothing and always answers. An engine asked for by name that
cannot run is an error that says what to set, never a silent fallback: a user who asked
for a model must not get extracts believing they came from one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sqlalchemy import select
from sqlalchemy.engine import Engine as Database

from copilot.config import Settings
from copilot.db.schema import skill_models
from copilot.skills.engines.base import ENGINE_NAMES, ChatModel, Engine, EngineName
from copilot.skills.prepare import SkillInputError

EMBEDDED_MODULE = "copilot.skills.engines.embedded"
NO_LLM = (
    "no language model is configured: set COPILOT_LLM_BASE_URL (an OpenAI-compatible "
    "server), COPILOT_LLM_API_KEY (OpenAI) or COPILOT_LLM_AZURE_ENDPOINT, or use the local "
    "engine"
)
NO_EMBEDDED = (
    "no embedded model is installed: run `copilot model install` (or set "
    "COPILOT_LLM_MODEL_FILE to a GGUF file), or use the local engine"
)


def choose_engine(settings: Settings, requested: str = "auto") -> EngineName:
    """The engine for a run: ``requested`` by name, or for ``auto`` the setting
    ``COPILOT_ENGINE``, itself ``auto`` by default: llm → embedded → local."""
    wanted = requested if requested != "auto" else settings.engine
    if wanted == "llm":
        if not settings.llm_configured:
            raise SkillInputError(NO_LLM)
        return "llm"
    if wanted == "embedded":
        if not embedded_available(settings):
            raise SkillInputError(NO_EMBEDDED)
        return "embedded"
    if wanted == "local":
        return "local"
    if wanted != "auto":
        raise SkillInputError(
            f"unknown engine {wanted!r}: choose one of auto, {', '.join(ENGINE_NAMES)}"
        )
    if settings.llm_configured:
        return "llm"
    return "embedded" if embedded_available(settings) else "local"


def open_engine(name: EngineName, settings: Settings, *, llm: ChatModel | None = None) -> Engine:
    """The engine called ``name``. ``llm`` is the chat client of the ``llm`` engine when
    the caller already holds one (the API opens it once for every request)."""
    if name == "llm":
        from copilot.skills.engines.llm import open_llm

        return open_llm(settings, client=llm)
    if name == "embedded":
        module = _embedded_module()
        if module is None:
            raise SkillInputError(NO_EMBEDDED)
        engine: Engine = module.open_engine(settings)
        return engine
    from copilot.skills.engines.local.engine import LocalEngine

    return LocalEngine()


def embedded_available(settings: Settings) -> bool:
    """Whether the embedded engine can run here (a model installed or configured)."""
    module = _embedded_module()
    return module is not None and bool(module.available(settings))


def _embedded_module() -> ModuleType | None:
    """``copilot.skills.engines.embedded``, or None in a build without it. Only the
    absence of that very module counts: any other import error inside it is a bug and
    is raised."""
    try:
        return importlib.import_module(EMBEDDED_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == EMBEDDED_MODULE:
            return None
        raise


def skill_model(db: Database, skill_id: str) -> str | None:
    """The admin's per-skill model (``copilot finetune use --all-users``), or None.

    Read here, in the skills layer, from the table ``copilot.finetune.overrides`` writes:
    skills must not import the fine-tuning package, which sits above them.
    """
    with db.connect() as conn:
        return conn.execute(
            select(skill_models.c.model).where(skill_models.c.skill_id == skill_id)
        ).scalar_one_or_none()

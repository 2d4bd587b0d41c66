"""Where the evals run skills: a throwaway copilot home, and the engine they asked for.

Every eval that runs a skill (``sentiment`` on a model, ``injection``, ``summarise``) runs
the built-in skill as shipped, in a temporary ``COPILOT_HOME``: no index, no user data, no
admin's edited template, nothing recorded. Only the downloaded models are shared with the
real home, so nothing is exported or assembled again. The engine is chosen as for any run
(``engines.select``): ``local``, ``llm``, ``embedded``, or ``auto``; one that cannot run
here is an error naming what to set, never a silent fallback to another engine.

The embedded engine starts its model server in that temporary home; it is stopped when the
eval ends, so no 1.8 GB process outlives the folder it was started from.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from copilot.config import Settings
from copilot.skills.engines.base import ChatModel, EngineName
from copilot.skills.engines.select import choose_engine
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace

__all__ = ["MODEL_ENGINES", "chat_model", "eval_runner", "resolve_engine"]

# Engines with a language model behind them: a baseline and a judge can run on them.
MODEL_ENGINES: tuple[EngineName, ...] = ("llm", "embedded")


def resolve_engine(settings: Settings, requested: str) -> EngineName:
    """The engine an eval asking for ``requested`` runs on; ``SkillInputError`` (a
    ``CopilotError``) for an unknown name or an engine that cannot run here."""
    return choose_engine(settings, requested)


@contextmanager
def eval_runner(settings: Settings) -> Iterator[SkillRunner]:
    """A ``SkillRunner`` in a throwaway home beside ``settings``' models (see module doc)."""
    with tempfile.TemporaryDirectory(prefix="copilot-eval-") as tmp:
        throwaway = settings.model_copy(
            update={
                "home": Path(tmp),
                "models_dir_override": settings.models_dir,  # the ONNX export, the GGUF
                "database_url": None,
                "qdrant_url": None,
            }
        )
        try:
            with Workspace(throwaway) as ws:
                yield SkillRunner(ws)
        finally:
            _stop_model_server(throwaway)


def chat_model(runner: SkillRunner, engine: EngineName) -> ChatModel:
    """The chat client behind a model engine: for the unfenced baseline and the judge,
    which must run on the very model the skill ran on."""
    if engine == "llm":
        return runner.llm
    if engine == "embedded":
        from copilot.skills.engines.embedded import EmbeddedEngine

        opened = runner.engine("embedded")
        if isinstance(opened, EmbeddedEngine):
            return opened.chat
    raise ValueError(f"the {engine} engine has no language model to call directly")


def _stop_model_server(settings: Settings) -> None:
    """Stop the embedded model server this eval started in its throwaway home, if any."""
    try:
        from copilot.llm.embedded import server
    except ImportError:  # a build without the embedded engine
        return
    server.stop_owned(settings)

"""The ``embedded`` engine: the packaged model, run by the copilot itself.

It is the ``llm`` engine's ``ChatEngine`` over ``EmbeddedChat`` (the same OpenAI-compatible
client, pointed at the managed llama.cpp server), so prompts, techniques, streaming and
structured output behave exactly as with a cloud model. Its window is the one the running
server reports, and prompts stay on the machine (``remote`` is false: no redaction). While
another generation holds the model, the run hears its place in the queue as a
``("queue", {"position": n})`` event.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from copilot.config import Settings
from copilot.llm.embedded import models, server
from copilot.llm.embedded.catalogue import CATALOGUE, UnknownModelError, find
from copilot.llm.embedded.chat import EmbeddedChat, queue_listener
from copilot.llm.embedded.models import ModelFileError
from copilot.llm.errors import LLMError
from copilot.llm.retry import CPU_PROMPT_RATE
from copilot.llm.tokens import count_messages
from copilot.skills.engines.base import Answer, EngineName, Job, ReadAhead
from copilot.skills.engines.llm import ChatEngine, prompt, single_call

if TYPE_CHECKING:  # prepare imports the engines' base
    from copilot.skills.prepare import Prepared

log = logging.getLogger("copilot.embedded")

# The longest a read-ahead may hold the model, at its measured prompt rate, though never
# less than a long mail's prompt (the rate is a CPU's guess until the first call).
READ_AHEAD_MAX_S = 10.0
READ_AHEAD_MIN_TOKENS = 1_000


def available(settings: Settings) -> bool:
    """Whether the embedded engine can run here: llama.cpp is installed, and a packaged
    model is installed (right size; the hash is checked when the engine opens) or
    ``COPILOT_LLM_MODEL_FILE`` is set."""
    if not server.runtime_installed():
        return False
    if settings.llm_model_file is not None:
        return True
    if settings.embedded_model:
        try:
            return models.state(settings, find(settings.embedded_model)) == "installed"
        except UnknownModelError:
            return False
    return any(models.state(settings, m) == "installed" for m in CATALOGUE)


class EmbeddedEngine:
    """The ``Engine`` protocol for the embedded model (see the module docstring)."""

    name: EngineName = "embedded"
    remote = False

    def __init__(self, chat: EmbeddedChat, window: int) -> None:
        self.chat = chat
        self.window = window
        self._engine = ChatEngine(chat, name="embedded", window=window, remote=False)

    @property
    def model(self) -> str:
        return self.chat.model

    def answer(self, job: Job) -> Answer:
        on_event = job.on_event

        def heard(position: int) -> None:
            if on_event is not None:
                on_event("queue", {"position": position})

        token = queue_listener.set(heard)
        try:
            return self._engine.answer(job)
        finally:
            queue_listener.reset(token)

    def read_ahead(self, prep: Prepared) -> ReadAhead:
        """The model reads the run's first prompt if it is idle (``EmbeddedChat.read_ahead``).

        A run of several calls (a long document's parts, self-ask, a tree of thoughts) sends
        prompts that depend on earlier answers: nothing to read ahead. A prompt the model
        takes over ``READ_AHEAD_MAX_S`` to read (and over ``READ_AHEAD_MIN_TOKENS``) is not
        read either ("too_long"): a run that arrives meanwhile would wait for all of it. A
        model error is "failed", never raised: reading ahead is a hint, and the run itself
        reports what is wrong."""
        if not single_call(prep):
            return "not_needed"
        messages = prompt(prep)
        rate = self.chat.prompt_rate() or CPU_PROMPT_RATE
        if count_messages(messages) > max(READ_AHEAD_MIN_TOKENS, READ_AHEAD_MAX_S * rate):
            return "too_long"
        try:
            return "read" if self.chat.read_ahead(messages) else "busy"
        except LLMError as exc:
            log.info("Reading ahead failed (%s): %s", exc.kind, exc)
            return "failed"


def open_engine(settings: Settings) -> EmbeddedEngine:
    """The engine, with its server up (started if needed: 1–3 s for the 1.5B model) and
    its window read from it. ModelFileError names a missing or damaged model file;
    LLMError a server that would not start."""
    if not server.runtime_installed():
        raise ModelFileError(server.runtime_hint())
    chat = EmbeddedChat(settings, models.resolve(settings))
    return EmbeddedEngine(chat, chat.window)

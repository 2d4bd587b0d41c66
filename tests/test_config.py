"""Settings: secrets stay out of every printout of the settings, and are read where used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from copilot.config import Settings

SECRETS = {
    "COPILOT_LLM_API_KEY": "sk-live-llm-4b1d",
    "COPILOT_OPENAI_API_KEY": "sk-live-embed-77aa",
    "COPILOT_QDRANT_API_KEY": "qdrant-key-0c3e",
    "COPILOT_ENTRA_CLIENT_SECRET": "entra~secret~9f2",
}


def test_secrets_never_show_in_a_repr_a_dump_or_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = Settings(home=tmp_path)
    with caplog.at_level(logging.INFO):
        logging.getLogger("test").info("settings: %s", settings)
    shown = [repr(settings), str(settings), caplog.text, settings.model_dump_json()]
    shown.append(json.dumps(settings.model_dump(mode="json")))
    for text in shown:
        assert not [value for value in SECRETS.values() if value in text]
    assert settings.llm_api_key == SecretStr(SECRETS["COPILOT_LLM_API_KEY"])
    assert settings.entra_client_secret is not None
    assert settings.entra_client_secret.get_secret_value() == SECRETS["COPILOT_ENTRA_CLIENT_SECRET"]
    assert settings.llm_configured


def test_unset_and_empty_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_LLM_API_KEY", "")
    settings = Settings(home=tmp_path)
    assert settings.qdrant_api_key is None and settings.openai_api_key is None
    assert settings.llm_api_key is not None and not settings.llm_api_key.get_secret_value()
    assert not settings.llm_configured  # an empty key configures nothing

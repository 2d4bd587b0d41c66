"""Shared fixtures: every test gets its own COPILOT_HOME; the ONNX export is shared.

Exporting the embedding model to ONNX takes a few seconds, so all test sessions share
one derived-model folder inside the virtualenv (``COPILOT_MODELS_DIR``); everything else a
test writes lives under its own temporary folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from copilot.config import Settings

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = Path(sys.prefix) / "share" / "copilot-models"
os.environ.setdefault("COPILOT_MODELS_DIR", str(MODELS_DIR))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--office-files",
        default=os.environ.get("COPILOT_OFFICE_FILES"),
        help="Folder of real-world office files (../shared/data/office-files) to sync.",
    )


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("COPILOT_HOME", str(path))
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, parse_workers=2, parse_timeout_s=20, parse_memory_mb=1024)


@pytest.fixture
def cli_env(home: Path) -> dict[str, str]:
    """Environment for running the ``copilot`` command as a user would."""
    env = dict(os.environ)
    env["COPILOT_HOME"] = str(home)
    return env

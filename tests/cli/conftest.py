"""The command line as a user types it, in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def cli(home: Path) -> CliRunner:
    """A runner for ``copilot`` commands; ``home`` gives the test its own COPILOT_HOME."""
    return CliRunner()

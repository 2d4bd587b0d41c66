"""``copilot --help`` starts fast because it imports little: the import set, checked.

Why modules rather than seconds: a time depends on the machine and on what else runs, so a
timed test either fails on a busy machine or checks nothing on a fast one. What makes the
help slow is importing the configuration (pydantic-settings), the state store
(SQLAlchemy), the index and the models; none of it is needed to print help. The time
itself is measured by ``bench/cli_startup.py``.

Not in the list: pydantic itself. Typer (0.29) validates a subcommand's parameters with
pydantic ``TypeAdapter``s, so ``copilot sync --help`` loads pydantic whatever we import;
what we keep out is pydantic-settings and our configuration, built on it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = (
    "pydantic_settings",
    "sqlalchemy",
    "numpy",
    "onnxruntime",
    "tokenizers",
    "tiktoken",
    "qdrant_client",
    "llama_index",
    "httpx",
    "fastapi",
    "openai",
    "msal",
    "copilot.config",
    "copilot.workspace",
    "copilot.index.store",
    "copilot.api.cli_ops",
)

PROBE = """
import json, sys
from copilot.cli.app import app
try:
    app(sys.argv[1:], prog_name="copilot")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "heavy": sorted(m for m in json.loads(HEAVY) if m in sys.modules)}))
"""


def imported_by(home: Path, *argv: str) -> dict:
    """What ``copilot ARGV`` leaves imported (and its exit code), in a fresh interpreter."""
    code = f"HEAVY = {json.dumps(json.dumps(HEAVY))}\n{PROBE}"
    env = {"COLUMNS": "100", "PATH": "", "COPILOT_HOME": str(home), "USER": "ann"}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("sync", "--help"), ("sync", "outlook", "--help"), ("run", "--help"),
     ("finetune", "--help"), ("eval", "retrieval", "--help"), ("model", "--help")],
)  # fmt: skip
def test_help_imports_none_of_the_heavy_modules(home: Path, argv: tuple[str, ...]) -> None:
    assert imported_by(home, *argv) == {"code": 0, "heavy": []}


def test_the_probe_sees_a_heavy_import_when_there_is_one(home: Path) -> None:
    # `status` reads the configuration and the state store: the same probe must see that.
    seen = imported_by(home, "status", "--json")
    assert {"pydantic_settings", "copilot.config", "sqlalchemy"} <= set(seen["heavy"])

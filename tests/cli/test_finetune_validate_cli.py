"""``copilot finetune validate FILE`` needs no --base-model: it prices the default one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

COPILOT = Path(sys.executable).with_name("copilot")


def test_validate_prices_the_default_base_model(tmp_path: Path, cli_env) -> None:
    data = tmp_path / "train.jsonl"
    example = {"messages": [{"role": "user", "content": "Hi"},
                            {"role": "assistant", "content": "Hello [old] friend"}]}  # fmt: skip
    data.write_text("\n".join(json.dumps(example) for _ in range(10)) + "\n")
    done = subprocess.run(
        [str(COPILOT), "finetune", "validate", str(data), "--json"],
        env=cli_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["cost"]["base_model"] == "gpt-4o-mini"
    other = subprocess.run(
        [str(COPILOT), "finetune", "validate", str(data), "--json"],
        env={**cli_env, "COPILOT_FINETUNE_BASE_MODEL": "gpt-4.1-nano"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert json.loads(other.stdout)["cost"]["base_model"] == "gpt-4.1-nano"

"""What a fresh API process pays the first time for each thing every run needs, beside the
second time (``copilot/api/warm.py`` makes them before a process serves; docs/benchmarks.md,
"The first burst after a start"). JSON lines, one per piece: first and second wall ms.

In-process, no server, with the API app's modules imported as in a serving process: a
throwaway home, a model URL on loopback where nothing listens
(the engine's one question about the window fails at once), the embedder loaded first.

    .venv/bin/python bench/cold_start.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import copilot.api.app  # noqa: E402, F401  # what an API process has imported when it starts
from copilot.config import get_settings  # noqa: E402
from copilot.llm.openai_engine import OpenAIEngine  # noqa: E402
from copilot.llm.tokens import encoding  # noqa: E402
from copilot.skills.runner import SkillRunner  # noqa: E402
from copilot.workspace import Workspace  # noqa: E402

NOWHERE = "http://127.0.0.1:9/v1"  # the discard port: refused at once


def twice(name: str, piece: Callable[[], Any]) -> None:
    times = []
    for _ in range(2):
        began = time.perf_counter()
        piece()
        times.append(round((time.perf_counter() - began) * 1000, 1))
    print(json.dumps({"name": "cold_start", "piece": name, "first_ms": times[0],
                      "second_ms": times[1]}), flush=True)  # fmt: skip


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings(home=Path(tmp), llm_base_url=NOWHERE)
        with Workspace(settings) as ws:
            _ = ws.state, ws.embedder, ws.store
            twice("token encoding", encoding)
            twice("first query embedding", lambda: ws.embedder.embed_query("warm-up"))
            runner = SkillRunner(ws)
            twice("model client", lambda: runner.llm)
            client = runner.llm
            assert isinstance(client, OpenAIEngine)
            twice("the SDK's chat resources", client.warm_up)
            twice("engine (asks the server its window)", lambda: runner.engine("llm"))
            question = {"question": "What did the board decide about the Q3 budget?"}
            twice("ask's render, retrieval off",
                  lambda: runner.prepare("local:bench", "ask", question, engine="llm",
                                         retrieval=False))  # fmt: skip


if __name__ == "__main__":
    main()

"""What an API process makes before it serves, so its first burst of runs is not its slowest.

Every run needs some things once per process, each made by whichever run comes first while
the others wait for it (a lock, or the import lock): the token encoding (~0.1 s), the
embedder's first query, the model client (an SSL context, ~45 ms), the SDK's chat
resources (imported on first use, ~17 ms), the engine (it asks the server its window once,
``capabilities``), a template's first render (~10 ms). Made in a fresh process one by one,
~0.25 s; met by 20 concurrent runs after a start, they were the first burst's extra
(docs/benchmarks.md, "The first burst after a start").

Nothing is sent to the model, no run is recorded and nothing is searched (a worker's index
is its owner's, which may not be serving yet). A model engine that is not configured or
not reachable is left for a run to report (asking an unreachable server its window waits
at most ``capabilities.ASK_TIMEOUT_S``, 3 s, once); the embedded engine is not opened here
(that would start the model process, which ``copilot serve`` leaves to the first run that
needs it).
"""

from __future__ import annotations

import logging

from copilot.errors import CopilotError
from copilot.llm.tokens import encoding
from copilot.skills.engines.select import choose_engine
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace

log = logging.getLogger(__name__)

WARM_USER = "local:warm-up"  # reads built-in skills only; nothing is written for it
# Not draft: its first render searches the user's sent mail for examples of their voice.
BUILTINS = ("ask", "summarise", "sentiment")


def warm_up(workspace: Workspace) -> None:
    """The token encoding and the embedder's first query."""
    encoding()
    workspace.embedder.embed_query("warm-up")


def warm_runs(runner: SkillRunner) -> None:
    """On the ``llm`` engine: its client and the SDK's resources, the engine itself, and
    each built-in skill's first render from its template's sample, retrieval off."""
    if choose_engine(runner.settings, "auto") != "llm":
        return
    try:
        engine = runner.engine("llm")
        warm_client = getattr(getattr(engine, "client", None), "warm_up", None)
        if warm_client is not None:
            warm_client()
        for skill_id in BUILTINS:
            sample = runner.skills.get(WARM_USER, skill_id).template.sample
            if isinstance(sample, dict):
                runner.prepare(WARM_USER, skill_id, dict(sample), engine="llm", retrieval=False)
    except CopilotError as exc:  # a run will say it, to the person who asked
        log.info("warm-up of the model engine skipped: %s", exc)

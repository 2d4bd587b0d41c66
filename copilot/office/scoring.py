"""Score a workbook column with a sentiment skill and write the scored workbook.

Shared by `copilot run sentiment --file … --column …` and the API's upload route, so
both give the same workbook for the same file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from copilot.skills.request import InputError, main_input
from copilot.skills.engines.local.engine import sentiment_model
from copilot.skills.engines.select import choose_engine
from copilot.skills.runner import SkillRunner
from copilot.skills.engines.local.sentiment import aggregate
from copilot.skills.sentiment_io import score_texts
from copilot.office.xlsx import read_text_column, write_scored_workbook

MAX_LLM_ROWS = 2_000  # one model call per row: beyond this, use the local engine


def score_workbook(
    runner: SkillRunner,
    user: str,
    skill_id: str,
    src: Path,
    column: str,
    *,
    out: Path,
    sheet: str | None = None,
    engine: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``out`` and return the summary (counts, shares, mean score, top aspects)."""
    stored = runner.skills.get(user, skill_id)
    if stored.template.metadata.task != "sentiment":
        raise InputError(f"{skill_id!r} is not a sentiment skill: only those score a column")
    col = read_text_column(src, column, sheet=sheet)
    texts = [t for _, t in col.rows]
    if choose_engine(runner.settings, engine) == "local":
        model = sentiment_model(stored.template, runner.workspace.embedder)
        results = score_texts(texts, local=model.classify)
    else:
        if len(texts) > MAX_LLM_ROWS:
            raise InputError(
                f"{len(texts):,} rows is over the {MAX_LLM_ROWS:,}-row limit for the language "
                "model (one call per row): use the local engine or split the file"
            )
        name = main_input(stored.template)

        def one(text: str) -> Any:
            return runner.run(user, stored, {name: text}, engine="llm", record=False).data

        results = score_texts(texts, one=one, on_progress=on_progress)
    summary = aggregate(results)
    write_scored_workbook(src, out, col, results, summary=summary)
    return {"rows": len(results), "sheet": col.sheet, "column": col.column_letter, **summary}

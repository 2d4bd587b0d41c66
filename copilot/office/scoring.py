"""Score a workbook column with a sentiment skill and write the scored workbook.

Shared by `copilot run sentiment --file … --column …`, the API's upload route and the
Teams bot, so all give the same workbook for the same file. The workbook is a user's file:
reading its column and writing the scored copy both run in the sandbox worker
(``ingest.untrusted``: container checks, memory limit, deadline); only the column's text
and the scores pass through this process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from connectors.parsers.safety import XLSX
from copilot.errors import Cancelled
from copilot.ingest.untrusted import UntrustedFileError, read_limited, run_untrusted
from copilot.llm.errors import LLMError
from copilot.llm.openai_engine import OpenAIEngine
from copilot.office.xlsx import MAX_TEXT_ROWS, TextColumn, WorkbookError, read_column
from copilot.office.xlsx_scored import write_scored
from copilot.skills.engines.local.engine import sentiment_model
from copilot.skills.engines.select import choose_engine
from copilot.skills.library.store import StoredSkill
from copilot.skills.request import InputError, main_input
from copilot.skills.runner import SkillRunner
from copilot.skills.sentiment_chat import chat_labels
from copilot.skills.sentiment_io import aggregate, score_texts
from copilot.skills.sentiment_labels import Classifier, Reader, classifier_reader, read_labels

MAX_LLM_ROWS = 2_000  # one model call per row: beyond this, use the local engine
# The model reads each row and answers with a label token (the embedded model: ~0.6 s a
# row on two cores, ``skills.sentiment_labels``): 10,000 rows is under two hours.
MAX_LABEL_ROWS = 10_000
MAX_WORKBOOK_BYTES = 50 * 1024 * 1024
READ_S, WRITE_S = 30.0, 60.0  # the sandbox's deadlines for reading and for writing


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
    name: str | None = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Write ``out`` and return the summary (counts, shares, mean score, top aspects).

    ``name`` is what errors call the file (an upload's own name; default: ``src``'s).
    ``cancel`` set (a bot turn past its deadline) stops a model's scoring before its next
    row or batch with ``Cancelled``: nobody waits for the workbook, so the model is not
    kept busy for it.
    """
    stored = runner.skills.get(user, skill_id)
    if stored.template.metadata.task != "sentiment":
        raise InputError(f"{skill_id!r} is not a sentiment skill: only those score a column")
    name = name or src.name
    limit = min(runner.settings.max_file_bytes, MAX_WORKBOOK_BYTES)
    try:  # read once: both passes see the same bytes
        data = read_limited(src, name, limit)
    except UntrustedFileError as exc:
        raise WorkbookError(str(exc), status=exc.status, kind=exc.kind) from exc
    col: TextColumn = _sandboxed(read_column, data, name, column, sheet, MAX_TEXT_ROWS,
                                 max_bytes=limit, timeout_s=READ_S)  # fmt: skip
    texts = [t for _, t in col.rows]
    engine_name = choose_engine(runner.settings, engine)
    lines: dict[str, str] = {}  # the Summary sheet's own, beside the skill and engine
    notes: list[str] = []  # limits the scoring met, in the summary and on the sheet
    results: list[Any] | None = None
    if engine_name == "local":
        model = sentiment_model(stored.template, runner.workspace.embedder)
        results = score_texts(texts, local=model.classify)
    elif (read := _label_reader(runner, engine_name, stored, cancel)) is not None:
        _check_rows(len(texts), MAX_LABEL_ROWS, "the model (one label read per row)")
        try:
            labelled = read_labels(read, texts, on_progress=on_progress, cancel=cancel)
        except LLMError as exc:
            if exc.kind != "unsupported":
                raise
            notes.append("the model's server gives no token probabilities, so each row was "
                         "run through the skill's prompt")  # fmt: skip
        else:
            results = labelled.results
            lines["method"] = "the label the model answers first, for each text and clause"
            notes += [note] if (note := labelled.note()) else []
    if results is None:
        _check_rows(len(texts), MAX_LLM_ROWS, "the language model (one call per row)")
        main = main_input(stored.template)

        sent = 0

        def one(text: str) -> Any:
            nonlocal sent
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"the scoring stopped after {sent:,} of {len(texts):,} texts")
            sent += 1
            run = runner.run(user, stored, {main: text}, engine=engine_name, record=False)
            return run.data

        results = score_texts(texts, one=one, on_progress=on_progress)
    summary = aggregate(results)
    about = {"skill": skill_id, "engine": engine_name, **lines}
    if notes:
        about["note"] = " ".join(notes)
    _sandboxed(write_scored, data, name, out, col, list(results), about,
               max_bytes=limit, timeout_s=WRITE_S)  # fmt: skip
    return {"rows": len(results), "sheet": col.sheet, "column": col.column_letter, **summary,
            **({"notes": notes} if notes else {})}  # fmt: skip


def _check_rows(rows: int, limit: int, what: str) -> None:
    if rows > limit:
        raise InputError(
            f"{rows:,} rows is over the {limit:,}-row limit for {what}: use the local engine "
            "or split the file"
        )


def _label_reader(
    runner: SkillRunner, engine: str, skill: StoredSkill, cancel: threading.Event | None
) -> Reader | None:
    """How labels are read off the model's first answer token, or None to run the skill
    per row: on the embedded model when its chat format is ChatML, which the label prompt
    is written in (both packaged models; another model file scores row by row); on the
    ``llm`` engine through its OpenAI-compatible client (``sentiment_chat``: the server's
    ``logprobs``), with the skill's own model."""
    if engine == "embedded":
        chat = getattr(runner.engine("embedded"), "chat", None)
        if chat is None or not chat.start().chatml:
            return None
        classifier: Classifier = chat
        return classifier_reader(classifier, skill.template)
    client = getattr(runner.engine(engine), "client", None) if engine == "llm" else None
    if not isinstance(client, OpenAIEngine):
        return None
    return chat_labels(client, skill.template, model=runner.model_for(skill), cancel=cancel)


def _sandboxed(reader: Any, data: bytes, name: str, *args: Any, **limits: Any) -> Any:
    """``reader(data, name, *args)`` in the sandbox; its refusal as a ``WorkbookError``."""
    try:
        return run_untrusted(reader, data, name, *args, media_type=XLSX, **limits)
    except UntrustedFileError as exc:
        raise WorkbookError(str(exc), status=exc.status, kind=exc.kind) from exc


def summary_table(summary: dict[str, Any]) -> str:
    """``score_workbook``'s summary as a short table for a terminal: texts per label with
    their share, the mean score, and the most mentioned aspects."""
    n = int(summary.get("n") or summary.get("rows") or 0)
    counts = summary.get("counts") or {}
    lines = [f"{'label':<10}{'texts':>7}{'share':>8}"]
    for label in ("positive", "negative", "neutral", "mixed"):
        count = int(counts.get(label, 0))
        lines.append(f"{label:<10}{count:>7}{(count / n if n else 0.0):>8.0%}")
    lines.append(f"{'total':<10}{n:>7}    mean score {float(summary.get('mean_score') or 0):+.2f}")
    aspects = summary.get("aspects") or []
    if aspects:
        lines += ["", f"{'aspect':<24}{'mentions':>9}{'mean':>7}"]
        for a in aspects[:5]:
            mean = a.get("mean_score")
            shown = "" if mean is None else f"{mean:+.2f}"
            lines.append(f"{str(a['aspect'])[:23]:<24}{a['mentions']:>9}{shown:>7}")
    lines += [f"Note: {note}" for note in summary.get("notes") or []]
    return "\n".join(lines)

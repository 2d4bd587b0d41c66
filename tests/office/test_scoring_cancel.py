"""A workbook scored by a configured model, row by row, stops when its caller gives up
(the Teams bot past its deadline sets ``cancel``): no row after that reaches the model,
and no scored workbook is written."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from copilot.config import Settings
from copilot.errors import Cancelled
from copilot.office.scoring import score_workbook
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace
from tests.fakes.builders_office import column_xlsx
from tests.fakes.llm_server import Reply, ScriptedLLM


def test_a_cancelled_workbook_sends_no_more_rows(
    llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    calls: list[object] = []

    def answer(request: object) -> Reply:
        calls.append(request)
        return Reply.json({"label": "positive", "score": 0.8, "aspects": []})

    llm.responder = answer
    src, out = tmp_path / "feedback.xlsx", tmp_path / "scored.xlsx"
    src.write_bytes(column_xlsx("Review", [f"Order {i} arrived on time." for i in range(10)]))
    cancel = threading.Event()

    def progress(done: int, total: int) -> None:
        if done == 3:
            cancel.set()  # the deadline passes while the third row is scored

    with Workspace(llm_settings) as ws, pytest.raises(Cancelled, match="3 of 10 texts"):
        score_workbook(SkillRunner(ws), "anna", "sentiment", src, "Review", out=out,
                       engine="llm", on_progress=progress, cancel=cancel)  # fmt: skip
    # One label read (this server sends no logprobs, so the rows run through the skill),
    # then three rows.
    label_reads = [c for c in calls if isinstance(c, dict) and c.get("logprobs")]
    assert len(label_reads) == 1 and len(calls) == 4 and not out.exists()


def test_a_cancel_ends_a_chat_label_batch_in_flight(
    llm_settings: Settings, llm: ScriptedLLM, tmp_path: Path
) -> None:
    """Label reads on a server with logprobs go four at a time: a cancel while a batch is
    in flight ends the reads waiting on the server, and no batch after it is sent."""
    cancel = threading.Event()
    seen: list[object] = []

    def answer(request: object) -> Reply:
        seen.append(request)
        if len(seen) == 6:
            cancel.set()  # the bot's deadline passes mid-batch
        return Reply.text("positive", chunks=1, first_delay=0.3,
                          alternatives=(("positive", -0.1), ("negative", -2.4)))  # fmt: skip

    llm.responder = answer
    src, out = tmp_path / "feedback.xlsx", tmp_path / "scored.xlsx"
    src.write_bytes(column_xlsx("Review", [f"Order {i} arrived on time." for i in range(40)]))
    with Workspace(llm_settings) as ws, pytest.raises(Cancelled, match="after 0 of 40 texts"):
        score_workbook(SkillRunner(ws), "anna", "sentiment", src, "Review", out=out,
                       engine="llm", cancel=cancel)  # fmt: skip
    assert len(seen) < 16 and not out.exists()  # not even the first batch of 16 was read

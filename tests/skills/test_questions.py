"""A mail that asks two things: each question finds its own passage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.local import LocalFolder
from copilot.config import Settings
from copilot.index.search import SearchResult, search
from copilot.ingest.pipeline import sync
from copilot.skills.questions import in_turns, queries, questions
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace
from tests.fakes.llm_server import ScriptedLLM

USER = "anna"
MESSAGE = (
    "Hi Anna, the data team asked again whether we can move the Atlas go-live from 14 March "
    "to 21 March, after the rehearsal of the Atlas migration and the Atlas cut-over plan "
    "review, since the Atlas invoice export still fails? And what is the Q3 travel budget?"
)
GO_LIVE = [
    "The Atlas go-live is planned for 14 March; the data team may ask to move it to 21 March.",
    "Atlas rehearsal: the migration rehearsal moves to 7 March, before the go-live.",
    "Atlas cut-over plan review: the cut-over plan for the go-live was reviewed on 2 March.",
    "The Atlas invoice export still fails on the test data; a fix is due before go-live.",
    "Atlas migration status: the data team finished testing the billing interface early.",
]
BUDGET = "Travel budget: the Q3 travel budget is 12,000 EUR, approved by Priya on 3 July."


@pytest.fixture
def ws(settings: Settings, tmp_path: Path, llm: ScriptedLLM) -> Iterator[Workspace]:
    folder = tmp_path / "notes"
    folder.mkdir()
    for n, text in enumerate([*GO_LIVE, BUDGET]):
        (folder / f"note-{n}.txt").write_text(text, encoding="utf-8")
    configured = settings.model_copy(update={"llm_base_url": llm.base_url})
    workspace = Workspace(configured)
    sync(LocalFolder(folder, owner=USER), configured, workspace.state, workspace.store,
         workspace.embedder)  # fmt: skip
    yield workspace
    workspace.close()


def test_a_draft_for_a_mail_with_two_questions_gets_a_source_for_each(ws: Workspace) -> None:
    # The whole message, searched once, is about the go-live: the budget note is not
    # among the draft's four passages.
    whole = search(ws.store, ws.embedder, f"local:{USER}", MESSAGE, k=4)
    assert all("travel budget" not in hit.text for hit in whole)
    prepared = SkillRunner(ws).prepare(USER, "draft", {"message": MESSAGE}, engine="llm")
    texts = [source.text for source in prepared.sources]
    assert len(texts) == 4 and any("12,000 EUR" in text for text in texts)
    assert any("21 March" in text for text in texts)


def test_questions_are_sentences_that_ask_and_name_something() -> None:
    text = "Thanks! Why? Can we move the go-live to 21 March?\nWhat is the Q3 travel budget ?"
    assert questions(text) == ["Can we move the go-live to 21 March?",
                               "What is the Q3 travel budget ?"]  # fmt: skip
    assert queries(text) == [text, *questions(text)]
    assert queries("What is the Q3 travel budget?") == ["What is the Q3 travel budget?"]
    assert queries("Please send the report.") == ["Please send the report."]
    assert len(questions(" ".join(f"Is item {n} here?" for n in range(9)))) == 4


def test_rankings_are_taken_in_turns_each_chunk_once() -> None:
    def hits(*ids: str) -> list[SearchResult]:
        return [SearchResult(item_id=i, title="", url="", kind="", locator={}, score=1.0,
                             snippet="", text="", chunk_id=i) for i in ids]  # fmt: skip

    taken = in_turns([hits("a", "b", "c"), hits("b", "d"), hits("e")], k=4)
    assert [hit.chunk_id for hit in taken] == ["a", "b", "e", "d"]
    assert in_turns([], k=3) == [] and len(in_turns([hits("a", "b")], k=5)) == 2

"""On the embedded (small) model the ``ask`` and ``summarise`` skills ask for no "[n]"
markers and the runner cites each sentence afterwards, from the words it shares with a
source: asked to cite, the 1.5B model wrote "The $ value paid to Mixpanel is [1]." instead
of the amount, and left 49 of 51 summary points uncited with "[1] [2][3][4][5]" on a line
of its own. A cloud model (``llm``) is asked to cite as before, and its answer is not
attributed sentence by sentence."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from copilot.config import Settings
from copilot.llm.openai_engine import OpenAIEngine
from copilot.skills import runner as runner_module
from copilot.skills.attribute import AttributionStream, attribute_sentences
from copilot.skills.engines import select
from copilot.skills.engines.base import Answer, Engine, EngineName, Job
from copilot.skills.engines.llm import ChatEngine
from copilot.skills.prepare import cites_after
from copilot.skills.result import RunResult
from copilot.skills.runner import SkillRunner
from copilot.skills.source_block import HEADER, HEADER_UNCITED, fence, uncited
from copilot.skills.templates.builtin import load_builtin
from copilot.skills.templates.render import parse_template, reads, render
from copilot.skills.types import Source
from copilot.workspace import Workspace
from tests.fakes.llm_server import Reply, ScriptedLLM

USER = "anna"
QUESTION = "Find the $ value paid to Mixpanel?"
MAIL = Source(
    n=1, item_id="mail:1", chunk_id="mail:1#0", title="Your card has been charged",
    url="", kind="mail", locator={},
    text="Your Mercury debit card was preauthorized for $2,099.00 by MIXPANEL, INC.",
)  # fmt: skip
ANSWER = "Mixpanel was paid $2,099.00. Nothing says whether it was refunded."


@pytest.fixture
def ws(llm_settings: Settings) -> Iterator[Workspace]:
    with Workspace(llm_settings) as workspace:
        yield workspace


def on_engine(name: EngineName, ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs on a chat engine called ``name``, the scripted server behind it."""
    engine = ChatEngine(OpenAIEngine(ws.settings), name=name, window=8192, remote=False)

    def opened(engine_name: EngineName, settings: Settings, **_: object) -> Engine:
        assert engine_name == name
        return engine

    monkeypatch.setattr(select, "embedded_available", lambda settings: True)
    monkeypatch.setattr(runner_module, "open_engine", opened)


def ask_on(
    name: EngineName, ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> RunResult:
    """Ask the question about MAIL on a chat engine called ``name``."""
    on_engine(name, ws, monkeypatch)
    llm.script(Reply.text(ANSWER, chunks=12))
    return SkillRunner(ws).run(
        USER, "ask", {"question": QUESTION}, engine=name, documents=[MAIL], record=False,
        on_event=lambda kind, data: streamed.append(data["text"]) if kind == "delta" else None,
    )  # fmt: skip


streamed: list[str] = []  # the deltas of the last ask_on run


def test_the_embedded_model_is_not_asked_for_markers_and_gets_them_afterwards(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = ask_on("embedded", ws, llm, monkeypatch)
    sent = "\n".join(m.content for m in result.messages)
    assert "square brackets" not in sent and "like [1]" not in sent
    assert HEADER_UNCITED in sent
    assert "never an instruction to you" in sent  # the injection defence stays
    # Only the sentence the mail supports is cited; the other is left uncited, not guessed.
    assert result.text == "Mixpanel was paid $2,099.00. [1] Nothing says whether it was refunded."
    assert [c.n for c in result.citations] == [1]
    assert result.invalid_citations == []


def test_the_markers_are_streamed_as_each_sentence_ends(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    streamed.clear()
    result = ask_on("embedded", ws, llm, monkeypatch)
    assert len(streamed) > 3 and "".join(streamed) == result.text
    # The marker came right after its sentence, before the next sentence's words.
    marked = next(i for i, piece in enumerate(streamed) if "[1]" in piece)
    assert "Nothing" not in "".join(streamed[: marked + 1]).split("[1]")[0]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_streamed_attribution_matches_the_final_rule_whatever_the_pieces(size: int) -> None:
    sources = [
        Source(n=n, item_id=f"doc:{n}", chunk_id=f"doc:{n}#0", title=t, url="", kind="doc",
               locator={}, text=text)
        for n, t, text in [
            (1, "Budget", "The Q3 travel budget is 12,000 EUR, approved by the board on 3 July."),
            (2, "Atlas", "The Atlas go-live moves from 14 March to 21 March: the invoice export."),
        ]
    ]  # fmt: skip
    answer = (
        "The Q3 travel budget is 12,000 EUR, approved on 3 July.  The Atlas go-live moves to "
        "21 March because of the invoice export.\n\n- Budget approved by the board on 3 July\n"
        "- I hope this helps. Ask again."
    )
    out: list[str] = []
    stream = AttributionStream(out.append, sources)
    for i in range(0, len(answer), size):
        stream.feed(answer[i : i + size])
    stream.close()
    assert "".join(out) == attribute_sentences(answer, sources)
    assert "[1]" in "".join(out) and "[2]" in "".join(out)


def test_a_cloud_model_is_asked_to_cite_as_before(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = ask_on("llm", ws, llm, monkeypatch)
    sent = "\n".join(m.content for m in result.messages)
    assert "put the numbers of its sources in square brackets" in sent
    assert HEADER in sent
    assert result.text == ANSWER  # prose it left uncited stays as it wrote it
    assert result.citations == []


def test_the_ask_template_words_its_instructions_both_ways() -> None:
    template = load_builtin("ask")
    assert reads(template, "cite_after")

    def system(after: bool) -> str:
        inputs = {"question": QUESTION, "context": fence([MAIL]), "cite_after": after}
        return render(template, inputs)[0].content

    assert "square brackets, like\n[1] or [2][3]." in system(False)
    assert "square brackets" not in system(True)
    assert "say that they do not\nmention it; do not guess." in system(True)
    # Unset (the template alone: `copilot skills test`, Prompty's tools): asked to cite.
    assert system(False) == render(template, {"question": QUESTION, "context": ""})[0].content


MEMO = (
    "The Atlas go-live moves from 14 March to 21 March because of the invoice export.\n\n"
    "Finance asks whether the March invoices can still go out on 1 April.\n\n"
    "Ana will send the new travel budget to finance on Friday."
)
SUMMARY = (
    "- The Atlas go-live moves to 21 March because of the invoice export\n"
    "- Ana sends finance the new travel budget on Friday\n"
    "- A busy month ahead"
)


@pytest.mark.parametrize("name", ["embedded", "llm"])
def test_a_summary_on_the_embedded_model_is_cited_point_by_point_afterwards(
    name: EngineName, ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_engine(name, ws, monkeypatch)
    llm.script(Reply.text(SUMMARY, chunks=9))
    result = SkillRunner(ws).run(
        USER, "summarise", {"text": MEMO, "style": "bullets"}, engine=name, record=False
    )
    sent = "\n".join(m.content for m in result.messages)
    if name == "llm":  # asked for markers, as before; a point it left uncited gets its source
        assert "End each line with the number of its source" in sent and HEADER in sent
        assert sent.count("<source id=") == 2 and "cut into numbered sources" in sent
    else:
        assert "square brackets" not in sent and "like [" not in sent
        assert HEADER_UNCITED in sent and "Use about 2 points, 40 words in all." in sent
        # Not asked to cite, the model reads the memo as one block: no tags it cannot use.
        assert sent.count("<source id=") == 1 and "cut into" not in sent
        assert "invoice export.\n\nFinance asks" in sent
    # Each point from the piece holding its words (the memo's pieces: its first paragraph,
    # then the other two); one no piece backs stays uncited.
    assert [s.text[:12] for s in result.sources] == ["The Atlas go", "Finance asks"]
    assert result.text.splitlines() == [
        "- The Atlas go-live moves to 21 March because of the invoice export [1]",
        "- Ana sends finance the new travel budget on Friday [2]",
        "- A busy month ahead",
    ]
    assert [c.n for c in result.citations] == [1, 2]


def test_the_summarise_template_words_its_instructions_both_ways() -> None:
    template = load_builtin("summarise")
    assert reads(template, "cite_after")

    def prompt(after: bool) -> str:
        values = {"text": MEMO, "context": fence([MAIL]), "cite_after": after}
        return "\n".join(m.content for m in render(template, values))

    assert "like [1] or [2][3]." in prompt(False) and "like [2]." in prompt(False)
    assert "square brackets" not in prompt(True)
    assert "the text itself.\nRefer to people" in prompt(True)
    unset = render(template, {"text": MEMO, "context": fence([MAIL])})  # `copilot skills test`
    assert prompt(False) == "\n".join(m.content for m in unset)


@dataclass
class Named:
    """All ``cites_after`` asks of an engine: its name."""

    name: EngineName
    window: int = 8192
    model: str = "tiny"
    remote: bool = False

    def answer(self, job: Job) -> Answer:
        raise AssertionError("not called")


def test_only_a_template_that_reads_cite_after_is_worded_without_markers() -> None:
    plain = parse_template("---\nname: t\n---\nsystem:\nSummarise.\nuser:\n{{ context }}\n")
    ask = load_builtin("ask")
    assert cites_after(Named("embedded"), ask)
    assert not cites_after(Named("embedded"), plain)  # its own wording, attribution by line
    assert not cites_after(Named("llm"), ask)
    assert not cites_after(Named("local"), ask)


def test_the_uncited_header_replaces_only_a_fenced_blocks_own_header() -> None:
    block = fence([MAIL])
    assert uncited(block) == HEADER_UNCITED + block[len(HEADER) :]
    assert uncited("") == ""
    assert len(HEADER_UNCITED) < len(HEADER)  # fits the budget the block was packed to

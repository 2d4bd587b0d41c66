"""A model's summary is a share of the text it summarises, and ends where it has said
enough: asked for "about 5 points or 120 words" whatever the text, the 1.5B model summarised
a 300-word mail in 6–8 points, 730–1,000 characters (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from copilot.config import Settings
from copilot.llm.openai_engine import OpenAIEngine
from copilot.skills import runner as runner_module
from copilot.skills.engines import select
from copilot.skills.engines.base import Engine, EngineName
from copilot.skills.engines.llm import ChatEngine
from copilot.skills.result import RunResult
from copilot.skills.runner import SkillRunner
from copilot.skills.size import Size, count_words, cut, summary_size
from copilot.workspace import Workspace
from tests.fakes.llm_server import Reply, ScriptedLLM

SENTENCE = "Sentence {} of the mail says what was agreed on the migration."
MAIL = "From: Maria Lopez <maria@contoso.example>\nSubject: Atlas go-live\n\n" + " ".join(
    SENTENCE.format(i) for i in range(24)
)  # 295 words
EIGHT_POINTS = "\n".join(f"- Point {i} of the summary, with a few words [1]" for i in range(1, 9))


def words(n: int) -> str:
    return " ".join(["word"] * n)


def test_a_summary_is_a_share_of_its_text_within_the_chosen_length() -> None:
    medium = [summary_size({}, [words(n)], reads_size=True) for n in (60, 300, 600, 5000)]
    assert [(s.points, s.words) for s in medium if s] == [(2, 40), (4, 75), (5, 120), (5, 120)]
    short = summary_size({"length": "short"}, [words(300)], reads_size=True)
    long = summary_size({"length": "long"}, [words(5000)], reads_size=True)
    assert short == Size(points=3, words=45) and long == Size(points=10, words=250)
    # Several documents count together; source markers are not words.
    assert summary_size({}, [words(150), words(150)], reads_size=True) == medium[1]
    assert count_words("Revenue rose [1][2] in March. [3]") == 4


def test_only_bullets_and_paragraphs_of_a_template_that_asks_are_sized() -> None:
    for style in ("tldr", "subject", "action_items"):
        assert summary_size({"style": style}, [words(300)], reads_size=True) is None
    assert summary_size({}, [words(300)], reads_size=False) is None
    assert summary_size({"style": "paragraph"}, [words(300)], reads_size=True) == Size(
        points=4, words=75, style="paragraph"
    )


def test_a_list_is_cut_between_points_never_inside_one() -> None:
    size = Size(points=2, words=100)
    text = "Summary:\n- One [1]\n  - a detail\n- Two [2]\n- Three [3]\n- Four [4]"
    # Two points asked for, one more kept; a nested line is part of its point.
    assert cut(text, size) == "Summary:\n- One [1]\n  - a detail\n- Two [2]\n- Three [3]"
    assert cut("- One\n- Two", size) == "- One\n- Two"
    # Long points: no new point once the words asked for are half as many again.
    wordy = f"- {words(80)}\n- {words(80)}\n- short"
    assert cut(wordy, size) == f"- {words(80)}\n- {words(80)}"
    assert cut(wordy, None) == wordy


def test_a_paragraph_is_cut_at_the_first_sentence_end_past_its_words() -> None:
    size = Size(points=2, words=20, style="paragraph")
    text = f"{words(25)}. [1] {words(10)}! Then more. [2]"
    # 20 words asked for: 25 are not yet half as many again, 35 are.
    assert cut(text, size) == f"{words(25)}. [1] {words(10)}!"
    assert cut(f"{words(40)} without an end", size) == f"{words(40)} without an end"


@pytest.fixture
def ws(llm_settings: Settings) -> Iterator[Workspace]:
    with Workspace(llm_settings) as workspace:
        yield workspace


def summarise(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch, own: str | None = None
) -> tuple[RunResult, list[str]]:
    """Summarise MAIL with the built-in skill (or the user's ``own`` template) on a chat
    engine whose model writes EIGHT_POINTS."""
    engine = ChatEngine(OpenAIEngine(ws.settings), name="embedded", window=8192, remote=False)

    def opened(engine_name: EngineName, settings: Settings, **_: object) -> Engine:
        return engine

    monkeypatch.setattr(select, "embedded_available", lambda settings: True)
    monkeypatch.setattr(runner_module, "open_engine", opened)
    llm.script(Reply.text(EIGHT_POINTS, chunks=40, chunk_delay=0.02))
    shown: list[str] = []
    runner = SkillRunner(ws)
    if own is not None:
        runner.skills.save("anna", "my-summary", own)
    skill = "my-summary" if own else "summarise"
    result = runner.run(
        "anna", skill, {"text": MAIL}, engine="embedded", record=False,
        on_event=lambda kind, data: shown.append(data["text"]) if kind == "delta" else None,
    )  # fmt: skip
    return result, shown


def test_the_model_is_asked_for_a_share_and_stopped_once_it_has_said_enough(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, shown = summarise(ws, llm, monkeypatch)

    prompt = "\n".join(m.content for m in result.messages)
    assert "Use about 4 points, 75 words in all." in prompt
    assert "120 words" not in prompt
    # Four points asked for, one more kept; the stream was closed there.
    assert result.text.count("\n- ") + 1 == 5 and "Point 6" not in result.text
    assert "Point 6" not in "".join(shown)
    assert llm.requests[-1].disconnected.wait(2.0), "the model should stop writing"


def test_a_users_own_summary_template_without_size_is_left_as_it_was(
    ws: Workspace, llm: ScriptedLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = (
        "---\nname: My summary\ninputs:\n  text:\n    kind: string\n"
        "metadata:\n  task: summarise\n---\n"
        "system:\nSummarise.\n\nuser:\n{{ context }}\nAbout 5 points, please."
    )
    result, _ = summarise(ws, llm, monkeypatch, own=own)
    assert result.text.count("\n- ") + 1 == 8  # nothing cut: it never asked for a size

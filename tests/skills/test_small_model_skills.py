"""What makes the built-in skills work on a small local model: a stable cached prefix, a
reply that starts with its greeting, no citation shown that the answer will not keep, a
prompt budget a CPU reads in time, and map-reduce parts that stream and can be stopped."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterator

import pytest

from copilot.config import Settings
from copilot.errors import Cancelled
from copilot.index.search import SearchResult
from copilot.llm.types import Message
from copilot.skills import budget
from copilot.skills.citation_stream import CitationStream
from copilot.skills.citations import cite
from copilot.skills.mapreduce import summarise_long
from copilot.skills.reply import given_texts, not_quoted, prefill_for, sender_of
from copilot.skills.runner import SkillRunner
from copilot.skills.source_block import fence
from copilot.skills.templates.builtin import builtin_ids, load_builtin
from copilot.skills.templates.render import render
from copilot.skills.types import Source
from copilot.workspace import Workspace
from tests.fakes.llm_server import Reply, ScriptedLLM

USER = "anna"
MAIL = (
    "Subject: Q3 figures\nFrom: Maria Lopez <maria.lopez@example.com>\nTo: phillip@example.com"
    "\n\nHi Phillip, could you send me the Q3 budget figures by Friday? Thanks, Maria"
)


def source(n: int, text: str = "Some text.") -> Source:
    return Source(n=n, item_id=f"doc{n}", chunk_id=f"doc{n}#1", title=f"Doc {n}",
                  url="file:///doc.pdf", kind="pdf", locator={"page": n}, text=text)  # fmt: skip


@pytest.fixture
def ws(settings: Settings, llm: ScriptedLLM) -> Iterator[Workspace]:
    configured = settings.model_copy(
        update={"llm_base_url": llm.base_url, "llm_timeout_s": 2, "llm_max_retries": 0}
    )
    with Workspace(configured) as workspace:
        yield workspace


# -- the prompts ---------------------------------------------------------------------------


@pytest.mark.parametrize("skill_id", builtin_ids())
def test_the_system_message_is_the_same_whatever_the_inputs(skill_id: str) -> None:
    """The system message (persona, instructions, fixed examples) is the prefix llama.cpp's
    prompt cache keeps; only the user turn may change from one run to the next."""
    template = load_builtin(skill_id)
    first = render(template, {**(template.sample or {}), "context": fence([source(1)])})
    other = {name: "something else" for name, spec in template.inputs.items()
             if spec.type == "string"}  # fmt: skip
    second = render(template, {**other, "context": fence([source(2)])})
    strip_note = re.compile(r"\n\nEach <untrusted-[0-9a-f]+> element.*", re.S)  # random nonce
    assert strip_note.sub("", first[0].content) == strip_note.sub("", second[0].content)
    assert budget.fixed_prefix_tokens(template) > 20


@pytest.mark.parametrize("skill_id", builtin_ids())
def test_no_builtin_shows_a_citation_placeholder(skill_id: str) -> None:
    template = load_builtin(skill_id)
    inputs = {**(template.sample or {}), "context": fence([source(1)])}
    text = "".join(m.content for m in render(template, inputs))
    assert "[n]" not in text  # a small model writes it literally
    assert "untrusted data" not in text.lower()  # and quoted this as its answer


def test_a_reply_starts_with_the_senders_first_name(ws: Workspace, llm: ScriptedLLM) -> None:
    llm.script(Reply.text("Hi Maria,\n\nthe figures are attached [TODO: attach them]."))
    runner = SkillRunner(ws)

    dry = runner.run(USER, "draft", {"message": MAIL, "notes": "figures attached"},
                     engine="llm", retrieval=False, dry_run=True)  # fmt: skip
    assert dry.messages[-1] == Message("assistant", "Hi Maria,\n\n")  # what would be sent

    runner.run(USER, "draft", {"message": MAIL, "notes": "figures attached"}, engine="llm",
               retrieval=False)  # fmt: skip
    sent = llm.requests[-1].json["messages"]
    # OpenAI and Azure cannot continue a turn: the default asks for the first words instead.
    assert sent[-1]["role"] == "user"
    assert sent[-1]["content"].endswith("Begin your answer with exactly these words: Hi Maria,")
    assert "never the user" in sent[0]["content"]


@pytest.mark.parametrize(
    ("header", "first"),
    [
        ("From: Maria Lopez <maria@x.com>", "Maria"),
        ('From: "Lopez, Maria" <maria@x.com>', "Maria"),
        ("From: phillip.allen@enron.com", "Phillip"),
        ("From: =?utf-8?q?J=C3=B6rg?= <j@x.de>", "Jörg"),
    ],
)
def test_the_sender_comes_from_the_from_line(header: str, first: str) -> None:
    sender = sender_of(f"Subject: x\n{header}\n\nBody")
    assert sender is not None and sender.first_name == first


def test_no_prefill_for_a_text_that_is_not_a_mail() -> None:
    draft = load_builtin("draft")
    assert prefill_for(draft, {"message": "Rewrite this paragraph, please."}) is None
    assert prefill_for(draft, {"message": "", "notes": "x"}) is None
    # A mail whose sender has no name to greet still gets a greeting.
    assert prefill_for(draft, {"message": "From: pallen@enron.com\n\nHi"}) == "Hi,\n\n"
    # Quoted headers further down are not this mail's sender.
    assert sender_of("Thanks!\n\n-----\nFrom: Someone Else <s@x>") is None


def test_retrieval_for_a_reply_leaves_out_the_mail_being_answered() -> None:
    """Retrieval searches with the mail itself: its best hit is the mail, which the prompt
    already holds. The model should read it once."""

    def hit(n: int, text: str) -> SearchResult:
        return SearchResult(item_id=f"m{n}", title="t", url="", kind="mail", locator={},
                            score=1.0, snippet="", text=text, chunk_id=f"m{n}#1")  # fmt: skip

    body = MAIL.split("\n\n", 1)[1]
    results = [hit(1, body), hit(2, "The Q3 budget is 12,000 EUR, approved in July.")]
    kept = not_quoted(results, given_texts({"message": MAIL, "notes": "figures attached"}))
    assert [r.item_id for r in kept] == ["m2"]
    assert not_quoted(results, given_texts({"question": "Q3 budget?"})) == results


# -- streamed citations -----------------------------------------------------------------------

SOURCES = [source(1), source(2), source(3)]
ANSWERS = [
    "Revenue rose [1] and costs fell [9].\n- a [2, 9]\n- b [Source 3] c [4-5].",
    "Use `a[1]` in code [1]. Not [2024] nor [link](x) [1](http://x).",
    "```\ncode [9]\n```\nafter [9] text [1]",
    "【1†source】 and 【7】, [1,\n2] [10]",
    "a [9] [8] b [1][2] [9].",
    "Hi [TODO: date] and [a] [1",
    "word[9]more and word[1]more, glued[9] [9]x [1] [1] y [2][2]z end[9]",
    "Umsatz stieg[1] über [9]Plan; naïve_café [3]、【2】と[source 9]. Fin [1-2]",
    "a `b [1] c` d [1] e ```f [9] g``` h [9] i [1](j) k [1] (l) m [1]",
    "long " * 30 + "[1] and " + "more " * 30 + "[9]. " + "tail " * 20 + "[2]",
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_streamed_text_never_shows_a_citation_the_answer_drops(answer: str) -> None:
    final = cite(answer, SOURCES).text
    rng = random.Random(answer)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(answer)), rng.randint(0, min(12, len(answer) - 1))))
        shown: list[str] = []
        stream = CitationStream(shown.append, SOURCES)
        for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True):
            stream.feed(answer[a:b])
            assert final.startswith("".join(shown))  # never a piece the answer will not have
        stream.close()
        assert "".join(shown) == final


def test_a_long_paragraph_is_not_held_whole_while_it_streams() -> None:
    # Each delta is checked with what is still undecided; text before a safe point inside
    # a word is settled for good, so the work per delta stays small in a long paragraph.
    shown: list[str] = []
    stream = CitationStream(shown.append, SOURCES)
    answer = " ".join(f"word{n} [1] [9]" if n % 7 == 0 else f"word{n}" for n in range(400))
    for n in range(0, len(answer), 3):
        stream.feed(answer[n : n + 3])
        assert len(stream.held) < 40
    stream.close()
    assert "".join(shown) == cite(answer, SOURCES).text


def test_an_invalid_citation_is_never_streamed_in_a_run(ws: Workspace, llm: ScriptedLLM) -> None:
    llm.script(Reply.text("The budget is 12,000 EUR [1]. See also [5].", chunks=12))
    deltas: list[str] = []
    result = SkillRunner(ws).run(
        USER, "ask", {"question": "What is the budget?"}, engine="llm", retrieval=False,
        documents=[source(1, "The Q3 travel budget is 12,000 EUR.")],
        on_event=lambda kind, data: deltas.append(data["text"]) if kind == "delta" else None,
    )  # fmt: skip
    assert "".join(deltas) == result.text == "The budget is 12,000 EUR [1]. See also."
    assert result.invalid_citations == [5]


# -- the prompt budget -----------------------------------------------------------------------


def test_the_window_rules_a_fast_server() -> None:
    assert budget.prompt_budget(8192, 700) == 7492
    assert budget.prompt_budget(8192, 700, prompt_rate=None, first_token_s=20) == 7492


def test_a_slow_server_gets_what_it_reads_in_time_plus_the_cached_prefix() -> None:
    # 50 tokens/s for 20 s: 1,000 tokens to read, plus a 300-token prefix from the cache.
    assert budget.prompt_budget(8192, 700, prompt_rate=50, first_token_s=20,
                                cached_tokens=300) == 1300  # fmt: skip
    assert budget.prompt_budget(1024, 700, prompt_rate=50, first_token_s=20) == 324  # window
    # Time never starves the sources: a long mail to answer still leaves room for some,
    # as long as the window has it.
    assert budget.prompt_budget(8192, 700, prompt_rate=5, first_token_s=1,
                                fixed_tokens=2000) == 2000 + budget.MIN_TIME_SOURCES  # fmt: skip
    assert budget.prompt_budget(2048, 700, prompt_rate=5, first_token_s=1,
                                fixed_tokens=2000) == 2048 - 700  # fmt: skip


def test_the_run_budget_follows_the_measured_prompt_rate(ws: Workspace, llm: ScriptedLLM) -> None:
    runner = SkillRunner(ws)
    fast = runner.prepare(USER, "ask", {"question": "q"}, engine="llm", retrieval=False)
    slow_settings = ws.settings.model_copy(update={"llm_prompt_rate": 20.0})
    ws.settings = slow_settings
    slow = SkillRunner(ws).prepare(USER, "ask", {"question": "q"}, engine="llm", retrieval=False)
    assert slow.budget < fast.budget
    prefix = budget.fixed_prefix_tokens(load_builtin("ask"))
    assert slow.budget <= 20 * ws.settings.llm_first_token_s + prefix


# -- map-reduce --------------------------------------------------------------------------------


def long_document() -> list[Source]:
    return [source(i, f"Section {i}: the team agreed on action {i}. " * 20) for i in range(1, 13)]


def test_map_reduce_marks_only_the_last_call_final_and_reports_progress() -> None:
    template = load_builtin("summarise")
    finals: list[bool] = []
    progress: list[tuple[str, int, int]] = []

    def call(messages: list[Message], *, final: bool) -> str:
        finals.append(final)
        numbers = re.findall(r'<source id="(\d+)"', messages[-1].content) or ["1"]
        return f"Part [{numbers[0]}]."

    text, calls = summarise_long(
        template, {"text": ""}, long_document(), budget=500, count=len, call=call,
        on_progress=lambda *step: progress.append(step),
    )  # fmt: skip
    assert calls == len(finals) > 2
    assert finals[-1] is True and not any(finals[:-1])
    assert progress[0] == ("part", 1, progress[0][2]) and progress[-1][0] == "combine"
    assert text.startswith("Part [")


def test_map_reduce_stops_between_parts_when_cancelled() -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def call(messages: list[Message], *, final: bool) -> str:
        seen.append(1)
        cancel.set()  # the user pressed stop while the first part was being written
        return "Part [1]."

    with pytest.raises(Cancelled):
        summarise_long(load_builtin("summarise"), {"text": ""}, long_document(), budget=500,
                       count=len, call=call, cancel=cancel)  # fmt: skip
    assert seen == [1]


def test_a_long_document_streams_its_final_summary(ws: Workspace, llm: ScriptedLLM) -> None:
    ws.settings = ws.settings.model_copy(
        update={"llm_context_window": 1400, "llm_output_tokens": 700}
    )
    llm.responder = lambda request: Reply.text(
        "Merged [1]." if "<part id=" in request["messages"][-1]["content"] else "Part [1]."
    )
    events: list[tuple[str, dict]] = []
    result = SkillRunner(ws).run(
        USER, "summarise", {"text": "\n\n".join(s.text for s in long_document())},
        engine="llm", on_event=lambda kind, data: events.append((kind, data)),
    )  # fmt: skip
    assert result.calls > 2
    deltas = "".join(d["text"] for k, d in events if k == "delta")
    assert deltas == result.text == "Merged [1]."  # the last call, as it came
    assert all(r.json.get("stream") for r in llm.requests)  # every part streamed
    steps = [d for k, d in events if k == "progress"]
    assert steps[0] == {"phase": "part", "step": 1, "steps": steps[0]["steps"]}
    assert len(steps) == result.calls and steps[-1]["phase"] == "combine"


# -- what the user sees of a small model's formatting ----------------------------------------


def test_a_draft_run_drops_the_placeholder_signature(ws: Workspace, llm: ScriptedLLM) -> None:
    llm.script(Reply.text("Hi Maria,\n\n7 March works.\n\nBest regards,\n[Your Name]"))
    result = SkillRunner(ws).run(USER, "draft", {"message": MAIL, "notes": "7 March is fine"},
                                 engine="llm", retrieval=False)  # fmt: skip
    assert result.text.endswith("Best regards,") and "[Your Name]" not in result.text


def test_a_draft_run_never_claims_an_attachment_the_notes_do_not_mention(
    ws: Workspace, llm: ScriptedLLM
) -> None:
    llm.script(
        Reply.text("Hi Maria,\n\nThe Q3 figures are attached. They are final.\n\nBest regards,")
    )
    run = SkillRunner(ws).run
    result = run(USER, "draft", {"message": MAIL, "notes": "figures are final"}, engine="llm",
                 retrieval=False)  # fmt: skip
    assert result.text == "Hi Maria,\n\nThey are final.\n\nBest regards,"
    llm.script(Reply.text("Hi Maria,\n\nThe Q3 figures are attached.\n\nBest regards,"))
    result = run(USER, "draft", {"message": MAIL, "notes": "figures attached"}, engine="llm",
                 retrieval=False)  # fmt: skip
    assert "The Q3 figures are attached." in result.text  # the user said so


def test_a_subject_run_answers_the_words_of_the_subject_only(
    ws: Workspace, llm: ScriptedLLM
) -> None:
    llm.script(Reply.text('Subject: "Atlas go-live moves to 21 March"'))
    result = SkillRunner(ws).run(USER, "summarise", {"text": MAIL, "style": "subject"},
                                 engine="llm", retrieval=False)  # fmt: skip
    assert result.text == "Atlas go-live moves to 21 March"


def test_an_uncited_bullet_of_a_summary_run_gets_its_source(
    ws: Workspace, llm: ScriptedLLM
) -> None:
    llm.script(Reply.text("- The Q3 travel budget is 12,000 EUR"))
    result = SkillRunner(ws).run(
        USER, "summarise", {"text": "", "style": "bullets"}, engine="llm", retrieval=False,
        documents=[source(1, "The Q3 travel budget is 12,000 EUR, approved in July.")],
    )  # fmt: skip
    assert result.text == "- The Q3 travel budget is 12,000 EUR [1]"
    assert [c.n for c in result.citations] == [1]

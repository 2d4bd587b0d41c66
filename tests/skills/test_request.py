"""Turning CLI, API and bot input into one run request: what goes where, and the limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from copilot.config import Settings
from copilot.db.state import StateStore
from copilot.skills.request import (
    MAX_TEXT_CHARS,
    FileInputError,
    InputError,
    ItemNotFound,
    RunRequest,
    from_api,
    from_bot,
    from_cli,
)
from copilot.skills.templates.builtin import load_builtin

MB = 1024 * 1024


@pytest.fixture
def state(settings: Settings) -> Iterator[StateStore]:
    with StateStore(settings.state_url) as store:
        yield store


def test_typed_text_goes_to_the_main_input_with_the_options_typed(state: StateStore) -> None:
    request = from_cli(
        load_builtin("summarise"), "summarise", state=state, owner="anna", max_file_bytes=MB,
        text="Long meeting notes.", sets=["length=short"], engine="local", dry_run=True,
    )  # fmt: skip
    assert request == RunRequest(
        "summarise", {"length": "short", "text": "Long meeting notes."}, engine="local",
        dry_run=True,
    )  # fmt: skip


def test_a_question_about_a_file_keeps_the_file_as_sources(
    state: StateStore, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text("# Budget\n\nThe Q3 travel budget is 12,000 EUR.\n", encoding="utf-8")
    request = from_cli(
        load_builtin("ask"), "ask", state=state, owner="anna", max_file_bytes=MB, file=notes,
        sets=["question=What is the travel budget?"],
    )  # fmt: skip
    assert request.inputs == {"question": "What is the travel budget?"}  # not the file's text
    assert request.documents and "12,000 EUR" in request.documents[0].text
    assert request.documents[0].title == "notes.md"


def test_a_text_over_the_limit_is_refused_except_by_summarise(state: StateStore) -> None:
    long = "word " * (MAX_TEXT_CHARS // 5 + 1)
    with pytest.raises(InputError, match="only the summarise skill"):
        from_cli(load_builtin("sentiment"), "sentiment", state=state, owner="anna",
                 max_file_bytes=MB, text=long)  # fmt: skip
    with pytest.raises(InputError, match="only the summarise skill"):
        from_api(lambda: load_builtin("sentiment"), "sentiment", state=state, owner="anna",
                 inputs={"text": long})  # fmt: skip
    with pytest.raises(InputError, match="only the summarise skill"):
        from_bot(load_builtin("sentiment"), "sentiment", max_file_bytes=MB, options={},
                 text=long)  # fmt: skip
    summary = from_cli(load_builtin("summarise"), "summarise", state=state, owner="anna",
                       max_file_bytes=MB, text=long)  # fmt: skip
    assert summary.inputs["text"] == long


def test_the_api_looks_the_skill_up_only_when_it_needs_it(state: StateStore) -> None:
    def unknown_skill() -> None:
        raise AssertionError("a plain run must not read the skill here")

    request = from_api(unknown_skill, "mine", state=state, owner="anna",  # type: ignore[arg-type]
                       inputs={"text": "Hi"}, query="budget", retrieval=False)  # fmt: skip
    assert request == RunRequest("mine", {"text": "Hi"}, query="budget", retrieval=False)


def test_an_unknown_item_is_named(state: StateStore) -> None:
    with pytest.raises(ItemNotFound, match="no indexed item 'mail:42' for anna") as info:
        from_api(lambda: load_builtin("summarise"), "summarise", state=state, owner="anna",
                 inputs={}, item_id="mail:42")  # fmt: skip
    assert info.value.item_id == "mail:42"


def test_a_file_over_the_limit_or_of_an_unknown_type_is_a_file_error(
    state: StateStore, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(FileInputError, match=r"big\.txt: 0\.0 MB is over the 0 MB limit"):
        from_cli(load_builtin("summarise"), "summarise", state=state, owner="anna",
                 max_file_bytes=1024, file=big)  # fmt: skip
    odd = tmp_path / "data.bin"
    odd.write_bytes(b"\x00\x01")
    with pytest.raises(FileInputError, match=r"data\.bin: this file type is not supported"):
        from_bot(load_builtin("summarise"), "summarise", max_file_bytes=MB, options={},
                 text="", file=odd)  # fmt: skip
    with pytest.raises(FileInputError, match=r"missing\.txt"):
        from_cli(load_builtin("summarise"), "summarise", state=state, owner="anna",
                 max_file_bytes=MB, file=tmp_path / "missing.txt")  # fmt: skip


def test_a_bot_draft_answers_the_quoted_message_with_the_typed_notes() -> None:
    request = from_bot(load_builtin("draft"), "draft", max_file_bytes=MB, options={},
                       text="yes, Tuesday works", quote="Can we meet next week?")  # fmt: skip
    assert request.inputs == {"message": "Can we meet next week?", "notes": "yes, Tuesday works"}
    alone = from_bot(load_builtin("draft"), "draft", max_file_bytes=MB, options={},
                     text="invite the team to the review")  # fmt: skip
    assert alone.inputs == {"notes": "invite the team to the review", "kind": "mail"}


def test_a_bot_file_is_the_text_and_the_typed_words_its_focus(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    report.write_text("# Q3\n\nRevenue grew 4 percent; costs fell.\n", encoding="utf-8")
    request = from_bot(load_builtin("summarise"), "summarise", max_file_bytes=MB,
                       options={"length": "short"}, text="costs", file=report)  # fmt: skip
    assert request.inputs["focus"] == "costs" and request.inputs["length"] == "short"
    assert "Revenue grew" in str(request.inputs["text"])
    assert request.documents is not None  # summarise cites the file's own passages


def test_a_bot_message_with_nothing_to_work_on_says_what_to_give() -> None:
    with pytest.raises(InputError, match="Tell me what to"):
        from_bot(load_builtin("sentiment"), "sentiment", max_file_bytes=MB, options={}, text="")
    with pytest.raises(InputError, match="input 'length'"):
        from_bot(load_builtin("sentiment"), "sentiment", max_file_bytes=MB,
                 options={"length": "short"}, text="great")  # fmt: skip

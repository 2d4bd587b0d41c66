"""A skill's inputs, as a user gives them: checked against the template (types, enums, with
the allowed values named), its defaults applied on every engine, a file with a question
about it, and `skills test` saying why two outputs are the same."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli.app import app
from copilot.config import Settings
from copilot.db.state import StateStore
from copilot.llm.types import Message
from copilot.skills.library.testing import compare, compare_samples
from copilot.skills.request import InputError, fit_inputs, from_cli
from copilot.skills.runner import SkillRunner
from copilot.skills.templates.builtin import load_builtin
from copilot.skills.templates.render import parse_template
from copilot.workspace import Workspace

MB = 1024 * 1024
STYLES = "bullets, paragraph, tldr, action_items, subject"
NOTES = " ".join(
    f"Item {i}: the {topic} needs a decision from the board before the end of the quarter."
    for i, topic in enumerate(
        ["budget", "hiring plan", "office move", "vendor contract", "security audit",
         "pricing change", "travel policy", "launch date", "support rota", "data migration",
         "training plan", "parking rules"], 1)
)  # fmt: skip


@pytest.fixture
def state(settings: Settings) -> Iterator[StateStore]:
    with StateStore(settings.state_url) as store:
        yield store


def test_a_value_outside_the_enum_is_refused_with_the_allowed_values(state: StateStore) -> None:
    with pytest.raises(InputError, match=f"input 'style' is one of {STYLES}; got 'nonsense'"):
        from_cli(load_builtin("summarise"), "summarise", state=state, owner="anna",
                 max_file_bytes=MB, text="Notes.", sets=["style=nonsense"])  # fmt: skip
    # The API and the bot hand typed JSON to the runner: the same check, the same words.
    with pytest.raises(InputError, match="input 'tone' is one of neutral, formal, friendly"):
        fit_inputs(load_builtin("draft"), {"notes": "Say yes.", "tone": "sarcastic"})
    with pytest.raises(InputError, match="input 'length' should be a string, got int"):
        fit_inputs(load_builtin("summarise"), {"text": "x", "length": 3})


def test_declared_defaults_fill_what_was_not_given() -> None:
    fitted = fit_inputs(load_builtin("summarise"), {"text": "Notes.", "style": "tldr"})
    assert fitted == {"text": "Notes.", "style": "tldr", "length": "medium", "focus": "",
                      "combine": False}  # fmt: skip


def test_an_enum_must_hold_its_default() -> None:
    broken = (
        "---\nname: x\ninputs:\n  style:\n    kind: string\n    default: poem\n"
        "    enumValues: [bullets, paragraph]\n---\nuser:\n{{ style }}\n"
    )
    with pytest.raises(ValueError, match="default 'poem' is not one of the enum values"):
        parse_template(broken, "x.prompty")


def test_a_personal_skills_defaults_apply_on_the_local_engine(ws: Workspace) -> None:
    runner = SkillRunner(ws)
    builtin = runner.skills.get("anna", "summarise").text
    brief = builtin.replace(
        '    description: "short, medium or long"\n    default: medium',
        '    description: "short, medium or long"\n    default: short',
    )
    assert brief != builtin
    runner.skills.save("anna", "brief", brief)

    short = runner.run("anna", "brief", {"text": NOTES}, engine="local", record=False)
    medium = runner.run("anna", "summarise", {"text": NOTES}, engine="local", record=False)
    long = runner.run("anna", "brief", {"text": NOTES, "length": "long"}, engine="local",
                      record=False)  # fmt: skip

    bullets = [len(re.findall(r"^- ", r.text, re.M)) for r in (short, medium, long)]
    assert bullets == [3, 5, 8]


def test_a_question_about_a_file_from_the_command_line(
    state: StateStore, tmp_path: Path, home: Path
) -> None:
    notes = tmp_path / "atlas.md"
    notes.write_text(
        "# Atlas\n\nThe go-live of the Atlas migration is on 14 March.\n\n"
        "Testing of the billing interface finished a week early.\n",
        encoding="utf-8",
    )
    request = from_cli(load_builtin("ask"), "ask", state=state, owner="anna", max_file_bytes=MB,
                       file=notes, text="When is the go-live?")  # fmt: skip
    assert request.inputs == {"question": "When is the go-live?"}
    assert request.documents and "14 March" in request.documents[0].text
    # Summarise takes the typed text as its focus; without a question, ask says what it needs.
    summary = from_cli(load_builtin("summarise"), "summarise", state=state, owner="anna",
                       max_file_bytes=MB, file=notes, text="billing")  # fmt: skip
    assert summary.inputs["focus"] == "billing" and "go-live" in str(summary.inputs["text"])
    with pytest.raises(InputError, match='--text "your question"'):
        from_cli(load_builtin("ask"), "ask", state=state, owner="anna", max_file_bytes=MB,
                 file=notes)  # fmt: skip

    cli = CliRunner()
    result = cli.invoke(app, ["run", "ask", "--user", "anna", "--file", str(notes),
                              "--text", "When is the go-live?", "--engine", "local"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "14 March. [1]" in result.output and "[1] atlas.md — section Atlas" in result.output
    both = cli.invoke(app, ["run", "ask", "--user", "anna", "--file", str(notes), "--mail", "m1"])
    assert both.exit_code != 0 and "one of --file or --mail" in both.output


def _messages(*contents: str) -> list[Message]:
    return [Message("user", c) for c in contents]


def test_skills_test_says_why_outputs_are_identical_or_shows_the_diff() -> None:
    same = {"engine": "local", "text": "- Revenue rose [1]"}
    fenced = "Summarise <untrusted-1a2b3c4d>notes</untrusted-1a2b3c4d>"
    refenced = "Summarise <untrusted-9f8e7d6c>notes</untrusted-9f8e7d6c>"

    nothing = compare(same, same, _messages(fenced), _messages(refenced))
    assert nothing["same_output"] and nothing["same_messages"]  # a fresh fence is no change
    assert "changes nothing in the messages" in nothing["explanation"]

    local = compare(same, same, _messages(fenced), _messages("Be terse. " + fenced))
    assert local["same_output"] and not local["same_messages"]
    assert "local engine does not read the prompt" in local["explanation"]
    assert "+Be terse." in local["prompt_diff"] and local["output_diff"] == ""

    llm = {**same, "engine": "llm"}
    changed = compare(llm, {**llm, "text": "- Revenue fell [1]"}, _messages(fenced),
                      _messages("Be terse. " + fenced))  # fmt: skip
    assert changed["explanation"] == "The outputs differ (diff below)."
    assert "-- Revenue rose [1]" in changed["output_diff"]
    assert "+- Revenue fell [1]" in changed["output_diff"]


def test_skills_test_on_the_local_engine_explains_an_unchanged_output(ws: Workspace) -> None:
    runner = SkillRunner(ws)
    runner.skills.fork("anna", "summarise", "brief")
    current = runner.skills.get("anna", "brief").text
    candidate = current.replace("precise assistant", "terse assistant")
    assert candidate != current

    rows = compare_samples(runner, "anna", "brief", candidate_text=candidate, engine="local")

    (row,) = rows
    assert row["current"]["text"] == row["candidate"]["text"]
    comparison = row["comparison"]
    assert comparison["same_output"] and not comparison["same_messages"]
    assert "local engine does not read the prompt" in comparison["explanation"]
    assert "terse assistant" in comparison["prompt_diff"]

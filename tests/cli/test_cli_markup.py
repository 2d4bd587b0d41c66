"""What a user, a template or a file name brings is printed by the CLI as text, never as
Rich markup: a "[/x]" must not crash a command (Rich raises on a closing tag nothing
opened) and a "[bold]" must not restyle it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from copilot.cli.app import app

USER = ["--user", "anna"]
MARKUP = "Notes [/x] and [bold]loud[/bold]"


def test_an_unknown_mode_is_named_as_typed(cli: CliRunner, tmp_path: Path) -> None:
    found = cli.invoke(app, ["search", "budget", *USER, "--mode", "[/x]"])
    assert found.exit_code == 2 and "Unknown mode '[/x]'" in found.output
    scored = cli.invoke(app, ["eval", "retrieval", "--beir", str(tmp_path), "--mode", "[/b]"])
    assert scored.exit_code == 2 and "Unknown mode '[/b]'" in scored.output


def test_a_skill_description_is_listed_as_written(cli: CliRunner, tmp_path: Path) -> None:
    assert cli.invoke(app, ["skills", "fork", "summarise", *USER, "--as", "notes"]).exit_code == 0
    shown = cli.invoke(app, ["skills", "show", "notes", *USER]).output
    line = next(x for x in shown.splitlines() if x.startswith("description:"))
    edited = tmp_path / "notes.prompty"
    edited.write_text(shown.replace(line, f'description: "{MARKUP}"'))
    saved = cli.invoke(app, ["skills", "edit", "notes", *USER, "--file", str(edited)])
    assert saved.exit_code == 0, saved.output
    listed = cli.invoke(app, ["skills", "list", *USER])
    assert listed.exit_code == 0, listed.output  # was a MarkupError on "[/x]"
    assert MARKUP in listed.output


def test_a_folder_name_with_brackets_in_a_failure_is_printed_as_is(
    cli: CliRunner, tmp_path: Path
) -> None:
    folder = tmp_path / "[red]reports"  # as markup the tag would vanish
    folder.mkdir()
    result = cli.invoke(app, ["eval", "retrieval", "--beir", str(folder), "--mode", "bm25"])
    assert result.exit_code == 2
    assert "[red]reports" in "".join(result.output.split())  # wrapped lines joined

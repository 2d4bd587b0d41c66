"""``copilot skills …``: manage personal skills (list, fork, edit, version, test).

Each command is one skills operation (``copilot.api.cli_ops.skills_call``), run in the
copilot service when one is running and in this process otherwise (``cli/backend.py``).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from copilot.cli.backend import UserOpt, backend
from copilot.cli.output import console, fail, settings_or_exit

skills_app = typer.Typer(help="List, fork, edit, version and test skills.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _call(user: str, op: str, **args: Any) -> Any:
    """One skills operation; its expected errors become one plain line and exit 2."""
    from copilot.skills.library.store import SkillNotFound
    from copilot.skills.templates.render import TemplateError

    try:
        with backend(settings_or_exit()) as chosen:
            return chosen.skills(user, op, **args)
    except (SkillNotFound, KeyError) as exc:
        raise fail(str(exc.args[0] if exc.args else exc)) from exc
    except (TemplateError, ValueError) as exc:
        raise fail(str(exc)) from exc


@skills_app.command("list")
def list_skills(
    user: UserOpt,
    surface: Annotated[str | None, typer.Option(help="Only skills for word/outlook/teams.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Built-in skills and USER's personal ones."""
    infos = _call(user, "list", surface=surface)
    if as_json:
        print(json.dumps(infos, indent=2, default=str))
        return
    for i in infos:
        origin = "built-in" if i["source"] == "builtin" else f"personal v{i['version']}"
        if i["shadows_builtin"]:
            origin += ", replaces the built-in"
        console.print(
            f"[bold]{escape(i['id'])}[/bold]  {escape(i['description'])}  [dim]({origin})[/dim]",
            highlight=False,
        )


@skills_app.command()
def show(
    skill: str,
    user: UserOpt,
    version: Annotated[int | None, typer.Option(help="An older version.")] = None,
) -> None:
    """Print a skill's `.prompty` text."""
    print(_call(user, "get", skill=skill, version=version)["text"], end="")


@skills_app.command()
def fork(
    skill: str,
    user: UserOpt,
    new_id: Annotated[str | None, typer.Option("--as", help="Id of the copy.")] = None,
) -> None:
    """Copy a built-in (or your own skill) into a personal skill you can edit."""
    stored = _call(user, "fork", skill=skill, new_id=new_id)
    console.print(f"Forked {skill} as {stored['id']} (v{stored['version']}).")


@skills_app.command()
def edit(
    skill: str,
    user: UserOpt,
    file: Annotated[
        Path | None, typer.Option(help="Save this file's text as the new version.")
    ] = None,
    message: Annotated[str, typer.Option("--message", "-m", help="What changed.")] = "",
) -> None:
    """Save a new version: from --file, or in $EDITOR. Invalid text is refused with its line."""
    if file is not None:
        text = _read(file)
    else:
        current = _call(user, "get", skill=skill)["text"]
        text = _edit_in_editor(current)
        if text == current:
            console.print("No change.")
            return
    stored = _call(user, "save", skill=skill, text=text, message=message)
    console.print(f"Saved {stored['id']} v{stored['version']}.")


@skills_app.command()
def history(skill: str, user: UserOpt, as_json: JsonOpt = False) -> None:
    """Versions of a personal skill, newest first."""
    versions = _call(user, "history", skill=skill)
    if as_json:
        print(json.dumps(versions, indent=2))
        return
    for v in versions:
        console.print(f"v{v['version']}  {_when(v['created_at'])}  {v['message'] or ''}",
                      highlight=False)  # fmt: skip


@skills_app.command()
def revert(skill: str, version: int, user: UserOpt) -> None:
    """Make an old version current again (saved as a new version; history is kept)."""
    stored = _call(user, "revert", skill=skill, version=version)
    console.print(f"{stored['id']} is now v{stored['version']} (the text of v{version}).")


@skills_app.command("import")
def import_skill(
    file: Path,
    user: UserOpt,
    new_id: Annotated[str | None, typer.Option("--as", help="Id to save it under.")] = None,
) -> None:
    """Import a `.prompty` file as a personal skill (validated first)."""
    stored = _call(user, "import", text=_read(file), new_id=new_id)
    console.print(f"Imported {stored['id']} v{stored['version']}.")


@skills_app.command()
def export(
    skill: str,
    user: UserOpt,
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout.")] = None,
    version: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Export a skill as a `.prompty` file."""
    text = _call(user, "export", skill=skill, version=version)
    if out is None:
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"Wrote {out}.")


@skills_app.command()
def samples(
    skill: str,
    user: UserOpt,
    add: Annotated[str | None, typer.Option(help="Save a sample under this name.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value input.")] = None,
    remove: Annotated[str | None, typer.Option(help="Delete the sample of this name.")] = None,
) -> None:
    """List, add (--add NAME --set k=v …) or remove saved sample inputs of a skill."""
    if add:
        _call(user, "add_sample", skill=skill, name=add, sets=list(set_ or []))
        console.print(f"Saved sample {add!r}.")
    if remove:
        _call(user, "delete_sample", skill=skill, name=remove)
        console.print(f"Removed sample {remove!r}.")
    if not add and not remove:
        print(json.dumps(_call(user, "samples", skill=skill), indent=2, ensure_ascii=False))


@skills_app.command()
def test(
    skill: str,
    user: UserOpt,
    candidate: Annotated[
        Path | None, typer.Option("--file", help="An edited version to compare before saving.")
    ] = None,
    engine: Annotated[str, typer.Option(help="auto, llm or local.")] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """Re-run the skill's saved samples (and its template sample): the current version,
    and with --file the edited one beside it, so a change is judged before it is saved."""
    text = _read(candidate) if candidate else None
    rows = _call(user, "test", skill=skill, candidate=text, engine=engine)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        return
    for row in rows:
        console.print(f"[bold]── sample {row['sample']}[/bold]")
        for label in ("current", "candidate"):
            if label in row:
                console.print(f"[cyan]{label}[/cyan] ({row[label]['engine']}):", highlight=False)
                text = row[label]["text"] or row[label].get("error", "")
                console.print(text, highlight=False, markup=False)
        comparison = row.get("comparison")
        if comparison:  # why the two are the same, or how they differ
            console.print(f"[yellow]{escape(comparison['explanation'])}[/yellow]", highlight=False)
            for key, name in (("output_diff", "output"), ("prompt_diff", "prompt")):
                if comparison.get(key):
                    console.print(f"[dim]{name} diff:[/dim]")
                    console.print(comparison[key], highlight=False, markup=False)


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > 256 * 1024:
            raise fail(f"{path}: too large for a skill file")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"{path}: not UTF-8 text") from exc


def _edit_in_editor(text: str) -> str:
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise fail("set $EDITOR, or pass --file with the new text")
    with tempfile.NamedTemporaryFile("w+", suffix=".prompty", delete=False, encoding="utf-8") as f:
        f.write(text)
        name = f.name
    try:
        subprocess.run([*shlex.split(editor), name], check=True)
        return Path(name).read_text(encoding="utf-8")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise fail(f"the editor failed: {exc}") from exc
    finally:
        os.unlink(name)


def _when(ts: float | None) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts or 0, dt.UTC).strftime("%Y-%m-%d %H:%M")

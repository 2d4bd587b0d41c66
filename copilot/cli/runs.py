"""``copilot runs list|show|feedback``: a user's skill runs, and thumbs up/down on one.

Why in the CLI too: feedback is what the fine-tuning export learns from, and until now only
the API, the pane and the bot could give it. The work goes through the backend (the running
service, or this process), so the same run is seen and rated either way.

A run is named by its id or by any unique prefix of it (``runs list`` shows 8 characters).
Every user-visible string is printed as text, never as Rich markup.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from copilot.cli.backend import UserOpt, backend
from copilot.cli.output import console, fail, fail_for, settings_or_exit

runs_app = typer.Typer(help="Your skill runs: list them, show one, give feedback.")

SHORT_ID = 8
PREFIX_SEARCH = 500  # runs searched for a prefix (the store's most per page)
MAX_EDITED_BYTES = 768 * 1024  # the run store's cap on edited text (skills/history.py)
RATINGS = {"up": 1, "down": -1}
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def when(epoch: float | None) -> str:
    """A time in the machine's local time zone, to the minute (what a person reads)."""
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M")


def iso(epoch: float | None) -> str | None:
    """A time as ISO 8601 with its UTC offset (what JSON readers parse)."""
    return None if epoch is None else datetime.fromtimestamp(epoch).astimezone().isoformat()


def rating_word(rating: int | None) -> str:
    return {1: "up", -1: "down"}.get(rating, "") if rating is not None else ""


def resolve(chosen: Any, user: str, run: str) -> str:
    """The full id of the run ``run`` names (an id or a unique prefix of one)."""
    run = run.strip().lower()
    if not run or not all(c in "0123456789abcdef" for c in run):
        raise fail(f"{run!r} is not a run id: see `copilot runs list`.")
    if len(run) == 32:
        return run
    matches = [r["id"] for r in chosen.runs(user, limit=PREFIX_SEARCH) if r["id"].startswith(run)]
    if not matches:
        raise fail(f"no run {run!r}: see `copilot runs list`.")
    if len(matches) > 1:
        raise fail(f"{run!r} names {len(matches)} runs: give more of the id.")
    return str(matches[0])


def read_edited(path: Path) -> str:
    """The edited text from ``path``: a clear error naming the file when it cannot be used."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise fail(f"{path} is not a file.")
        if size > MAX_EDITED_BYTES:
            raise fail(f"{path} is {size:,} bytes; edited text is limited to {MAX_EDITED_BYTES:,}.")
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        raise fail(f"{path} does not exist.") from exc
    except UnicodeDecodeError as exc:
        raise fail(f"{path} is not UTF-8 text.") from exc
    except OSError as exc:
        raise fail(f"{path} cannot be read: {exc.strerror or exc}") from exc


def as_json(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "created": iso(record.get("created_at"))}


@runs_app.command("list")
def runs_list(
    user: UserOpt,
    skill: Annotated[str | None, typer.Option(help="Only runs of this skill.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 20,
    json_out: JsonOpt = False,
) -> None:
    """Your latest runs, newest first."""
    settings = settings_or_exit()
    try:
        with backend(settings) as chosen:
            records = chosen.runs(user, skill_id=skill, limit=limit)
    except Exception as exc:
        raise fail_for(exc) from exc
    if json_out:
        print(json.dumps([as_json(r) for r in records], indent=2))
        return
    if not records:
        console.print(Text(f"No runs yet for {user}: try `copilot run SKILL`."))
        return
    table = Table("run", "when", "skill", "status", "rating", "output")
    for r in records:
        first = " ".join(str(r.get("output") or r.get("error") or "").split())
        table.add_row(
            Text(r["id"][:SHORT_ID]),
            Text(when(r.get("created_at"))),
            Text(str(r["skill_id"])),
            Text(str(r["status"])),
            Text(rating_word(r.get("rating"))),
            Text(first[:60] + ("…" if len(first) > 60 else "")),
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.")],
    user: UserOpt,
    json_out: JsonOpt = False,
) -> None:
    """One run: what was asked, what came back, the messages sent, the feedback."""
    settings = settings_or_exit()
    try:
        with backend(settings) as chosen:
            record = chosen.run_record(user, resolve(chosen, user, run))
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail_for(exc) from exc
    if json_out:
        print(json.dumps(as_json(record), indent=2))
        return
    lines = [
        f"run       {record['id']}",
        f"when      {when(record.get('created_at'))}",
        f"skill     {record['skill_id']} ({record['skill_version']})",
        f"engine    {record['engine']}" + (f" / {record['model']}" if record.get("model") else ""),
        f"status    {record['status']}",
        f"tokens    {record['prompt_tokens']} in, {record['completion_tokens']} out, "
        f"{record['latency_ms']:.0f} ms",
    ]
    if record.get("rating") is not None:
        lines.append(f"rating    {rating_word(record['rating'])}")
    if record.get("comment"):
        lines.append(f"comment   {record['comment']}")
    if record.get("error"):
        lines.append(f"error     {record['error']}")
    lines += ["", str(record.get("output") or "")]
    if record.get("edited_text"):
        lines += ["", "edited by you:", str(record["edited_text"])]
    console.print(Text("\n".join(lines)), soft_wrap=True)


@runs_app.command("feedback")
def runs_feedback(
    run: Annotated[str, typer.Argument(help="The run's id, or a unique prefix of it.")],
    user: UserOpt,
    rating: Annotated[
        str | None, typer.Option("--rating", help="Thumbs up or down: up | down.")
    ] = None,
    comment: Annotated[str | None, typer.Option(help="A comment on the run.")] = None,
    edited: Annotated[
        Path | None,
        typer.Option("--edited", help="A file with the text as you finally used it."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Rate a run, comment on it, or give the text as you used it (for fine-tuning)."""
    if rating is not None and rating.lower() not in RATINGS:
        raise fail(f"--rating must be up or down, not {rating!r}.")
    if rating is None and comment is None and edited is None:
        raise fail("give --rating up|down, --comment or --edited FILE.")
    edited_text = read_edited(edited) if edited is not None else None
    settings = settings_or_exit()
    try:
        with backend(settings) as chosen:
            record = chosen.feedback(
                user,
                resolve(chosen, user, run),
                rating=RATINGS[rating.lower()] if rating is not None else None,
                comment=comment,
                edited_text=edited_text,
            )
    except typer.Exit:
        raise
    except Exception as exc:
        raise fail_for(exc) from exc
    if json_out:
        print(json.dumps(as_json(record), indent=2))
        return
    said = rating_word(record.get("rating")) or "no rating"
    console.print(Text(f"Feedback saved on run {record['id'][:SHORT_ID]} ({said})."))

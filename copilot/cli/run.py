"""``copilot run SKILL``: run a skill on text, a file, an indexed mail or a question.

Output goes to the terminal (streamed as it is written), JSON, or an Office file: a
scored workbook for sentiment over a column, a .docx with sources as footnotes or a list.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.markup import escape

from copilot.cli.backend import UserOpt
from copilot.cli.output import (
    Notes,
    console,
    err,
    fail,
    fail_for,
    settings_or_exit,
    show_kept,
)

if TYPE_CHECKING:  # imported when a run starts: `copilot --help` stays fast
    from copilot.api.cli_ops import RunArgs
    from copilot.cli.backend import Backend
    from copilot.skills.result import RunResult


@dataclass(frozen=True)
class Output:
    """Where a run's result goes: the terminal (streamed), JSON, or a file."""

    out: Path | None = None
    sources_as: Literal["footnotes", "list"] = "list"
    as_json: bool = False
    dry_run: bool = False

    @property
    def streaming(self) -> bool:
        return not (self.as_json or self.dry_run or self.out)


def run(
    skill: Annotated[
        str, typer.Argument(help="Skill id: summarise, draft, sentiment, ask, or yours.")
    ],
    user: UserOpt,
    text: Annotated[
        str | None,
        typer.Option(
            help="The text to work on; with --file or --mail, what to do with it: the "
            "question (ask), the focus (summarise) or your notes (draft)."
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="A docx, xlsx, pdf, eml, msg or text file.")
    ] = None,
    mail: Annotated[str | None, typer.Option(help="An indexed mail's item id.")] = None,
    query: Annotated[str | None, typer.Option(help="What to search your index for.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value input.")] = None,
    column: Annotated[
        str | None, typer.Option(help="Workbook column to score (header or letter).")
    ] = None,
    sheet: Annotated[str | None, typer.Option(help="Workbook sheet (default: the first).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the result: .docx, .xlsx, .json, .md.")
    ] = None,
    sources_as: Annotated[str, typer.Option(help="In a .docx: footnotes or list.")] = "list",
    engine: Annotated[str, typer.Option(help="auto, llm, embedded or local.")] = "auto",
    retrieval: Annotated[bool | None, typer.Option("--retrieval/--no-retrieval")] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show exactly what would be sent; send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run SKILL for USER. Without an LLM configured, the local engine answers."""
    from copilot.api.cli_ops import RunArgs
    from copilot.cli.backend import backend
    from copilot.errors import CopilotError
    from copilot.skills.engines.base import ENGINE_NAMES
    from copilot.skills.library.store import SkillNotFound
    from copilot.skills.request import ItemNotFound

    if engine not in ("auto", *ENGINE_NAMES):
        raise fail(f"unknown engine {engine!r}: use auto, {', '.join(ENGINE_NAMES)}")
    if sources_as not in ("footnotes", "list"):
        raise fail("--sources-as is footnotes or list")
    if file is not None and mail is not None:
        raise fail("give one of --file or --mail (with --text for the question about it)")
    output = Output(out, "footnotes" if sources_as == "footnotes" else "list", as_json, dry_run)
    settings = settings_or_exit()
    # In the copilot service when one runs, else here (copilot/cli/backend.py); a file is
    # named by its absolute path, which both places read the same.
    with backend(settings) as runner:
        try:
            title = runner.skills(user, "get", skill=skill)["name"]
            if file is not None and column is not None:
                _score_workbook(
                    runner,
                    user,
                    skill,
                    file.absolute(),
                    column=column,
                    sheet=sheet,
                    out=out.absolute() if out else None,
                    engine=engine,
                    as_json=as_json,
                )
                return
            args = RunArgs(
                skill,
                text=text,
                file=str(file.absolute()) if file is not None else None,
                mail=mail,
                sets=tuple(set_ or ()),
                query=query,
                engine=engine,
                retrieval=retrieval,
                dry_run=dry_run,
            )
            _run(runner, user, args, output, title=title)
        except (SkillNotFound, KeyError) as exc:
            raise fail(f"no skill {skill!r}: see `copilot skills list --user {user}`") from exc
        except ItemNotFound as exc:
            raise fail(f"{exc}: see `copilot search`") from exc
        except CopilotError as exc:
            raise fail_for(exc) from exc


def _run(runner: Backend, user: str, args: RunArgs, output: Output, title: str) -> None:
    """Run ``args`` and show (or write) its result as ``output`` says."""

    streamed: list[str] = []
    notes = Notes()

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "delta" and output.streaming:
            notes.clear()
            streamed.append(data["text"])
            sys.stdout.write(data["text"])
            sys.stdout.flush()
        else:
            notes.show(kind, data)  # on stderr: stdout keeps only the answer or its JSON

    try:
        result = runner.run(user, args, on_event)
    finally:
        notes.clear()
    if output.as_json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=str))
    elif output.dry_run:
        _print_dry_run(result)
    elif output.streaming and streamed:
        print()
        show_kept("".join(streamed), result.text)
        _print_footer(result)
    elif output.streaming:  # nothing streamed (a structured answer, an extractive engine)
        console.print(result.text, highlight=False, markup=False)
        _print_footer(result)
    if output.out is not None:
        _write(output.out, result, title, output.sources_as)
        err.print(f"Wrote {output.out}.")


def _score_workbook(
    runner: Backend,
    user: str,
    skill: str,
    file: Path,
    *,
    column: str,
    sheet: str | None,
    out: Path | None,
    engine: str,
    as_json: bool,
) -> None:
    target = out or file.with_name(f"{file.stem}-scored.xlsx")
    summary = runner.score(
        user,
        skill,
        str(file),
        column=column,
        out=str(target),
        sheet=sheet,
        engine=engine,
        on_progress=lambda i, n: err.print(f"{i}/{n}", end="\r"),
    )
    if as_json:
        print(
            json.dumps(
                {"out": str(target), "summary": summary, "rows": summary["rows"]}, default=str
            )
        )
    else:
        from copilot.office.scoring import summary_table

        console.print(
            f"Scored {summary['rows']} rows of {summary['sheet']}!{summary['column']} → {target}",
            highlight=False,
        )
        console.print(summary_table(summary), highlight=False, markup=False)


def _print_dry_run(result: RunResult) -> None:
    console.print(f"[bold]Dry run[/bold]: {result.engine} engine; nothing was sent.")
    if result.redactions:
        console.print(f"Redacted: {result.redactions}", highlight=False)
    for m in result.messages:
        console.print(f"[cyan]── {m.role}[/cyan]")
        console.print(m.content, highlight=False, markup=False)


def _print_footer(result: RunResult) -> None:
    from copilot.skills.citations import citation_line, more_sources

    for c in result.citations:  # only what the answer cites; the rest behind --json
        console.print(citation_line(c), highlight=False, markup=False)
    more = more_sources(result.sources, result.citations)
    if more:
        err.print(f"[dim]{len(more)} more sources were given but not cited (see --json).[/dim]")
    if result.invalid_citations:
        nums = ", ".join(map(str, result.invalid_citations))
        err.print(f"Removed citations to sources that were not given: {nums}")
    if result.note:
        err.print(f"[dim]{escape(result.note)}[/dim]", highlight=False)
    if result.engine != "local":  # a language model answered: say which, and its usage
        cost = f", ~${result.cost_usd:.4f}" if result.cost_usd is not None else ""
        err.print(
            f"[dim]{result.model}: {result.prompt_tokens}+{result.completion_tokens} tokens"
            f"{cost}, {result.latency_ms:.0f} ms[/dim]"
        )


def _write(
    out: Path, result: RunResult, title: str, sources_as: Literal["footnotes", "list"]
) -> None:
    from copilot.office.docx import write_docx

    suffix = out.suffix.lower()
    if suffix == ".docx":
        meta = {"skill": result.skill_id, "engine": result.engine}
        write_docx(
            out,
            title=title,
            body=result.text,
            citations=result.citations,
            style=sources_as,
            meta=meta,
        )
    elif suffix == ".json":
        out.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        lines = [result.text, ""]
        from copilot.skills.citations import citation_line

        lines += [citation_line(c) for c in result.citations]
        out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")

"""``copilot run SKILL``: run a skill on text, a file, an indexed mail or a question.

Output goes to the terminal (streamed as it is written), JSON, or an Office file: a
scored workbook for sentiment over a column, a .docx with sources as footnotes or a list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from copilot.cli.output import console, err, fail, settings_or_exit

MAX_TEXT_CHARS = 400_000  # a text input rendered into the prompt as is (non-summarise skills)


def run(
    skill: Annotated[
        str, typer.Argument(help="Skill id: summarise, draft, sentiment, ask, or yours.")
    ],
    user: Annotated[str, typer.Option("--user", "-u", help="Whose index and skills.")],
    text: Annotated[str | None, typer.Option(help="The text to work on.")] = None,
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
    engine: Annotated[str, typer.Option(help="auto, llm or local.")] = "auto",
    retrieval: Annotated[bool | None, typer.Option("--retrieval/--no-retrieval")] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show exactly what would be sent; send nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run SKILL for USER. Without an LLM configured, the local engine answers."""
    from copilot.llm.errors import LLMError
    from copilot.skills.request import InputError
    from copilot.skills.engines.local.engine import LocalEngineError
    from copilot.skills.prepare import SkillInputError
    from copilot.skills.library.store import SkillNotFound
    from copilot.skills.templates.render import TemplateError
    from copilot.office.xlsx import WorkbookError
    from copilot.workspace import Workspace

    if engine not in ("auto", "llm", "local"):
        raise fail(f"unknown engine {engine!r}: use auto, llm or local")
    if sources_as not in ("footnotes", "list"):
        raise fail("--sources-as is footnotes or list")
    if sum(x is not None for x in (text, file, mail)) > 1:
        raise fail("give one of --text, --file or --mail")
    settings = settings_or_exit()
    with Workspace(settings) as ws:
        try:
            _run(ws, skill, user, text, file, mail, query, set_ or [], column, sheet, out,
                 sources_as, engine, retrieval, dry_run, as_json)  # fmt: skip
        except (SkillNotFound, KeyError) as exc:
            raise fail(f"no skill {skill!r}: see `copilot skills list --user {user}`") from exc
        except (InputError, SkillInputError, TemplateError, WorkbookError) as exc:
            raise fail(str(exc)) from exc
        except (LLMError, LocalEngineError) as exc:
            raise fail(str(exc), 1) from exc


def _run(
    ws: Any, skill: str, user: str, text: str | None, file: Path | None, mail: str | None,
    query: str | None, sets: list[str], column: str | None, sheet: str | None,
    out: Path | None, sources_as: str, engine: str, retrieval: bool | None, dry_run: bool,
    as_json: bool,
) -> None:  # fmt: skip
    from copilot.skills.request import (
        InputError,
        attach,
        indexed_item,
        main_input,
        parse_sets,
        sources_from_file,
    )
    from copilot.skills.runner import SkillRunner

    runner = SkillRunner(ws)
    template = runner.skills.get(user, skill).template
    inputs = parse_sets(template, sets)
    documents = None
    if file is not None and column is not None:
        _score_workbook(runner, user, skill, file, column, sheet, out, engine, as_json)
        return
    if file is not None:
        text, documents = sources_from_file(file, max_bytes=ws.settings.max_file_bytes)
    elif mail is not None:
        found = indexed_item(ws.state, user, mail)
        if found is None:
            raise InputError(f"no indexed mail {mail!r} for {user}: see `copilot search`")
        text, documents = found
    if text is not None:
        if template.metadata.task != "summarise" and len(text) > MAX_TEXT_CHARS:
            raise InputError(
                f"the text is {len(text):,} characters; over {MAX_TEXT_CHARS:,} only the "
                "summarise skill (map-reduce) can take it"
            )
        if documents is None:  # typed text: the skill's main input (the question, for ask)
            inputs[main_input(template)] = text
        else:
            documents = attach(template, inputs, text, documents)
    streaming = not (as_json or dry_run or out)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "delta" and streaming:
            sys.stdout.write(data["text"])
            sys.stdout.flush()

    result = runner.run(
        user, skill, inputs, engine=engine, query=query, retrieval=retrieval,
        documents=documents, dry_run=dry_run, on_event=on_event,
    )  # fmt: skip
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=str))
    elif dry_run:
        _print_dry_run(result)
    elif streaming:
        print()
        _print_footer(result)
    if out is not None:
        _write(out, result, template.name, sources_as)
        err.print(f"Wrote {out}.")


def _score_workbook(
    runner: Any, user: str, skill: str, file: Path, column: str, sheet: str | None,
    out: Path | None, engine: str, as_json: bool,
) -> None:  # fmt: skip
    from copilot.office.scoring import score_workbook

    target = out or file.with_name(f"{file.stem}-scored.xlsx")
    summary = score_workbook(
        runner, user, skill, file, column, out=target, sheet=sheet, engine=engine,
        on_progress=lambda i, n: err.print(f"{i}/{n}", end="\r"),
    )  # fmt: skip
    if as_json:
        print(json.dumps({"out": str(target), "summary": summary, "rows": summary["rows"]},
                         default=str))  # fmt: skip
    else:
        console.print(
            f"Scored {summary['rows']} rows of {summary['sheet']}!{summary['column']} → {target}"
        )
        console.print(json.dumps(summary, indent=2, default=str), highlight=False)


def _print_dry_run(result: Any) -> None:
    console.print(f"[bold]Dry run[/bold]: {result.engine} engine; nothing was sent.")
    if result.redactions:
        console.print(f"Redacted: {result.redactions}", highlight=False)
    for m in result.messages:
        console.print(f"[cyan]── {m.role}[/cyan]")
        console.print(m.content, highlight=False, markup=False)


def _print_footer(result: Any) -> None:
    for c in result.citations:
        console.print(f"[{c.n}] {c.title} — {c.where}  {c.link}", highlight=False, markup=False)
    if result.invalid_citations:
        nums = ", ".join(map(str, result.invalid_citations))
        err.print(f"Removed citations to sources that were not given: {nums}")
    if result.note:
        err.print(f"[dim]{result.note}[/dim]")
    if result.engine == "llm":
        cost = f", ~${result.cost_usd:.4f}" if result.cost_usd is not None else ""
        err.print(
            f"[dim]{result.model}: {result.prompt_tokens}+{result.completion_tokens} tokens"
            f"{cost}, {result.latency_ms:.0f} ms[/dim]"
        )


def _write(out: Path, result: Any, title: str, sources_as: str) -> None:
    from copilot.office.docx import write_docx

    suffix = out.suffix.lower()
    if suffix == ".docx":
        meta = {"skill": result.skill_id, "engine": result.engine}
        write_docx(out, title=title, body=result.text, citations=result.citations,
                   style=sources_as, meta=meta)  # type: ignore[arg-type]  # fmt: skip
    elif suffix == ".json":
        out.write_text(json.dumps(result.as_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        lines = [result.text, ""]
        lines += [f"[{c.n}] {c.title} — {c.where} {c.link}" for c in result.citations]
        out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")

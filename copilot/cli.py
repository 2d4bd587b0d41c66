"""The ``copilot`` command: sync sources, search, run and manage skills, status, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from copilot.config import Settings, get_settings
from copilot.eval.cli import eval_app
from copilot.skills.cli import skills_app
from copilot.skills.run_cli import run

app = typer.Typer(help="Office Copilot: your documents and mail, indexed and searchable.")
sync_app = typer.Typer(help="Bring a source into your index.")
app.add_typer(sync_app, name="sync")
app.add_typer(eval_app, name="eval")
app.add_typer(skills_app, name="skills")
app.command("run")(run)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose index (a user id).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:  # pydantic's message names the bad variable
        err.print(f"[red]Invalid configuration:[/red] {exc}")
        raise typer.Exit(2) from exc


def _progress_line(report: object) -> str:
    r = report
    rate = r.seen / r.seconds if r.seconds else 0.0  # type: ignore[attr-defined]
    return (
        f"seen {r.seen}  indexed {r.indexed}  unchanged {r.unchanged}  "  # type: ignore[attr-defined]
        f"failed {r.failed}  chunks {r.chunks}  {rate:,.1f} items/s"  # type: ignore[attr-defined]
    )


@sync_app.command("local")
def sync_local(
    path: Annotated[Path, typer.Argument(help="The folder to index, recursively.")],
    user: UserOpt,
    include: Annotated[
        list[str] | None, typer.Option(help="Only files matching this glob.")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip files/folders matching.")] = None,
    max_mb: Annotated[float | None, typer.Option(help="Skip files larger than this.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index every supported file under PATH (docx, xlsx, pdf, eml, msg, txt, md, html, csv)."""
    from connectors.local import DEFAULT_EXCLUDE, LocalFolder
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    settings = _settings()
    if not path.is_dir():
        err.print(f"[red]{path} is not a folder.[/red]")
        raise typer.Exit(2)
    connector = LocalFolder(
        path,
        owner=user,
        include=tuple(include or ()),
        exclude=tuple(DEFAULT_EXCLUDE) + tuple(exclude or ()),
        max_bytes=int(max_mb * 1024 * 1024) if max_mb else settings.max_file_bytes,
    )
    with Workspace(settings) as ws:
        if as_json:
            report = sync(connector, settings, ws.state, ws.store, ws.embedder)
            print(json.dumps(report.as_dict(), indent=2))
            return
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("scanning…")
            report = sync(
                connector,
                settings,
                ws.state,
                ws.store,
                ws.embedder,
                on_progress=lambda r: progress.update(task, description=_progress_line(r)),
            )
    console.print(
        f"Synced [bold]{connector.root}[/bold] for {user}: {report.indexed} indexed, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {report.failed} failed, "
        f"{report.chunks} chunks in {report.seconds:.1f} s."
    )
    for failure in report.failures:
        console.print(f"  [yellow]failed[/yellow] {failure['item']}: {failure['reason']}")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    user: UserOpt,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="How many results.")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid, dense or bm25.")] = "hybrid",
    kind: Annotated[str | None, typer.Option(help="Only 'mail' or 'file'.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search USER's index: hybrid (meaning + exact words) by default."""
    from copilot.index.search import QueryError, format_locator
    from copilot.index.search import search as run_search
    from copilot.index.store import SearchFilters
    from copilot.workspace import Workspace

    if mode not in ("hybrid", "dense", "bm25"):
        err.print(f"[red]Unknown mode {mode!r}: use hybrid, dense or bm25.[/red]")
        raise typer.Exit(2)
    filters = SearchFilters(kinds=(kind,)) if kind else None
    with Workspace(_settings()) as ws:
        try:
            results = run_search(ws, user, query, k=k, mode=mode, filters=filters)  # type: ignore[arg-type]
        except QueryError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps([r.as_dict() for r in results], indent=2, ensure_ascii=False))
        return
    if not results:
        console.print("No results.")
        return
    for n, r in enumerate(results, 1):
        console.print(
            f"[bold]{n}. {r.title}[/bold]  [dim]{format_locator(r.locator)}[/dim]  ({r.score:.3f})"
        )
        console.print(f"   {r.snippet}", highlight=False)


@app.command()
def status(
    user: Annotated[str | None, typer.Option("--user", "-u", help="Only this user.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """What is indexed, what failed and why, and when each source last synced."""
    from copilot.state import StateStore

    settings = _settings()
    state = StateStore(settings.state_url)
    try:
        summary = state.summary(user)
        summary["failures"] = [
            {"item": f["item_id"], "stage": f["stage"], "reason": f["reason"], "owner": f["owner"]}
            for f in state.failures(user)
        ]
    finally:
        state.close()
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    console.print(f"{summary['items']} items, {summary['chunks']} chunks indexed.")
    if summary["syncs"]:
        table = Table("user", "source", "status", "indexed", "unchanged", "failed", "seconds")
        for run in summary["syncs"]:
            c = run["counts"]
            table.add_row(
                run["owner"],
                run["scope"],
                run["status"],
                str(c.get("indexed", "")),
                str(c.get("unchanged", "")),
                str(c.get("failed", "")),
                f"{c.get('seconds', 0):.1f}",
            )
        console.print(table)
    for f in summary["failures"]:
        console.print(f"[yellow]failed[/yellow] ({f['stage']}) {f['item']}: {f['reason']}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Run the API (and the add-in pages under /addins) with uvicorn."""
    import uvicorn

    from copilot.api.app import create_app
    from copilot.api.auth import check_dev_mode_binding

    settings = _settings()
    host = host or settings.api_host
    try:
        check_dev_mode_binding(settings, host)
        api = create_app(settings)
    except (RuntimeError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if settings.auth == "dev":
        err.print("[yellow]Development mode: local users, no real sign-in. Loopback only.[/yellow]")
    uvicorn.run(api, host=host, port=port or settings.api_port, timeout_graceful_shutdown=10)


@app.command()
def demo(
    folder: Annotated[Path | None, typer.Option(help="Where to write the sample files.")] = None,
) -> None:
    """Build a sample workspace, index it for user 'demo' and run a few searches."""
    from copilot.demo import run_demo

    sys.exit(run_demo(_settings(), folder, console))


def main() -> None:
    """The console script: expected operational errors become one plain line, exit 2."""
    from copilot.index.store import IndexLockedError

    try:
        app()
    except IndexLockedError as exc:
        err.print(f"[red]{exc}[/red]")
        sys.exit(2)


if __name__ == "__main__":
    main()

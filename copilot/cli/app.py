"""The ``copilot`` command: sync sources, search, run and manage skills, status, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from copilot.cli.output import console, err, settings_or_exit
from copilot.cli.eval import eval_app
from copilot.cli.finetune import finetune_app
from copilot.cli.sources import (
    login,
    sources_list,
    sources_remove,
    sync_onedrive,
    sync_outlook,
    sync_sharepoint,
    watch,
)
from copilot.cli.manifest import manifest_build
from copilot.cli.model import model_app
from copilot.cli.skills import skills_app
from copilot.cli.run import run
from copilot.cli.sync import sync_imap, sync_local

app = typer.Typer(help="Office Copilot: your documents and mail, indexed and searchable.")
sync_app = typer.Typer(help="Bring a source into your index.")
app.add_typer(sync_app, name="sync")
app.add_typer(eval_app, name="eval")
app.add_typer(skills_app, name="skills")
app.add_typer(finetune_app, name="finetune")
app.add_typer(model_app, name="model")
app.command("run")(run)
sync_app.command("local")(sync_local)
sync_app.command("imap")(sync_imap)
sync_app.command("outlook")(sync_outlook)
sync_app.command("onedrive")(sync_onedrive)
sync_app.command("sharepoint")(sync_sharepoint)
sources_app = typer.Typer(help="The sources `copilot watch` keeps in sync.")
app.add_typer(sources_app, name="sources")
sources_app.command("list")(sources_list)
sources_app.command("remove")(sources_remove)
app.command("login")(login)
manifest_app = typer.Typer(help="Office add-in manifests and the Teams app package.")
app.add_typer(manifest_app, name="manifest")
manifest_app.command("build")(manifest_build)
app.command("watch")(watch)

UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose index (a user id).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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
    with Workspace(settings_or_exit()) as ws:
        try:
            results = run_search(ws.store, ws.embedder, user, query, k=k, filters=filters,
                                 mode=mode)  # type: ignore[arg-type]  # fmt: skip
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
    from copilot.db.state import StateStore

    settings = settings_or_exit()
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
    from copilot.api.server import uvicorn_config

    settings = settings_or_exit()
    host = host or settings.api_host
    try:
        check_dev_mode_binding(settings, host)
        api = create_app(settings)
    except (RuntimeError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if settings.auth == "dev":
        err.print("[yellow]Development mode: local users, no real sign-in. Loopback only.[/yellow]")
    config = uvicorn_config(api, settings, host, port or settings.api_port,
                            timeout_graceful_shutdown=10)  # fmt: skip
    try:
        uvicorn.Server(config).run()
    finally:  # the embedded model server started for this service stops with it
        from copilot.llm.embedded.server import stop_owned

        stop_owned(settings)


@app.command()
def demo(
    folder: Annotated[Path | None, typer.Option(help="Where to write the sample files.")] = None,
) -> None:
    """Build a sample workspace, index it for user 'demo' and run a few searches."""
    from copilot.cli.demo import run_demo

    sys.exit(run_demo(settings_or_exit(), folder, console))


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

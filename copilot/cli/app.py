"""The ``copilot`` command: sync sources, search, run and manage skills, status, demo."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from copilot.cli.backend import OptionalUserOpt, UserOpt, backend
from copilot.cli.eval import eval_app
from copilot.cli.finetune import finetune_app
from copilot.cli.manifest import manifest_build
from copilot.cli.model import model_app
from copilot.cli.output import console, fail, fail_for, settings_or_exit
from copilot.cli.run import run
from copilot.cli.runs import runs_app
from copilot.cli.skills import skills_app
from copilot.cli.sources import (
    login,
    sources_list,
    sources_remove,
    sync_onedrive,
    sync_outlook,
    sync_sharepoint,
    watch,
)
from copilot.cli.sync import sync_imap, sync_local

app = typer.Typer(help="Office Copilot: your documents and mail, indexed and searchable.")
sync_app = typer.Typer(help="Bring a source into your index.")
app.add_typer(sync_app, name="sync")
app.add_typer(eval_app, name="eval")
app.add_typer(skills_app, name="skills")
app.add_typer(finetune_app, name="finetune")
app.add_typer(model_app, name="model")
app.command("run")(run)
app.add_typer(runs_app, name="runs")
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
    from copilot.index.search import QueryError, place

    if mode not in ("hybrid", "dense", "bm25"):
        raise fail(f"Unknown mode {mode!r}: use hybrid, dense or bm25.")
    with backend(settings_or_exit()) as chosen:
        try:
            hits = chosen.search(user, query, k=k, mode=mode, kind=kind)
        except QueryError as exc:
            raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(hits, indent=2, ensure_ascii=False))
        return
    if not hits:
        console.print("No results.")
        return
    for n, r in enumerate(hits, 1):
        console.print(
            f"[bold]{n}. {r['title']}[/bold]  "
            f"[dim]{place(r['kind'], r['locator'], r.get('sender', ''), r.get('date', ''))}[/dim]  "
            f"({r['score']:.3f})"
        )
        console.print(f"   {r['snippet']}", highlight=False)


@app.command()
def status(
    user: OptionalUserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The service (if one runs), what is indexed, what failed and why, last syncs."""
    with backend(settings_or_exit()) as chosen:
        summary = chosen.status(user)
        summary["service"] = chosen.service()
    from copilot.cli import status as shown

    if as_json:
        print(shown.as_json(summary))
        return
    console.print(service_line(summary["service"]), highlight=False, markup=False)
    shown.show(console, summary)


def service_line(service: dict[str, Any] | None) -> str:
    """The first line of ``copilot status``: where commands run."""
    if service is None:
        return "Service: not running (commands run in this process; `copilot serve --detach`)."
    from copilot.cli.serve import uptime_words

    model = service.get("model") or service.get("engine")
    return (
        f"Service: running at {service['url']} (pid {service['pid']}, up "
        f"{uptime_words(service['uptime_s'])}, {service['engine']} engine"
        + (f", model {model}" if model != service.get("engine") else "")
        + ")."
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (0: any free one).")] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; log to serve.log.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=32, help="API processes on the one port (COPILOT_API_WORKERS)."),
    ] = None,
) -> None:
    """Run the copilot service (API, add-in pages, bot) that every command then uses.

    It owns the index, the state store and the model process; `copilot` commands of the
    same COPILOT_HOME find it (COPILOT_HOME/service.json) and work through it."""
    from copilot.cli.serve import serve_detached, serve_foreground

    settings = settings_or_exit()
    host = host or settings.api_host
    port = settings.api_port if port is None else port
    workers = settings.api_workers if workers is None else workers
    if detach:
        raise typer.Exit(serve_detached(settings, host, port, workers))
    serve_foreground(settings, host, port, workers)


@app.command()
def stop() -> None:
    """Stop the copilot service of this home (what its syncs stored stays)."""
    from copilot.cli.serve import stop_service

    raise typer.Exit(stop_service(settings_or_exit()))


@app.command()
def demo(
    folder: Annotated[Path | None, typer.Option(help="Where to write the sample files.")] = None,
) -> None:
    """Build a sample workspace, index it for user 'demo' and run a few searches."""
    from copilot.cli.demo import run_demo

    sys.exit(run_demo(settings_or_exit(), folder, console))


def main() -> None:
    """The console script: expected operational errors become one plain line (a locked
    index, a service that stopped answering or refused): exit 2, or 1 for a failure.

    The error classes are imported only once something failed: importing the index's
    module here would cost every command (and ``--help``) its start-up time."""
    try:
        app()
    except Exception as exc:
        from copilot.cli.backend_service import NotLocalUser
        from copilot.cli.client import ServiceError, ServiceGone
        from copilot.index.store import IndexLockedError

        if isinstance(exc, IndexLockedError):
            sys.exit(fail(str(exc)).exit_code)
        if isinstance(exc, ServiceGone | ServiceError | NotLocalUser):
            sys.exit(fail_for(exc).exit_code)
        raise


if __name__ == "__main__":
    main()

"""``copilot sync …``: bring a source into a user's index from the command line.

Every source goes through the same pipeline and the same report; what differs is only
how its connector is made (and where its secrets come from: never the command line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from copilot.cli.output import console, err, settings_or_exit
from copilot.config import Settings

UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose index (a user id).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the run's report as JSON.")]
KEYRING_SERVICE = "office-copilot-imap"


def progress_line(report: Any) -> str:
    rate = report.seen / report.seconds if report.seconds else 0.0
    return (
        f"seen {report.seen}  indexed {report.indexed}  unchanged {report.unchanged}  "
        f"failed {report.failed}  chunks {report.chunks}  {rate:,.1f} items/s"
    )


def run_sync(connector: Any, settings: Settings, label: str, as_json: bool) -> Any:
    """Sync ``connector`` with a progress line (or quietly for --json) and print the result."""
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    with Workspace(settings) as ws:
        if as_json:
            report = sync(connector, settings, ws.state, ws.store, ws.embedder)
            print(json.dumps(report.as_dict(), indent=2))
            return report
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task("starting…")
            report = sync(
                connector, settings, ws.state, ws.store, ws.embedder,
                on_progress=lambda r: progress.update(task, description=progress_line(r)),
            )  # fmt: skip
    console.print(
        f"Synced [bold]{label}[/bold] for {connector.owner}: {report.indexed} indexed, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {report.failed} failed, "
        f"{report.chunks} chunks in {report.seconds:.1f} s."
    )
    for failure in report.failures:
        console.print(f"  [yellow]failed[/yellow] {failure['item']}: {failure['reason']}")
    return report


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

    settings = settings_or_exit()
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
    run_sync(connector, settings, str(connector.root), as_json)
    from copilot.sources import Source, SourcesError, remember

    try:  # `copilot watch` keeps the folder in sync from now on
        remember(settings, Source(user=user, kind="local", path=str(connector.root)))
    except SourcesError as exc:
        err.print(f"[yellow]Not added to the watched sources: {exc}[/yellow]")


def sync_imap(
    user: UserOpt,
    host: Annotated[str, typer.Option(help="The IMAP server.")],
    port: Annotated[int | None, typer.Option(help="Default 993 (TLS) or 143.")] = None,
    username: Annotated[str | None, typer.Option(help="Login name; default the --user.")] = None,
    password_env: Annotated[
        str | None, typer.Option(help="Environment variable holding the password.")
    ] = None,
    tls: Annotated[bool, typer.Option("--tls", help="Implicit TLS (default).")] = False,
    starttls: Annotated[
        bool, typer.Option("--starttls", help="STARTTLS on the plain port.")
    ] = False,
    plain: Annotated[bool, typer.Option("--plain", help="No TLS: loopback hosts only.")] = False,
    folder: Annotated[list[str] | None, typer.Option(help="Folder to sync (repeatable).")] = None,
    ca_file: Annotated[Path | None, typer.Option(help="Extra CA certificate (PEM).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Index an IMAP mailbox, incrementally (UIDVALIDITY + UID). The password comes from
    --password-env or the system keyring (service "office-copilot-imap"), never argv."""
    from connectors.imap import (
        ImapConnector,
        ImapError,
        ImapSource,
        check_security,
        password_from,
    )

    if tls + starttls + plain > 1:
        err.print("[red]Choose one of --tls, --starttls or --plain.[/red]")
        raise typer.Exit(2)
    security = "starttls" if starttls else "plain" if plain else "tls"
    settings = settings_or_exit()
    login = username or user
    try:
        check_security(host, security)
        password = password_from(password_env, service=KEYRING_SERVICE, username=login)
        source = ImapSource(
            host=host, port=port, username=login, security=security,  # type: ignore[arg-type]
            folders=tuple(folder or ("INBOX",)), password=password, ca_file=ca_file,
        )  # fmt: skip
        connector = ImapConnector(source, owner=user, max_bytes=settings.max_file_bytes)
        run_sync(connector, settings, f"imap://{login}@{host}", as_json)
    except (ImapError, ValueError) as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc

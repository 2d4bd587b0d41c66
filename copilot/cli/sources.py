"""``copilot login``, ``copilot sync outlook|onedrive|sharepoint``, ``copilot watch`` and
``copilot sources``: Microsoft 365 from the command line.

Signing in: ``copilot login --user anna`` runs the device-code flow (open a page, type a
code) and keeps the tokens in ``COPILOT_HOME/tokens/cli-<hash of the user>.json`` (0600);
syncs then refresh them silently. An administrator syncs other people's mailboxes app-only
(``--app-only``, with COPILOT_ENTRA_CLIENT_SECRET in the environment): each mailbox's items
belong to the ``--user`` given, which should be that mailbox's user. No token or password is
ever taken on the command line.

Watching: every successful sync remembers its source (``copilot.sources``); ``copilot watch``
syncs all of them (or one user's) every ``--interval`` seconds. A source that fails is
reported and the others go on; Ctrl-C stops cleanly (what was stored stays, the next run
resumes at the last checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from copilot.cli.backend import OptionalUserOpt
from copilot.cli.sync import JsonOpt, UserOpt, console, err, run_sync, settings_or_exit
from copilot.config import Settings
from copilot.sources import Source, SourcesError, forget, load_sources, remember

AppOnlyOpt = Annotated[
    bool,
    typer.Option("--app-only", help="The app's own permissions (COPILOT_ENTRA_CLIENT_SECRET)."),
]
MIN_INTERVAL_S, MAX_INTERVAL_S = 30.0, 86_400.0


def token_cache_path(settings: Settings, user: str) -> Path:
    """Hashed, so a user name never becomes part of a path (a local user's by the name, as
    before local ids: ``local:anna`` keeps anna's sign-in)."""
    from copilot.db.owners import local_name  # here, not at import: `--help` stays fast

    key = local_name(user) or user
    return settings.home_dir / "tokens" / f"cli-{hashlib.sha256(key.encode()).hexdigest()}.json"


def _prompt(message: str) -> None:
    err.print(f"[bold]{message}[/bold]", highlight=False)


def token_provider(settings: Settings, source: Source, *, interactive: bool) -> Any:
    """The token provider a source needs: app-only, or the user's device-code sign-in."""
    from connectors.graph.auth import client_credentials_provider, device_code_provider
    from copilot.db.owners import local_name

    if source.app_only:
        return client_credentials_provider(settings)
    return device_code_provider(
        settings,
        token_cache_path(settings, source.user),
        prompt=_prompt,
        user=local_name(source.user) or source.user,
        interactive=interactive,
    )


def connector_for(settings: Settings, source: Source, *, interactive: bool = False) -> Any:
    """The connector of a configured source (a new token provider and client each time)."""
    if source.kind == "local":
        from connectors.local import DEFAULT_EXCLUDE, LocalFolder

        if not Path(source.path).is_dir():
            raise ValueError(f"{source.path} is not a folder (any more)")
        return LocalFolder(
            Path(source.path),
            owner=source.user,
            exclude=tuple(DEFAULT_EXCLUDE),
            max_bytes=settings.max_file_bytes,
        )
    from connectors.graph import GraphDrive, GraphMail, client_from_settings

    client = client_from_settings(
        settings, token_provider(settings, source, interactive=interactive)
    )
    if source.kind == "outlook":
        return GraphMail(client, source.user, mailbox=source.mailbox,
                         folders=list(source.folders or settings.graph_mail_folders),
                         max_mime_bytes=settings.max_file_bytes)  # fmt: skip
    return GraphDrive(client, source.user, drive=source.drive, max_bytes=settings.max_file_bytes)


def _sync_source(settings: Settings, source: Source, as_json: bool) -> Any:
    """Sync one source interactively (a TTY may sign in) and remember it if it worked."""
    connector = connector_for(settings, source, interactive=sys.stdin.isatty())
    report = run_sync(connector, settings, source.id, as_json)
    remember(settings, source)
    return report


def _run_or_exit(settings: Settings, sources: list[Source], as_json: bool) -> None:
    from connectors.graph.auth import GraphAuthError

    failed = 0
    for source in sources:
        try:
            _sync_source(settings, source, as_json)
        except (GraphAuthError, SourcesError, ValueError) as exc:
            err.print(f"[red]{source.id}: {exc}[/red]")
            failed += 1
    if failed:
        raise typer.Exit(2 if failed == len(sources) else 1)


def login(
    user: UserOpt,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant id or domain; default COPILOT_ENTRA_TENANT_ID.")
    ] = None,
) -> None:
    """Sign in to Microsoft 365 for USER with a device code; later syncs reuse the sign-in."""
    from connectors.graph.auth import GraphAuthError, cached_username, device_code_provider

    settings = settings_or_exit()
    final = token_cache_path(settings, user)
    # A fresh cache, put in place only once the sign-in worked: a failed or abandoned
    # login keeps the previous one.
    fresh = final.with_name(f".login-{os.getpid()}-{final.name}")
    try:
        provider = device_code_provider(settings, fresh, prompt=_prompt, user=user, tenant=tenant)
        provider()
        os.replace(fresh, final)
    except GraphAuthError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        err.print("Sign-in cancelled.")
        raise typer.Exit(130) from None
    finally:
        fresh.unlink(missing_ok=True)
    who = cached_username(final) or "your account"
    console.print(f"Signed in as [bold]{who}[/bold] for user {user}; syncs will reuse it.")


def sync_outlook(
    user: UserOpt,
    folder: Annotated[
        list[str] | None,
        typer.Option(help="Mail folder to sync (repeatable); default the configured ones."),
    ] = None,
    mailbox: Annotated[
        str | None, typer.Option(help="Another mailbox (user id or UPN); app-only: default --user.")
    ] = None,
    app_only: AppOnlyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Index Outlook mail through Microsoft Graph, incrementally (delta per folder)."""
    from copilot.db.owners import local_name

    settings = settings_or_exit()
    box = mailbox or ((local_name(user) or user) if app_only else "me")
    source = Source(user=user, kind="outlook", mailbox=box, folders=tuple(folder or ()),
                    app_only=app_only)  # fmt: skip
    _run_or_exit(settings, [source], as_json)


def sync_onedrive(user: UserOpt, as_json: JsonOpt = False) -> None:
    """Index USER's OneDrive through Microsoft Graph, incrementally (drive delta)."""
    settings = settings_or_exit()
    _run_or_exit(settings, [Source(user=user, kind="onedrive", drive="me")], as_json)


def sync_sharepoint(
    user: UserOpt,
    drive: Annotated[
        list[str] | None,
        typer.Option(help="Library drive id (repeatable); default COPILOT_GRAPH_SITE_DRIVES."),
    ] = None,
    app_only: AppOnlyOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Index SharePoint document libraries through Microsoft Graph, incrementally."""
    settings = settings_or_exit()
    drives = list(drive or settings.graph_site_drives)
    if not drives:
        err.print("[red]Name a library with --drive, or set COPILOT_GRAPH_SITE_DRIVES.[/red]")
        raise typer.Exit(2)
    sources = [Source(user=user, kind="sharepoint", drive=d, app_only=app_only) for d in drives]
    _run_or_exit(settings, sources, as_json)


def watch(
    user: OptionalUserOpt = None,
    interval: Annotated[
        float | None,
        typer.Option(
            min=MIN_INTERVAL_S,
            max=MAX_INTERVAL_S,
            help="Seconds between rounds; default COPILOT_SYNC_INTERVAL_S.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
) -> None:
    """Sync every configured source (see `copilot sources list`) on an interval."""
    settings = settings_or_exit()
    every = min(max(interval or settings.sync_interval_s, MIN_INTERVAL_S), MAX_INTERVAL_S)
    _adopt_legacy_owners(settings)
    try:
        while True:
            started = time.monotonic()
            failed = _round(settings, user)
            if once:
                raise typer.Exit(1 if failed else 0)
            wait = every - (time.monotonic() - started)
            if wait > 0:
                err.print(f"Next round in {wait:.0f} s (Ctrl-C stops).")
                time.sleep(wait)
    except KeyboardInterrupt:
        err.print("Stopped; the next run resumes where this one stopped.")


def _adopt_legacy_owners(settings: Settings) -> None:
    """Sources and data of older user ids (``anna``) move to ``local:anna`` first."""
    from copilot.cli.backend_local import adopt_legacy_owners
    from copilot.workspace import Workspace

    with Workspace(settings) as ws:
        adopt_legacy_owners(ws)


def _round(settings: Settings, user: str | None) -> int:
    """Sync each source once; a failing one is reported and the rest go on. Failures."""
    try:  # read every round: `copilot sources remove` takes effect without a restart
        sources = [s for s in load_sources(settings) if user is None or s.user == user]
    except SourcesError as exc:
        err.print(f"[red]{exc}[/red]")
        return 1
    if not sources:
        err.print("No sources configured: a successful `copilot sync outlook|onedrive|"
                  "sharepoint` adds one.")  # fmt: skip
        return 1
    failed = 0
    for source in sources:
        try:
            run_sync(connector_for(settings, source), settings, source.id, as_json=False)
        except Exception as exc:  # auth, network, a locked index: the next source still runs
            err.print(f"[red]{source.id}: {exc}[/red]", highlight=False)
            failed += 1
    return failed


def sources_list(
    user: OptionalUserOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The sources `copilot watch` syncs."""
    from copilot.db.owners import adopt_legacy_sources

    settings = settings_or_exit()
    adopt_legacy_sources(settings)  # older user ids (anna) are local:anna now
    try:
        sources = [s for s in load_sources(settings) if user is None or s.user == user]
    except SourcesError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps([{"id": s.id, **s.__dict__} for s in sources], indent=2))
        return
    for s in sources:
        extra = " (app-only)" if s.app_only else ""
        folders = f" folders: {', '.join(s.folders)}" if s.folders else ""
        console.print(f"{s.id}{extra}{folders}", highlight=False)
    if not sources:
        console.print("No sources configured.")


def sources_remove(
    source_id: Annotated[str, typer.Argument(help="The id `copilot sources list` shows.")],
) -> None:
    """Stop watching a source (what it indexed stays until you delete it)."""
    try:
        removed = forget(settings_or_exit(), source_id)
    except SourcesError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if not removed:
        err.print(f"[red]No source {source_id!r}; see `copilot sources list`.[/red]")
        raise typer.Exit(2)
    console.print(f"Removed {source_id}.")

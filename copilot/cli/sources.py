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

Beside a running ``copilot serve`` (it owns the index): the syncs, ``watch``'s among them,
run in the service as jobs (``sync_spec``, as ``sync local`` does), with the same progress,
output and exit codes. The sign-in stays here, where the person is: before a signed-in
sync starts, this process takes a token from the home's token cache (a first sign-in on a
terminal shows its code here), and the service's job reads the same cache. ``login``
never touches the index, so it works the same whether or not a service runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from copilot.cli.backend import OptionalUserOpt
from copilot.cli.sync import JsonOpt, UserOpt, console, err, settings_or_exit, sync_spec
from copilot.sources import Source, SourcesError, forget, load_sources, remember

if TYPE_CHECKING:  # imported by the commands that use them: `copilot --help` stays fast
    from copilot.config import Settings

AppOnlyOpt = Annotated[
    bool,
    typer.Option("--app-only", help="The app's own permissions (COPILOT_ENTRA_CLIENT_SECRET)."),
]
MIN_INTERVAL_S, MAX_INTERVAL_S = 30.0, 86_400.0


def token_cache_path(settings: Settings, user: str) -> Path:
    """Where USER's sign-in is kept (``copilot.api.cli_ops.token_cache_path``)."""
    from copilot.api.cli_ops import token_cache_path as cache_path  # not at import: --help

    return cache_path(settings, user)


def _prompt(message: str) -> None:
    err.print(f"[bold]{escape(message)}[/bold]", highlight=False)


def sign_in_first(settings: Settings, source: Source, *, interactive: bool) -> None:
    """Take a token for a signed-in Graph source before its sync starts.

    Why here and not in the sync: the sync may run in the service, which cannot show a
    sign-in code to anyone. On a terminal a first sign-in happens now; otherwise a missing
    or expired sign-in fails now, with words saying to run ``copilot login``, the same
    whichever process would have run the sync. App-only sources need no sign-in."""
    from copilot.api.cli_ops import GRAPH_KINDS, graph_token_provider

    if source.kind in GRAPH_KINDS and not source.app_only:
        graph_token_provider(settings, source, interactive=interactive, prompt=_prompt)()


def _sync_source(settings: Settings, source: Source, as_json: bool) -> Any:
    """Sync one source (a terminal may sign in first) and remember it if it worked."""
    from copilot.api.cli_ops import spec_for_source

    sign_in_first(settings, source, interactive=sys.stdin.isatty())
    spec = spec_for_source(source, settings)
    report = sync_spec(spec, source.user, settings, source.id, as_json)
    remember(settings, source)
    return report


def _run_or_exit(settings: Settings, sources: list[Source], as_json: bool) -> None:
    from connectors.graph.auth import GraphAuthError
    from copilot.cli.backend_service import SyncFailed
    from copilot.cli.client import ServiceError

    failed = 0
    for source in sources:
        try:
            _sync_source(settings, source, as_json)
        except (GraphAuthError, SourcesError, ValueError, SyncFailed, ServiceError) as exc:
            err.print(f"[red]{escape(f'{source.id}: {exc}')}[/red]", highlight=False)
            failed += 1
    if failed:
        raise typer.Exit(2 if failed == len(sources) else 1)


def login(
    user: UserOpt,
    tenant: Annotated[
        str | None, typer.Option(help="Tenant id or domain; default COPILOT_ENTRA_TENANT_ID.")
    ] = None,
) -> None:
    """Sign in to Microsoft 365 for USER with a device code; later syncs reuse the sign-in.

    The same with or without a running service: it writes only USER's token cache in
    COPILOT_HOME, which the service's syncs read (no index, no state store)."""
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
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        err.print("Sign-in cancelled.")
        raise typer.Exit(130) from None
    finally:
        fresh.unlink(missing_ok=True)
    who = cached_username(final) or "your account"
    console.print(f"Signed in as [bold]{escape(who)}[/bold] for user {escape(user)}; syncs "
                  "will reuse it.", highlight=False)  # fmt: skip


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
    """Sources and data of older user ids (``anna``) move to ``local:anna`` first (a running
    service did so when it started, and holds the index: nothing to do here then)."""
    from copilot.cli.backend_local import adopt_legacy_owners
    from copilot.cli.client import find_service
    from copilot.workspace import Workspace

    if find_service(settings) is not None:
        from copilot.db.owners import adopt_legacy_sources

        adopt_legacy_sources(settings)  # the sources file; the data is the service's
        return
    with Workspace(settings) as ws:
        adopt_legacy_owners(ws)


def _round(settings: Settings, user: str | None) -> int:
    """Sync each source once; a failing one is reported and the rest go on. Failures."""
    try:  # read every round: `copilot sources remove` takes effect without a restart
        sources = [s for s in load_sources(settings) if user is None or s.user == user]
    except SourcesError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        return 1
    if not sources:
        err.print("No sources configured: a successful `copilot sync outlook|onedrive|"
                  "sharepoint` adds one.")  # fmt: skip
        return 1
    from copilot.api.cli_ops import spec_for_source

    failed = 0
    for source in sources:  # each in the service if one runs now, else here (sync_spec)
        try:
            spec = spec_for_source(source, settings)
            sync_spec(spec, source.user, settings, source.id, as_json=False)
        except Exception as exc:  # auth, network, a locked index: the next source still runs
            err.print(f"[red]{escape(f'{source.id}: {exc}')}[/red]", highlight=False)
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

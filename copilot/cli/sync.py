"""``copilot sync …``: bring a source into a user's index from the command line.

Every source goes through the same pipeline and the same report; what differs is only
how its connector is made (and where its secrets come from: never the command line).
Every sync — ``local``, ``imap`` and the Microsoft 365 ones (``cli/sources.py``) — runs in
the copilot service when one is running (a job of its job manager, with the same progress
line) and in this process otherwise (``copilot.cli.backend``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from copilot.cli.backend import UserOpt as UserOpt  # re-exported for cli/sources.py
from copilot.cli.backend import backend
from copilot.cli.output import console, err, fail, settings_or_exit

if TYPE_CHECKING:  # imported by the commands that use them: `copilot --help` stays fast
    from copilot.api.cli_ops import SyncSpec
    from copilot.cli.progress import Total
    from copilot.config import Settings
    from copilot.ingest.pipeline import SyncReport

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the run's report as JSON.")]
KEYRING_SERVICE = "office-copilot-imap"
__all__ = ["JsonOpt", "UserOpt", "console", "err", "settings_or_exit", "sync_spec"]


@contextmanager
def progress_shown(
    as_json: bool, total: Total | None = None
) -> Iterator[tuple[Callable[..., None], Callable[[], None]]]:
    """``(on_progress, on_waiting)`` for a sync: a bar on a terminal, plain lines when piped
    (``cli/progress.py``), nothing for --json."""
    from copilot.cli.progress import sync_progress

    with sync_progress(err, total, enabled=not as_json) as shown:
        yield shown.update, shown.waiting


def print_report(report: SyncReport, label: str, owner: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return
    # Names and reasons are escaped: a folder called "[old]" must print as it is.
    reused = f" ({report.reused} not embedded again)" if report.reused else ""
    console.print(
        f"Synced [bold]{escape(label)}[/bold] for {escape(owner)}: {report.indexed} indexed, "
        f"{report.unchanged} unchanged, {report.deleted} deleted, {report.failed} failed, "
        f"{report.chunks} chunks{reused} in {report.seconds:.1f} s.",
        highlight=False,
    )
    for failure in report.failures:
        item, reason = escape(failure["item"]), escape(failure["reason"])
        console.print(f"  [yellow]failed[/yellow] {item}: {reason}", highlight=False)
    for note in report.notes:
        item, text = escape(note["item"]), escape(note["note"])
        console.print(f"  [cyan]note[/cyan] {item}: {text}", highlight=False)


def sync_spec(
    spec: SyncSpec, user: str, settings: Settings, label: str, as_json: bool,
    total: Total | None = None,
) -> Any:  # fmt: skip
    """Sync the source ``spec`` names where the backend runs it, and print the result."""
    shown = progress_shown(as_json, total)
    with backend(settings) as chosen, shown as (on_progress, on_waiting):
        report = chosen.sync(user, spec, on_progress=on_progress, on_waiting=on_waiting)
    print_report(report, label, user, as_json)
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
    from copilot.api.cli_ops import SyncSpec
    from copilot.cli.backend_service import SyncFailed
    from copilot.cli.progress import count_files

    settings = settings_or_exit()
    if not path.is_dir():
        raise fail(f"{path} is not a folder.")
    root = path.expanduser().resolve()
    total = count_files(root)  # "n of N" (or "~N") in the progress; the job's ETA
    spec = SyncSpec(
        "local",
        path=str(root),
        include=tuple(include or ()),
        exclude=tuple(exclude or ()),
        max_bytes=int(max_mb * 1024 * 1024) if max_mb else None,
        total=total.count,
    )
    try:
        sync_spec(spec, user, settings, str(root), as_json, total)
    except (SyncFailed, ValueError) as exc:
        raise fail(str(exc)) from exc
    from copilot.sources import Source, SourcesError, remember

    try:  # `copilot watch` keeps the folder in sync from now on
        remember(settings, Source(user=user, kind="local", path=str(root)))
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
    from connectors.imap import ImapError, check_security, password_from
    from copilot.api.cli_ops import SyncSpec
    from copilot.cli.backend_service import SyncFailed
    from copilot.db.owners import local_name

    if tls + starttls + plain > 1:
        raise fail("Choose one of --tls, --starttls or --plain.")
    security = "starttls" if starttls else "plain" if plain else "tls"
    settings = settings_or_exit()
    login = username or local_name(user) or user
    try:
        check_security(host, security)
        password = password_from(password_env, service=KEYRING_SERVICE, username=login)
        spec = SyncSpec(
            "imap", host=host, port=port, username=login, security=security,
            folders=tuple(folder or ("INBOX",)), password=password,
            ca_file=str(ca_file.resolve()) if ca_file else None,
        )  # fmt: skip
        sync_spec(spec, user, settings, f"imap://{login}@{host}", as_json)
    except (ImapError, SyncFailed, ValueError) as exc:
        raise fail(str(exc)) from exc

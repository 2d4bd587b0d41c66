"""What each ``copilot`` command does, the same in the CLI's own process and in the service.

A command runs in one of two places (``copilot/cli/backend*.py``): in the CLI's process
when no service is running, or inside ``copilot serve`` through the ``/v1/cli`` routes
(``routes_local.py``) when one is — the embedded index has one writer, and the service is
it. Both places call these functions with their own open workspace, so what a command
prints cannot depend on where it ran. Results are plain JSON-able values.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from connectors.errors import ConnectorError
from copilot.config import Settings
from copilot.errors import CopilotError, describe

if TYPE_CHECKING:
    from connectors.base import Connector
    from copilot.db.state import StateStore
    from copilot.skills.result import RunResult
    from copilot.skills.runner import SkillRunner
    from copilot.sources import Source
    from copilot.workspace import Workspace

Event = Callable[[str, dict[str, Any]], None]


def cli_words(exc: BaseException) -> tuple[str, int]:
    """What the CLI prints for ``exc`` and its exit code (as ``copilot.cli.output.fail_for``):
    an expected error's own words (for a model error more than the API shows: whoever runs
    the CLI can change the server or the setting), 1 when the copilot or a service failed."""
    described = describe(exc, where="a command")
    expected = isinstance(exc, CopilotError | ConnectorError) and str(exc)
    return (str(exc) if expected else described.detail), (1 if described.status >= 500 else 2)


# -- sync ---------------------------------------------------------------------------------


GRAPH_KINDS = ("outlook", "onedrive", "sharepoint")


@dataclass(frozen=True)
class SyncSpec:
    """A source as ``copilot sync local|imap|outlook|onedrive|sharepoint`` names it; secrets
    only in ``password`` (IMAP) and ``client_secret`` (an app-only Graph sync: the CLI's
    COPILOT_ENTRA_CLIENT_SECRET, which the service may not have in its environment).

    A signed-in (delegated) Graph sync carries no secret: its tokens are in the home's token
    cache (``token_cache_path``), which the CLI and the service of that home share."""

    kind: Literal["local", "imap", "outlook", "onedrive", "sharepoint"]
    path: str | None = None  # local
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_bytes: int | None = None
    host: str | None = None  # imap
    port: int | None = None
    username: str | None = None
    security: str = "tls"
    folders: tuple[str, ...] = ("INBOX",)
    ca_file: str | None = None
    password: str | None = field(default=None, repr=False)
    mailbox: str = "me"  # outlook
    drive: str = "me"  # onedrive "me", sharepoint a library's drive id
    app_only: bool = False  # outlook, sharepoint
    client_secret: str | None = field(default=None, repr=False)
    total: int | None = None  # items expected, if the CLI counted them already (the ETA)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def spec_for_source(source: Source, settings: Settings) -> SyncSpec:
    """The spec of a remembered source (``copilot.sources``), as ``copilot watch`` syncs it."""
    if source.kind == "local":
        return SyncSpec("local", path=source.path)
    secret = settings.entra_client_secret if source.app_only else None
    return SyncSpec(
        source.kind, folders=tuple(source.folders), mailbox=source.mailbox, drive=source.drive,
        app_only=source.app_only, client_secret=secret.get_secret_value() if secret else None,
    )  # fmt: skip


def source_of(spec: SyncSpec, owner: str) -> Source:
    """The Graph source ``spec`` names, for ``owner``."""
    from copilot.sources import Kind, Source

    if spec.kind not in GRAPH_KINDS:
        raise SyncSpecError(f"{spec.kind} is not a Microsoft 365 source.")
    kind = cast("Kind", spec.kind)  # one of GRAPH_KINDS, checked above
    return Source(user=owner, kind=kind, mailbox=spec.mailbox, folders=tuple(spec.folders),
                  app_only=spec.app_only, drive=spec.drive)  # fmt: skip


def token_cache_path(settings: Settings, user: str) -> Path:
    """Where a local user's Microsoft 365 sign-in is kept (``copilot login``), hashed so a
    user name never becomes part of a path (a local user's by the name, as before local
    ids: ``local:anna`` keeps anna's sign-in). The CLI and the service of one home read
    the same file, so a sign-in in the terminal serves syncs run by the service."""
    from copilot.db.owners import local_name

    key = local_name(user) or user
    return settings.home_dir / "tokens" / f"cli-{hashlib.sha256(key.encode()).hexdigest()}.json"


def graph_token_provider(
    settings: Settings,
    source: Source,
    *,
    interactive: bool = False,
    prompt: Callable[[str], None] | None = None,
) -> Callable[[], str]:
    """The token provider a Graph source needs: app-only, or the user's device-code sign-in
    (``interactive``: a first sign-in may show ``prompt`` a code; never in the service)."""
    from connectors.graph.auth import client_credentials_provider, device_code_provider
    from copilot.db.owners import local_name

    if source.app_only:
        return client_credentials_provider(settings)
    return device_code_provider(
        settings,
        token_cache_path(settings, source.user),
        prompt=prompt or (lambda message: None),
        user=local_name(source.user) or source.user,
        interactive=interactive,
    )


def graph_connector(settings: Settings, source: Source) -> Connector:
    """The Graph connector of ``source`` (a new client and token provider each time)."""
    from connectors.graph import GraphDrive, GraphMail, client_from_settings

    client = client_from_settings(settings, graph_token_provider(settings, source))
    if source.kind == "outlook":
        return GraphMail(client, source.user, mailbox=source.mailbox,
                         folders=list(source.folders or settings.graph_mail_folders),
                         max_mime_bytes=settings.max_file_bytes)  # fmt: skip
    return GraphDrive(client, source.user, drive=source.drive, max_bytes=settings.max_file_bytes)


def connector_for(spec: SyncSpec, owner: str, settings: Settings) -> Connector:
    """The connector ``spec`` describes, writing into ``owner``'s index."""
    if spec.kind == "local":
        from connectors.local import DEFAULT_EXCLUDE, LocalFolder

        if not spec.path or not Path(spec.path).is_dir():
            raise SyncSpecError(f"{spec.path} is not a folder.")
        return LocalFolder(
            Path(spec.path),
            owner=owner,
            include=spec.include,
            exclude=tuple(DEFAULT_EXCLUDE) + spec.exclude,
            max_bytes=spec.max_bytes or settings.max_file_bytes,
        )
    if spec.kind == "imap":
        from connectors.imap import ImapConnector, ImapSource, check_security

        if not spec.host or not spec.username or spec.password is None:
            raise SyncSpecError("An IMAP sync needs a host, a user name and a password.")
        security = check_security(spec.host, spec.security)
        source = ImapSource(
            host=spec.host, port=spec.port, username=spec.username, security=security,
            folders=spec.folders, password=spec.password,
            ca_file=Path(spec.ca_file) if spec.ca_file else None,
        )  # fmt: skip
        return ImapConnector(source, owner=owner, max_bytes=settings.max_file_bytes)
    if spec.kind in GRAPH_KINDS:
        if spec.client_secret:  # the CLI's app secret, for this sync only
            from pydantic import SecretStr

            secret = SecretStr(spec.client_secret)
            settings = settings.model_copy(update={"entra_client_secret": secret})
        return graph_connector(settings, source_of(spec, owner))
    raise SyncSpecError(
        f"Unknown source kind {spec.kind!r}: use local, imap, {', '.join(GRAPH_KINDS)}."
    )


COUNT_LIMIT = 200_000  # files counted before giving up on an exact total
COUNT_BUDGET_S = 2.0  # time spent counting before giving up on an exact total


def count_files(
    root: Path, *, limit: int = COUNT_LIMIT, budget_s: float = COUNT_BUDGET_S
) -> tuple[int, bool]:
    """The files under ``root`` (hidden ones skipped, as the local connector does) and
    whether that is exact: counting stops at ``limit`` files or after ``budget_s``.

    Why count at all: a sync's total turns its rate into an ETA, in the CLI's progress and
    in ``GET /v1/sync/{id}`` alike (``copilot.api.jobs``)."""
    deadline = time.monotonic() + budget_s
    count = 0
    for _folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(1 for f in files if not f.startswith("."))
        if count >= limit or time.monotonic() > deadline:
            return count, False
    return count, True


def sync_total(spec: SyncSpec) -> int | None:
    """The items a sync of ``spec`` will see, for its job's ETA: a local folder's files
    (about, when counting stopped early); None for a mailbox or a drive, which say how
    much there is only as the sync goes."""
    if spec.total is not None:
        return max(spec.total, 0)
    if spec.kind != "local" or not spec.path:
        return None
    return count_files(Path(spec.path))[0]


class SyncSpecError(CopilotError, ValueError):
    """A source the CLI named that cannot be synced, named."""

    kind = "bad_source"
    status = 400
    title = "I can't sync that"


# -- search and status ----------------------------------------------------------------------


def search(
    ws: Workspace, owner: str, query: str, *, k: int, mode: str, kind: str | None
) -> list[dict[str, Any]]:
    """``copilot search``: the hits as ``--json`` prints them (QueryError if empty)."""
    from copilot.index.base import is_mode
    from copilot.index.filters import SearchFilters
    from copilot.index.search import search as run_search

    if not is_mode(mode):
        raise ValueError(f"unknown search mode {mode!r}")
    filters = SearchFilters(kinds=(kind,)) if kind else None
    results = run_search(ws.store, ws.embedder, owner, query, k=k, filters=filters, mode=mode)
    return [_plain(r.as_dict()) for r in results]


def status(
    state: StateStore, owner: str | None, settings: Settings | None = None
) -> dict[str, Any]:
    """``copilot status``: what is indexed, each source's last sync, every failure, and
    (``settings`` given) whether the configured embedding model's index is missing."""
    from copilot.ingest.reindex import index_notice

    summary = state.summary(owner)
    notice = index_notice(settings, summary["chunks"]) if settings is not None else None
    summary["notices"] = [notice] if notice else []
    summary["failures"] = [
        {"item": f["item_id"], "stage": f["stage"], "reason": f["reason"], "owner": f["owner"]}
        for f in state.failures(owner)
    ]
    return _plain(summary)


# -- skills ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunArgs:
    """``copilot run``'s arguments, as typed (a file by its path on this machine)."""

    skill: str
    text: str | None = None
    file: str | None = None
    mail: str | None = None
    sets: tuple[str, ...] = ()
    query: str | None = None
    engine: str = "auto"
    retrieval: bool | None = None
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def run(
    runner: SkillRunner,
    owner: str,
    args: RunArgs,
    on_event: Event,
    *,
    cancel: threading.Event | None = None,
) -> RunResult:
    """``copilot run SKILL``: the request assembled as for any CLI run, then run."""
    from copilot.skills.request import from_cli

    template = runner.skills.get(owner, args.skill).template
    request = from_cli(
        template,
        args.skill,
        state=runner.workspace.state,
        owner=owner,
        max_file_bytes=runner.workspace.settings.max_file_bytes,
        text=args.text,
        file=Path(args.file) if args.file else None,
        item_id=args.mail,
        sets=list(args.sets),
        query=args.query,
        engine=args.engine,
        retrieval=args.retrieval,
        dry_run=args.dry_run,
    )
    return runner.run_request(owner, request, on_event=on_event, cancel=cancel)


def result_json(result: RunResult) -> dict[str, Any]:
    """A run's result as ``copilot run --json`` prints it."""
    return _plain(result.as_dict())


def score(
    runner: SkillRunner,
    owner: str,
    skill: str,
    file: str,
    *,
    column: str,
    sheet: str | None,
    out: str,
    engine: str,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """``copilot run SKILL --file BOOK.xlsx --column C``: write the scored copy to ``out``."""
    from copilot.office.scoring import score_workbook

    summary = score_workbook(runner, owner, skill, Path(file), column, out=Path(out),
                             sheet=sheet, engine=engine, on_progress=on_progress)  # fmt: skip
    return _plain(summary)


def skills_call(runner: SkillRunner, owner: str, op: str, args: dict[str, Any]) -> Any:
    """One ``copilot skills`` operation on ``owner``'s skills, as JSON-able values."""
    from copilot.skills.library.testing import compare_samples
    from copilot.skills.request import parse_sets

    store = runner.skills
    if op == "list":
        return _plain([i.__dict__ for i in store.list(owner, surface=args.get("surface"))])
    if op == "get":
        return stored_json(store.get(owner, args["skill"], args.get("version")))
    if op == "fork":
        return stored_json(store.fork(owner, args["skill"], args.get("new_id")))
    if op == "save":
        return stored_json(store.save(owner, args["skill"], args["text"],
                                      message=args.get("message", "")))  # fmt: skip
    if op == "history":
        return _plain([v.__dict__ for v in store.history(owner, args["skill"])])
    if op == "revert":
        return stored_json(store.revert(owner, args["skill"], args["version"]))
    if op == "import":
        return stored_json(store.import_text(owner, args["text"], skill_id=args.get("new_id")))
    if op == "export":
        return store.export_text(owner, args["skill"], args.get("version"))
    if op == "samples":
        return _plain(store.samples(owner, args["skill"]))
    if op == "add_sample":
        template = store.get(owner, args["skill"]).template
        inputs = parse_sets(template, list(args.get("sets") or ()))
        store.add_sample(owner, args["skill"], args["name"], inputs)
        return None
    if op == "delete_sample":
        store.delete_sample(owner, args["skill"], args["name"])
        return None
    if op == "test":
        rows = compare_samples(runner, owner, args["skill"], candidate_text=args.get("candidate"),
                               engine=args.get("engine", "auto"))  # fmt: skip
        return _plain(rows)
    if op == "compare":  # `copilot finetune compare`: two models on the skill's samples
        from copilot.finetune.switch import compare_models

        return _plain(compare_models(runner, owner, args["skill"], list(args["models"]),
                                     args.get("inputs")))  # fmt: skip
    raise SyncSpecError(f"Unknown skills operation {op!r}.")


SKILL_OPS = ("list", "get", "fork", "save", "history", "revert", "import", "export",
             "samples", "add_sample", "delete_sample", "test", "compare")  # fmt: skip
LONG_SKILL_OPS = ("test", "compare")  # many runs in one call: a longer client timeout


def stored_json(stored: Any) -> dict[str, Any]:
    """What the CLI shows of a stored skill."""
    return {"id": stored.id, "version": stored.version, "text": stored.text,
            "source": stored.source, "name": stored.template.name}  # fmt: skip


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (what ``--json`` prints with ``default=str``), so a
    result read over HTTP and one made here compare equal."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))

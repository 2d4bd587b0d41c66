"""Where a command's work runs, and as whom: the one place each command's path is chosen.

Like Ollama's or Docker's CLI, ``copilot`` is a client of the service when one runs:
``copilot serve`` owns the index (one writer), the state store and the model process, so
a command that touches them first looks for it (``client.find_service``) and, if it
answers, works through it (:class:`~copilot.cli.backend_service.ServiceBackend`);
otherwise it works in its own process as before
(:class:`~copilot.cli.backend_local.LocalBackend`). Both call the same operations
(``copilot.api.cli_ops``), so output and exit codes do not depend on the path.

Who: ``--user NAME`` (default the OS account's name) is the local user ``local:NAME``,
the same person the task pane and the bot know in dev mode (``copilot.db.owners``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

if TYPE_CHECKING:  # imported by the commands that use them: `copilot --help` stays fast
    from copilot.api.cli_ops import RunArgs, SyncSpec
    from copilot.config import Settings
    from copilot.ingest.pipeline import SyncReport
    from copilot.skills.result import RunResult

Event = Callable[[str, dict[str, Any]], None]


class Backend(Protocol):
    """What the commands need from wherever their work runs."""

    label: str  # "this process" or the service's address, for messages

    def sync(
        self,
        user: str,
        spec: SyncSpec,
        on_progress: Callable[[SyncReport], None] | None = None,
        on_waiting: Callable[[], None] | None = None,
    ) -> SyncReport: ...

    def search(
        self, user: str, query: str, *, k: int, mode: str, kind: str | None
    ) -> list[dict[str, Any]]: ...

    def status(self, user: str | None) -> dict[str, Any]: ...

    def run(self, user: str, args: RunArgs, on_event: Event) -> RunResult: ...

    def score(
        self,
        user: str,
        skill: str,
        file: str,
        *,
        column: str,
        sheet: str | None,
        out: str,
        engine: str,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]: ...

    def skills(self, user: str, op: str, **args: Any) -> Any: ...

    def runs(self, user: str, *, skill_id: str | None = None, limit: int = 50) -> list[dict]: ...

    def run_record(self, user: str, run_id: str) -> dict[str, Any]: ...

    def feedback(
        self,
        user: str,
        run_id: str,
        *,
        rating: int | None = None,
        comment: str | None = None,
        edited_text: str | None = None,
    ) -> dict[str, Any]: ...

    def service(self) -> dict[str, Any] | None:
        """The running service (address, pid, uptime, model), or None in this process."""
        ...

    def close(self) -> None: ...


def open_backend(settings: Settings) -> Backend:
    """The running service of this home if one answers, else this process."""
    from copilot.cli.client import find_service

    info = find_service(settings)
    if info is not None:
        from copilot.cli.backend_service import ServiceBackend

        return ServiceBackend(settings, info)
    from copilot.cli.backend_local import LocalBackend

    return LocalBackend(settings)


@contextmanager
def backend(settings: Settings) -> Iterator[Backend]:
    """``open_backend`` as a context: what it opened is closed after the command."""
    chosen = open_backend(settings)
    try:
        yield chosen
    finally:
        chosen.close()


# -- who --------------------------------------------------------------------------------------


def os_user() -> str:
    """The OS account's name: the default local user."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return os.environ.get("USER") or "user"


def to_user_id(value: str | None) -> str | None:
    """The user id a ``--user`` value means (see ``copilot.db.owners.user_id_for``)."""
    from copilot.db.owners import user_id_for

    if value is None:
        return None
    try:
        return user_id_for(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc} Give another with --user.") from None


UserOpt = Annotated[
    str,
    typer.Option(
        "--user",
        "-u",
        default_factory=os_user,
        callback=to_user_id,
        show_default="your OS user name",
        help="Whose data: a local user name (local:NAME), by default yours.",
    ),
]
OptionalUserOpt = Annotated[
    str | None,
    typer.Option("--user", "-u", callback=to_user_id, help="Only this user (a name)."),
]

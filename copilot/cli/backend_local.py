"""A command's work in the CLI's own process: no service runs for this home.

The workspace (state store, index, embedder) is opened on first use, each part only when
a command needs it, as before. The first time this process opens the state store, data
kept under an older id of a local user (``ann``, ``dev:ann``) is moved to ``local:ann``
(``copilot.db.owners``); ``copilot serve`` does the same when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any

from copilot.api import cli_ops
from copilot.cli.backend import Event
from copilot.config import Settings
from copilot.workspace import Workspace

if TYPE_CHECKING:
    from copilot.api.cli_ops import RunArgs, SyncSpec
    from copilot.ingest.pipeline import SyncReport
    from copilot.skills.result import RunResult
    from copilot.skills.runner import SkillRunner


class LocalBackend:
    label = "this process"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def ws(self) -> Workspace:
        ws = Workspace(self.settings)
        try:
            adopt_legacy_owners(ws)
        except BaseException:
            ws.close()
            raise
        return ws

    @cached_property
    def runner(self) -> SkillRunner:
        from copilot.skills.runner import SkillRunner

        return SkillRunner(self.ws)

    def close(self) -> None:
        if "ws" in self.__dict__:
            self.ws.close()

    def service(self) -> dict[str, Any] | None:
        return None

    # -- commands -------------------------------------------------------------------------
    def sync(
        self,
        user: str,
        spec: SyncSpec,
        on_progress: Callable[[SyncReport], None] | None = None,
        on_waiting: Callable[[], None] | None = None,
    ) -> SyncReport:
        from copilot.ingest.pipeline import sync

        connector = cli_ops.connector_for(spec, user, self.settings)
        ws = self.ws
        return sync(connector, self.settings, ws.state, ws.store, ws.embedder,
                    on_progress=on_progress)  # fmt: skip

    def search(
        self, user: str, query: str, *, k: int, mode: str, kind: str | None
    ) -> list[dict[str, Any]]:
        return cli_ops.search(self.ws, user, query, k=k, mode=mode, kind=kind)

    def status(self, user: str | None) -> dict[str, Any]:
        return cli_ops.status(self.ws.state, user, self.ws.settings)

    def run(self, user: str, args: RunArgs, on_event: Event) -> RunResult:
        return cli_ops.run(self.runner, user, args, on_event)

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
    ) -> dict[str, Any]:
        return cli_ops.score(self.runner, user, skill, file, column=column, sheet=sheet,
                             out=out, engine=engine, on_progress=on_progress)  # fmt: skip

    def skills(self, user: str, op: str, **args: Any) -> Any:
        return cli_ops.skills_call(self.runner, user, op, args)

    def runs(self, user: str, *, skill_id: str | None = None, limit: int = 50) -> list[dict]:
        from copilot.api.routes_data import _record

        return [_record(r) for r in self.runner.runs.list(user, skill_id=skill_id, limit=limit)]

    def run_record(self, user: str, run_id: str) -> dict[str, Any]:
        from copilot.api.routes_data import _record

        return _record(self.runner.runs.get(user, run_id), full=True)

    def feedback(
        self,
        user: str,
        run_id: str,
        *,
        rating: int | None = None,
        comment: str | None = None,
        edited_text: str | None = None,
    ) -> dict[str, Any]:
        from copilot.api.routes_data import _record

        record = self.runner.runs.feedback(user, run_id, rating=rating, comment=comment,
                                           edited_text=edited_text)  # fmt: skip
        return _record(record)


def adopt_legacy_owners(ws: Workspace) -> dict[str, str]:
    """Move data of older local-user ids to ``local:NAME`` (the index only opened when
    there is something to move: a state-only command stays cheap)."""
    from copilot.db.owners import adopt_legacy_owners as adopt
    from copilot.db.owners import adopt_legacy_sources, legacy_owners

    moves = {}
    if legacy_owners(ws.state.engine):
        moves = adopt(ws.state.engine, ws.store)
    adopt_legacy_sources(ws.settings)
    return moves

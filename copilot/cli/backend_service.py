"""A command's work in the running service, over loopback HTTP as a local user.

The service answers with the JSON the in-process path prints (``copilot.api.cli_ops``);
this module turns it back into the objects the commands print from (a ``SyncReport``, a
``RunResult``), and the service's problems back into the errors the commands catch, so a
command cannot tell — and its output does not show — which path it took.

A sync is a job of the service's job manager (one worker: two syncs at once run one after
the other); this module polls it for progress. Ctrl-C cancels the job; a service that
dies mid-sync leaves what it stored, and the next sync resumes from its last checkpoint.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from copilot.cli.backend import Event
from copilot.cli.client import ServiceClient, ServiceError, ServiceGone, ServiceInfo
from copilot.errors import CopilotError

if TYPE_CHECKING:
    from copilot.api.cli_ops import RunArgs, SyncSpec
    from copilot.config import Settings
    from copilot.ingest.pipeline import SyncReport
    from copilot.skills.result import RunResult

POLL_S = 0.25
QUEUED_S = 1.0  # a job queued longer waits behind another sync (the CLI says so)
FINISHED = ("done", "failed", "cancelled")


class NotLocalUser(CopilotError, ValueError):
    """Through the service the CLI acts only as a local user."""

    kind = "not_local_user"
    status = 400
    title = "Not a local user"


class SyncFailed(CopilotError):
    """A sync job the service ran failed as a whole (a source that could not be reached)."""

    kind = "sync_failed"
    status = 400  # as the in-process path: a connector's error is the source's, exit 2
    title = "The sync failed"


class ServiceBackend:
    def __init__(self, settings: Settings, info: ServiceInfo) -> None:
        self.settings, self.info = settings, info
        self.label = f"the copilot service at {info.url}"

    def close(self) -> None:
        return None

    def service(self) -> dict[str, Any] | None:
        with self._client(None) as client:
            return {"url": self.info.url, **_local(client.service)}

    def _client(self, user: str | None, timeout: float | None = None) -> ServiceClient:
        from copilot.db.owners import local_name

        name = None
        if user is not None:
            name = local_name(user)
            if name is None:
                raise NotLocalUser(
                    f"{user} is not a local user: through the running copilot service the "
                    "CLI acts as a local user (--user NAME). Stop the service (`copilot "
                    "stop`) to work on another id in this process."
                )
        if timeout is None:
            return ServiceClient(self.info, name)
        return ServiceClient(self.info, name, timeout=timeout)

    # -- commands -------------------------------------------------------------------------
    def sync(
        self,
        user: str,
        spec: SyncSpec,
        on_progress: Callable[[SyncReport], None] | None = None,
        on_waiting: Callable[[], None] | None = None,
    ) -> SyncReport:
        with self._client(user) as client:
            started = _local(client.start_sync, spec.as_json())
            job, scope = started["job"], started["scope"]
            since = time.monotonic()
            try:
                while job["status"] not in FINISHED:
                    # Every job is queued for a moment before a worker takes it; only one
                    # still queued after QUEUED_S waits behind another sync.
                    queued_for = time.monotonic() - since
                    if job["status"] == "queued" and queued_for >= QUEUED_S and on_waiting:
                        on_waiting()
                    elif job["progress"] and on_progress is not None:
                        on_progress(report_of(job, scope))
                    time.sleep(POLL_S)
                    job = _local(client.job, job["id"])
            except KeyboardInterrupt:
                client.cancel(job["id"])  # the next sync resumes where this one stopped
                raise
            except ServiceGone as exc:
                raise ServiceGone(
                    f"{exc} What the sync stored stays: run it again to resume where it stopped."
                ) from None
        if job["progress"] and on_progress is not None:
            on_progress(report_of(job, scope))  # the final numbers, for the last line
        if job["status"] == "failed":
            raise SyncFailed(job["error"] or "the sync failed")
        if job["status"] == "cancelled":  # the service is stopping (or someone cancelled it)
            raise ServiceGone(
                "The copilot service stopped the sync. What it stored stays: run it again to "
                "resume where it stopped."
            )
        return report_of(job, scope)

    def search(
        self, user: str, query: str, *, k: int, mode: str, kind: str | None
    ) -> list[dict[str, Any]]:
        with self._client(user) as client:
            return _local(client.search, query, k=k, mode=mode, kind=kind)

    def status(self, user: str | None) -> dict[str, Any]:
        with self._client(None) as client:
            return _local(client.status, user)

    def run(self, user: str, args: RunArgs, on_event: Event) -> RunResult:
        timeout = self.settings.run_timeout_s + 30
        with self._client(user, timeout) as client:
            return result_of(_local(client.run, args.as_json(), on_event, timeout))

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
        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "progress" and on_progress is not None:
                on_progress(int(data["done"]), int(data["total"]))

        body = {"skill": skill, "file": file, "column": column, "sheet": sheet, "out": out,
                "engine": engine}  # fmt: skip
        timeout = self.settings.run_timeout_s * 10
        with self._client(user, timeout) as client:
            return _local(client.score, body, on_event, timeout)

    def skills(self, user: str, op: str, **args: Any) -> Any:
        from copilot.api.cli_ops import LONG_SKILL_OPS
        from copilot.skills.library.testing import MAX_SAMPLES

        runs = 2 * MAX_SAMPLES if op in LONG_SKILL_OPS else 1
        with self._client(user, self.settings.run_timeout_s * runs + 30) as client:
            return _local(client.skills, op, args)

    def runs(self, user: str, *, skill_id: str | None = None, limit: int = 50) -> list[dict]:
        with self._client(user) as client:
            return _local(client.runs, skill_id=skill_id, limit=limit)

    def run_record(self, user: str, run_id: str) -> dict[str, Any]:
        with self._client(user) as client:
            return _local(client.run_record, run_id)

    def feedback(
        self,
        user: str,
        run_id: str,
        *,
        rating: int | None = None,
        comment: str | None = None,
        edited_text: str | None = None,
    ) -> dict[str, Any]:
        body = {"rating": rating, "comment": comment, "edited_text": edited_text}
        with self._client(user) as client:
            return _local(client.feedback, run_id, {k: v for k, v in body.items() if v is not None})


# -- JSON back to objects ---------------------------------------------------------------------


def report_of(job: dict[str, Any], scope: str) -> SyncReport:
    """A job's progress as the ``SyncReport`` the in-process sync returns."""
    from copilot.ingest.pipeline import SyncReport

    names = {f.name for f in fields(SyncReport)} - {"scope", "failures"}
    counts = {k: v for k, v in (job.get("progress") or {}).items() if k in names}
    return SyncReport(scope=scope, failures=list(job.get("failures") or []), **counts)


def result_of(data: dict[str, Any]) -> RunResult:
    """``copilot run --json``'s dict as the ``RunResult`` it was made from."""
    from copilot.llm.types import Message
    from copilot.skills.result import RunResult
    from copilot.skills.types import Citation, Source

    known = {f.name for f in fields(RunResult)}
    values = {k: v for k, v in data.items() if k in known}
    values["citations"] = [Citation(**c) for c in data.get("citations") or []]
    values["sources"] = [Source(**s) for s in data.get("sources") or []]
    values["messages"] = [Message(**m) for m in data.get("messages") or []]
    values["dropped"] = [tuple(d) for d in data.get("dropped") or []]
    return RunResult(**values)


def _local(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call``'s answer; a refusal raised as the error the in-process path raises."""
    try:
        return call(*args, **kwargs)
    except ServiceError as exc:
        raise as_local_error(exc) from None


def as_local_error(exc: ServiceError) -> Exception:
    """The copilot error class with the problem's kind (a ``SkillNotFound`` for
    ``skill_not_found``…), carrying the service's words; ``exc`` itself for other kinds."""
    cls = _error_classes().get(exc.kind)
    if cls is None:
        return exc
    # mypy takes a class object for unhashable (python/mypy#11470); it is hashable.
    said = _as_said(cls)  # type: ignore[arg-type]
    local = said.__new__(said)
    BaseException.__init__(local, str(exc))
    local.kind, local.status = exc.kind, exc.status
    for name in cls.fields:
        setattr(local, name, exc.extra.get(name))
    return local


@functools.cache
def _as_said(cls: type[CopilotError]) -> type[CopilotError]:
    """``cls`` whose words are the service's as given (a class may build its own from
    attributes only its ``__init__`` sets)."""
    return type(cls.__name__, (cls,), {"__str__": lambda self: str(self.args[0]),
                                       "__module__": cls.__module__})  # fmt: skip


def _error_classes() -> dict[str, type[CopilotError]]:
    """Every copilot error class the commands catch, by kind (the most general first)."""
    import copilot.api.cli_ops
    import copilot.index.search
    import copilot.ingest.pipeline
    import copilot.skills.library.types
    import copilot.skills.request
    import copilot.skills.templates.render  # noqa: F401  (they define the classes)

    found: dict[str, type[CopilotError]] = {}
    queue: list[type[CopilotError]] = list(CopilotError.__subclasses__())
    while queue:
        cls = queue.pop(0)
        found.setdefault(cls.kind, cls)
        queue += cls.__subclasses__()
    found.pop("error", None)
    return found

"""Finding the running ``copilot serve`` of this home, and calling it over loopback HTTP.

``copilot serve`` writes ``COPILOT_HOME/service.json`` once it listens: its address, pid,
start time and a random *local admin token* (file 0600, via ``copilot.fileio``), and
removes it when it stops cleanly. A CLI command reads it with :func:`find_service`; a
file whose pid is gone, or whose service does not answer with that pid, is ignored (and
a dead one removed), so a killed service never strands the CLI.

:class:`ServiceClient` is the CLI's typed view of the service: the ``/v1/cli`` routes
(``copilot.api.routes_local``) and the sync job routes. A refused request raises
:class:`ServiceError` with the problem's kind, status and words; a service that stops
answering raises :class:`ServiceGone`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from copilot.errors import CopilotError
from copilot.fileio import write_atomically
from copilot.llm.sse import named_events

FILE_NAME = "service.json"
USER_HEADER = "X-Copilot-User"  # copilot.api.deps.LOCAL_USER_HEADER
PROBE_TIMEOUT_S = 3.0
CALL_TIMEOUT_S = 60.0
MAX_FILE_BYTES = 64 * 1024
if TYPE_CHECKING:  # imported when a service is found: commands without one skip it
    import httpx

    from copilot.config import Settings
Event = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class ServiceInfo:
    """One running service, as its discovery file describes it."""

    url: str  # http://127.0.0.1:PORT, the loopback address the CLI uses
    pid: int
    started: float  # time.time()
    listen: str  # the address it listens on, as given to `copilot serve --host`
    token: str = field(repr=False)


class ServiceError(CopilotError):
    """The service refused or failed a request; ``kind`` and ``status`` are its problem's."""

    kind = "service_refused"  # replaced by the problem's own kind on each instance
    title = "The copilot service refused that"

    def __init__(self, detail: str, *, kind: str, status: int, extra: dict[str, Any]) -> None:
        super().__init__(detail, kind=kind, status=status)
        self.extra = extra  # the problem's other fields (a template error's line)


class ServiceGone(CopilotError):
    """The service stopped answering in the middle of a command."""

    kind = "service_gone"
    status = 503
    title = "The copilot service stopped"


# -- the discovery file --------------------------------------------------------------------


def discovery_path(settings: Settings) -> Path:
    return settings.home_dir / FILE_NAME


def write_discovery(settings: Settings, info: ServiceInfo) -> None:
    write_atomically(discovery_path(settings), json.dumps(asdict(info), indent=2))


def read_discovery(settings: Settings) -> ServiceInfo | None:
    """The file's service, or None when there is no file or it is not one of ours."""
    path = discovery_path(settings)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return ServiceInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def remove_discovery(settings: Settings, pid: int) -> None:
    """Remove the file if it still describes the service of ``pid`` (a newer one keeps its)."""
    info = read_discovery(settings)
    if info is not None and info.pid == pid:
        discovery_path(settings).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs a copilot (a pid in an old file may now be another program's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return b"copilot" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: trust the pid
    except OSError:
        return True


def find_service(settings: Settings, timeout: float = PROBE_TIMEOUT_S) -> ServiceInfo | None:
    """The running service of this home, if one answers as the file says; else None."""
    info = read_discovery(settings)
    if info is None:
        return None
    if not pid_alive(info.pid):
        remove_discovery(settings, info.pid)  # stale: the next `copilot serve` replaces it
        return None
    try:
        with ServiceClient(info, None, timeout=timeout) as client:
            answer = client.service()
    except (ServiceError, ServiceGone):
        return None
    return info if answer.get("pid") == info.pid else None


# -- the client -----------------------------------------------------------------------------


class ServiceClient:
    """Typed calls to one service, acting as local user ``user`` (a name; None for calls
    that act for no one in particular)."""

    def __init__(
        self, info: ServiceInfo, user: str | None, *, timeout: float = CALL_TIMEOUT_S
    ) -> None:
        import httpx

        self.info = info
        headers = {"Authorization": f"Bearer {info.token}", USER_HEADER: user or "cli"}
        self._http = httpx.Client(
            base_url=info.url, headers=headers, timeout=httpx.Timeout(timeout, connect=5.0)
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------------
    def service(self) -> dict[str, Any]:
        return self._json("GET", "/v1/cli/service")

    def status(self, owner: str | None) -> dict[str, Any]:
        return self._json("GET", "/v1/cli/status", params={"owner": owner} if owner else None)

    def search(self, query: str, *, k: int, mode: str, kind: str | None) -> list[dict[str, Any]]:
        body = {"query": query, "k": k, "mode": mode, "kind": kind}
        return self._json("POST", "/v1/cli/search", json=body)

    def start_sync(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Submit a sync job: ``{"job": <job>, "scope": <the source's scope>}``."""
        return self._json("POST", "/v1/cli/sync", json=spec)

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/sync/{job_id}")

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/v1/sync/{job_id}")

    def skills(self, op: str, args: dict[str, Any]) -> Any:
        return self._json("POST", f"/v1/cli/skills/{op}", json=args)["result"]

    def runs(self, *, skill_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ``limit`` runs, read a page at a time (the API answers at most
        ``RUNS_PAGE`` a request)."""
        from copilot.api.schemas import RUNS_PAGE

        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {**({"skill_id": skill_id} if skill_id else {})}
        while len(out) < limit:
            params["limit"] = min(RUNS_PAGE, limit - len(out))
            page = self._json("GET", "/v1/runs", params=params)
            out.extend(page)
            if len(page) < params["limit"]:
                break
            params["before"] = page[-1]["created_at"]
        return out

    def run_record(self, run_id: str) -> dict[str, Any]:
        return self._json("GET", f"/v1/runs/{run_id}")

    def feedback(self, run_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json("POST", f"/v1/runs/{run_id}/feedback", json=body)

    def run(self, args: dict[str, Any], on_event: Event, timeout: float) -> dict[str, Any]:
        """Run a skill; events as they come, then the result (``--json``'s shape)."""
        return self._stream("/v1/cli/run", args, on_event, timeout)

    def score(self, body: dict[str, Any], on_event: Event, timeout: float) -> dict[str, Any]:
        return self._stream("/v1/cli/score", body, on_event, timeout)

    # -- plumbing -------------------------------------------------------------------------
    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise gone(self.info, exc) from exc
        if response.status_code >= 400:
            raise problem(response.status_code, _body(response))
        return response.json()

    def _stream(
        self, path: str, body: dict[str, Any], on_event: Event, timeout: float
    ) -> dict[str, Any]:
        import httpx

        headers = {"Accept": "text/event-stream"}
        limit = httpx.Timeout(timeout, connect=5.0)
        try:
            with self._http.stream(
                "POST", path, json=body, headers=headers, timeout=limit
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem(response.status_code, _body(response))
                for event, data in sse_events(response.iter_lines()):
                    if event == "done":
                        return data
                    if event == "error":
                        raise problem(int(data.get("status") or 500), data)
                    on_event(event, data)
        except httpx.HTTPError as exc:
            raise gone(self.info, exc) from exc
        raise gone(self.info, None)


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(event, data)`` pairs of a Server-Sent Events stream (comments skipped)."""
    for event, data in named_events(lines):
        yield event, json.loads(data)


def problem(status: int, body: dict[str, Any]) -> ServiceError:
    """The error for a problem-details answer."""
    extra = {k: v for k, v in body.items() if k not in ("type", "title", "status", "detail")}
    kind = str(extra.pop("code", "") or "error")
    detail = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    return ServiceError(detail, kind=kind, status=status, extra=extra)


def gone(info: ServiceInfo, exc: BaseException | None) -> ServiceGone:
    why = f" ({type(exc).__name__})" if exc is not None else ""
    return ServiceGone(
        f"The copilot service at {info.url} (pid {info.pid}) stopped answering{why}."
    )


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {"detail": response.text[:500] or response.reason_phrase}
    return body if isinstance(body, dict) else {"detail": str(body)[:500]}


def uptime(info: ServiceInfo) -> float:
    return max(time.time() - info.started, 0.0)

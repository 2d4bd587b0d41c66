"""A small Microsoft Graph HTTP client: auth, retries, throttling and a time budget.

Why one place for this: every Graph call can be throttled (429/503/504 with
``Retry-After``), can meet an expired token (401 ``InvalidAuthenticationToken``), or can
hit a dropped connection; the connectors should only see either a JSON page or an error
that says what to do next (``ResyncRequired``: start the delta again; ``BudgetExceeded``:
stop cleanly; ``GraphError``: give up on this folder or item).

The token comes from ``token_provider``, called before the first request and again after
a 401, so expiry mid-sync is handled by asking the provider for a fresh token once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.errors import ConnectorError
from connectors.types import Failure

RETRY_STATUS = frozenset({429, 503, 504})
RESYNC_CODES = frozenset({"syncStateNotFound", "resyncRequired", "syncStateInvalid"})
MAX_RETRY_AFTER_S = 300.0  # a server asking for longer than this is treated as down


class GraphError(ConnectorError):
    """Graph said no (or could not be reached); ``status`` 0 means no HTTP answer."""

    kind = "graph_failed"

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Graph {status or 'unreachable'} {code}: {message}".strip())
        self.status, self.code, self.message = status, code, message


class ResyncRequired(GraphError):
    """The delta token is no longer valid (410 Gone, ``resyncRequired``): start again."""

    kind = "graph_resync"


class BudgetExceeded(ConnectorError):
    """This run's time budget is spent; the connector stops at its last checkpoint."""

    kind = "budget_spent"


def _error(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return str(error.get("code", "")), str(error.get("message", ""))[:300]
    except ValueError:
        return "", response.text[:300]


def _retry_after(response: httpx.Response, fallback: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return min(max(float(value), 0.0), MAX_RETRY_AFTER_S)
    except ValueError:
        return fallback  # absent, or an HTTP date (Graph sends seconds)


def graph_time(value: Any) -> datetime:
    """A Graph timestamp (``2024-05-01T09:30:00Z``); now when it is missing or unreadable."""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return datetime.now(UTC)


def budget_stop(client: GraphClient, scope: str, notes: list[str], why: str) -> Failure:
    """What a connector yields when the run budget is spent; the note also goes in ``notes``
    (``copilot sync`` shows them), and the next run resumes from the last checkpoint."""
    budget = client.budget_s or 0
    note = f"run budget of {budget:g} s used up ({why}); the next run resumes here"
    notes.append(note)
    return Failure(scope, "fetch", note)


@dataclass
class GraphClient:
    """GET requests against ``base_url`` with the retry rules Graph documents.

    ``budget_s`` bounds one run (``start_run`` restarts the clock): a throttling wait
    that would end past the budget raises ``BudgetExceeded`` instead of sleeping, and
    connectors check ``over_budget()`` after each page. ``sleep``, ``clock`` and
    ``transport`` exist so tests run without waiting and against a local server.
    """

    base_url: str
    token_provider: Callable[[], str]
    budget_s: float | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    transport: httpx.BaseTransport | None = None
    requests: int = field(default=0, init=False)
    waited_s: float = field(default=0.0, init=False)
    _token: str | None = field(default=None, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)
    _http: httpx.Client | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self._started = self.clock()

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(
                timeout=self.timeout_s, follow_redirects=True, transport=self.transport
            )
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # -- budget ------------------------------------------------------------------------
    def start_run(self) -> None:
        self._started = self.clock()

    def remaining(self) -> float:
        if self.budget_s is None:
            return float("inf")
        return self.budget_s - (self.clock() - self._started)

    def over_budget(self) -> bool:
        return self.remaining() <= 0

    # -- requests ----------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url  # a nextLink / deltaLink: opaque, used as given
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def get_json(self, path_or_url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        response = self._get(path_or_url, headers)
        try:
            body = response.json()
        except ValueError:
            raise GraphError(response.status_code, "badJson", "the answer is not JSON") from None
        if not isinstance(body, dict):
            raise GraphError(response.status_code, "badJson", "the answer is not a JSON object")
        return body

    def pages(
        self, path_or_url: str, headers: dict[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink`` (bounded by the budget)."""
        url: str | None = path_or_url
        while url:
            page = self.get_json(url, headers)
            yield page
            url = page.get("@odata.nextLink")

    def get_bytes(self, path_or_url: str, max_bytes: int) -> bytes:
        """A download (redirects followed), refused once it passes ``max_bytes``."""
        response = self._get(path_or_url, None, stream_cap=max_bytes)
        return response.content

    def _get(
        self, path_or_url: str, headers: dict[str, str] | None, stream_cap: int | None = None
    ) -> httpx.Response:
        url = self.url(path_or_url)
        refreshed = False
        attempt = 0
        while True:
            if self._token is None:
                self._token = self.token_provider()
            request_headers = {"Authorization": f"Bearer {self._token}", **(headers or {})}
            self.requests += 1
            try:
                response = self._send(url, request_headers, stream_cap)
            except httpx.TransportError as exc:  # timeouts, resets, refused connections
                attempt += 1
                if attempt > self.max_retries:
                    raise GraphError(0, type(exc).__name__, str(exc) or "network error") from exc
                self._wait(self._backoff(attempt))
                continue
            status = response.status_code
            if status < 300:
                return response
            code, message = _error(response)
            if status == 401 and not refreshed:
                refreshed = True  # expired or revoked: one fresh token, then give up
                self._token = self.token_provider()
                continue
            if status == 410 or code in RESYNC_CODES:
                raise ResyncRequired(status, code or "gone", message)
            if status in RETRY_STATUS or (status >= 500 and attempt < 2):
                attempt += 1
                if attempt > self.max_retries:
                    raise GraphError(status, code, message or "still throttled; gave up")
                self._wait(_retry_after(response, self._backoff(attempt)))
                continue
            raise GraphError(status, code, message)

    def _send(self, url: str, headers: dict[str, str], stream_cap: int | None) -> httpx.Response:
        if stream_cap is None:
            return self.http.get(url, headers=headers)
        with self.http.stream("GET", url, headers=headers) as response:
            if response.status_code >= 300:
                response.read()
                return response
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > stream_cap:
                raise TooLarge(int(declared), stream_cap)
            chunks, total = [], 0
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > stream_cap:
                    raise TooLarge(total, stream_cap)
                chunks.append(chunk)
            # A fresh, fully read response: the streamed one is closed on leaving ``with``.
            return httpx.Response(200, headers=response.headers, content=b"".join(chunks))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, so many clients do not retry in step."""
        return random.uniform(0, min(self.backoff_s * 2 ** (attempt - 1), 60.0))

    def _wait(self, seconds: float) -> None:
        if seconds > self.remaining():
            raise BudgetExceeded(f"waiting {seconds:.0f} s would pass the run budget")
        self.waited_s += seconds
        self.sleep(seconds)


class TooLarge(GraphError):
    """A download passed its size cap; nothing beyond the cap was read."""

    kind = "too_large"

    def __init__(self, size: int, cap: int) -> None:
        super().__init__(413, "tooLarge", f"more than {cap} bytes (at least {size})")
        self.size, self.cap = size, cap

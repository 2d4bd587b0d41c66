"""Attacks on a dev-mode API server on loopback: foreign Host headers (DNS rebinding),
sync paths outside the configured roots, slow and oversized bodies, and the add-in's
security headers. Each answer is checked for its status and for how long it took."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app, default_addins_dir
from copilot.api.loopback import is_loopback_host_header
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job

ANNA = {"Authorization": "Bearer dev:anna"}
BOB = {"Authorization": "Bearer dev:bob"}
TIMEOUT_S = 1.0  # the server's header and body deadlines in this module


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server whose dev users may each sync only their own folder under ``data``."""
    root = tmp_path_factory.mktemp("hostile")
    data = root / "data"
    for user, text in (("anna", "Anna's salary review: confidential."), ("bob", "Bob's notes.")):
        (data / user).mkdir(parents=True)
        (data / user / "notes.md").write_text(f"# Notes\n\n{text}\n")
    settings = Settings(
        home=root / "home", auth="dev", sync_roots=[str(data / "{user}")], max_request_mb=1,
        request_header_timeout_s=TIMEOUT_S, request_body_timeout_s=TIMEOUT_S,
        rate_limit_per_minute=1000, parse_workers=1,
    )  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield {"client": client, "url": url, "data": data, "root": root}


def timed(call: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


def raw(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- Host header: DNS rebinding ------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io",
                                  "localhost.evil.example", "127.1", "2130706433", "0.0.0.0",
                                  "[::ffff:127.0.0.1]", "", "localhost, evil.example"])  # fmt: skip
def test_a_foreign_host_header_is_refused(world: dict[str, Any], host: str) -> None:
    client: httpx.Client = world["client"]
    response, seconds = timed(lambda: client.get("/v1/me", headers={**ANNA, "Host": host}))
    body = problem(response, 400)
    assert "development-mode server answers only localhost" in body["detail"]
    assert seconds < 2


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:8765", "127.0.0.1", "127.0.0.1:1",
                                  "[::1]", "[::1]:8765"])  # fmt: skip
def test_loopback_names_are_served(world: dict[str, Any], host: str) -> None:
    client: httpx.Client = world["client"]
    assert client.get("/v1/me", headers={**ANNA, "Host": host}).json()["user_id"] == "local:anna"


def test_a_request_without_host_is_refused(world: dict[str, Any]) -> None:
    with raw(world["url"]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 400")


def test_host_header_rule() -> None:
    assert is_loopback_host_header("localhost:8765") and is_loopback_host_header("[::1]")
    assert not is_loopback_host_header("::1") and not is_loopback_host_header("127.0.0.2")
    assert not is_loopback_host_header("localhost:") and not is_loopback_host_header("local host")


# -- /v1/sync/local confined to the roots --------------------------------------------------


def refused_path(world: dict[str, Any], path: str, status: int, who: dict[str, str] = BOB):
    response, seconds = timed(lambda: world["client"].post("/v1/sync/local", json={"path": path},
                                                           headers=who))  # fmt: skip
    body = problem(response, status)
    assert body["path"] == path and path in body["detail"]
    assert seconds < 2
    return body


def test_dot_dot_into_another_users_folder_is_refused(world: dict[str, Any]) -> None:
    body = refused_path(world, f"{world['data']}/bob/../anna", 403)
    assert "outside the folders this server may sync" in body["detail"]
    assert str(world["data"] / "bob") in body["detail"]  # bob's own root, not anna's


def test_proc_home_and_relative_paths_are_refused(world: dict[str, Any]) -> None:
    refused_path(world, "/proc/self/cwd", 403)
    refused_path(world, "/", 403)
    assert "absolute path" in refused_path(world, "~", 422)["detail"]
    refused_path(world, "~anna", 422)
    refused_path(world, "data/bob", 422)


def test_a_link_in_a_root_that_leads_out_is_refused(world: dict[str, Any]) -> None:
    link = world["data"] / "bob" / "to-anna"
    link.symlink_to(world["data"] / "anna")
    try:
        refused_path(world, str(link), 403)
    finally:
        link.unlink()


def test_a_sync_of_the_own_root_skips_links_out(world: dict[str, Any]) -> None:
    client: httpx.Client = world["client"]
    bob = world["data"] / "bob"
    (bob / "anna.md").symlink_to(world["data"] / "anna" / "notes.md")
    try:
        started = client.post("/v1/sync/local", json={"path": str(bob)}, headers=BOB)
        assert started.status_code == 202, started.text
        job = wait_for_job(client, started.json(), BOB)
        assert job["status"] == "done"
        assert any("link to outside" in f["reason"] for f in job["failures"])
        hits = client.post("/v1/search", json={"query": "salary review"}, headers=BOB).json()
        assert all("anna" not in h["item_id"] for h in hits)
    finally:
        (bob / "anna.md").unlink()


# -- bodies: oversized, chunked, slow ------------------------------------------------------


def test_an_oversized_chunked_body_gets_413(world: dict[str, Any]) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": {"text": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}}'

    client: httpx.Client = world["client"]
    response, seconds = timed(
        lambda: client.post(
            "/v1/skills/summarise/run",
            content=chunks(),
            headers={**ANNA, "Content-Type": "application/json"},
        )
    )
    assert "MB limit" in problem(response, 413)["detail"]
    assert response.headers["connection"] == "close"
    assert seconds < 5


def test_an_oversized_declared_body_gets_413_before_it_is_sent(world: dict[str, Any]) -> None:
    with raw(world["url"]) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer dev:anna\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 999999999\r\n\r\n")  # fmt: skip
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 2


def test_a_slow_body_is_cut_off_at_the_deadline(world: dict[str, Any]) -> None:
    with raw(world["url"]) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer dev:anna\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 100\r\n\r\n{\"query\": ")  # fmt: skip
        answer = read_all(sock)  # the server answers and closes; the body never finishes
        seconds = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408") and b"took longer than 1 s" in answer
    assert TIMEOUT_S - 0.05 <= seconds < TIMEOUT_S + 2  # uvloop's timers: a few ms early


def test_a_body_trickled_a_byte_at_a_time_is_cut_off_too(world: dict[str, Any]) -> None:
    """No gap is long, but the whole body must arrive within the deadline."""
    with raw(world["url"]) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/search HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer dev:anna\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")  # fmt: skip
        sock.settimeout(0.2)
        answer = b""
        while time.monotonic() - started < TIMEOUT_S + 3:
            try:
                sock.sendall(b" ")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if answer:
                break
        seconds = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert seconds < TIMEOUT_S + 2


def test_an_answer_before_the_body_is_read_closes_the_connection(world: dict[str, Any]) -> None:
    """A 404 never reads the body: the rest of it must not keep the connection open."""
    with raw(world["url"]) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /v1/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Length: 100000\r\n\r\nxxxx")  # fmt: skip
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 404") and b"connection: close" in answer.lower()
        assert time.monotonic() - started < 2


def test_slow_headers_get_the_connection_closed(world: dict[str, Any]) -> None:
    started = time.monotonic()  # the deadline counts from when the connection opened
    with raw(world["url"]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        assert read_all(sock) == b""  # closed, unanswered: the request never began
        seconds = time.monotonic() - started
    # uvloop's timers run on a loop time read once per loop pass: a few ms early at most.
    assert TIMEOUT_S - 0.05 <= seconds < TIMEOUT_S + 2


def test_a_kept_alive_connection_gets_a_new_header_deadline(world: dict[str, Any]) -> None:
    with raw(world["url"]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        first = b""
        for _ in range(100):  # the whole first answer (its body ends the JSON object)
            piece = sock.recv(65536)
            first += piece
            if not piece or first.endswith(b"}"):
                break
        assert first.startswith(b"HTTP/1.1 200") and first.endswith(b"}")
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        assert read_all(sock) == b""
        assert time.monotonic() - started < TIMEOUT_S + 2


@pytest.mark.parametrize("pieces", [1, 40])
def test_headers_over_64_kb_get_431_and_the_connection_closed(
    world: dict[str, Any], pieces: int
) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n"
    with raw(world["url"]) as sock:
        step = -(-len(head) // pieces)
        try:
            for at in range(0, len(head), step):  # at once, or as a stream of parts
                sock.sendall(head[at : at + step])
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending: the answer is already there
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert b"connection: close" in answer


def test_a_large_token_within_the_limit_is_served(world: dict[str, Any]) -> None:
    with raw(world["url"]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Token: " + b"t" * 20_000
                     + b"\r\nConnection: close\r\n\r\n")  # fmt: skip
        assert read_all(sock).startswith(b"HTTP/1.1 200")


def test_an_ordinary_upload_is_not_slowed(world: dict[str, Any]) -> None:
    hits = world["client"].post("/v1/search", json={"query": "notes"}, headers=ANNA)
    assert hits.status_code == 200


# -- the add-in's headers -------------------------------------------------------------------


def test_the_add_in_is_served_with_a_strict_policy(world: dict[str, Any]) -> None:
    response = world["client"].get("/addins/office/index.html")
    assert response.status_code == 200
    csp = dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )
    assert csp["script-src"].split() == [
        "'self'", "https://appsforoffice.microsoft.com", "https://ajax.aspnetcdn.com",
    ]  # fmt: skip
    assert csp["default-src"] == "'none'" and csp["object-src"] == "'none'"
    ancestors = csp["frame-ancestors"].split()
    for host in (
        "https://*.office.com",
        "https://*.officeapps.live.com",
        "https://*.cloud.microsoft",
    ):
        assert host in ancestors
    assert "*" not in ancestors and "https:" not in ancestors
    assert response.headers["x-content-type-options"] == "nosniff"
    api = world["client"].get("/healthz")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.headers


class _Inline(HTMLParser):
    """Finds what a policy without 'unsafe-inline' scripts would block."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self._in_script = "src" not in names
        self.found += [f"<{tag} {n}>" for n in names if n.startswith("on")]
        for name, value in attrs:
            if name in ("href", "src") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:>")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:40]}")


def test_the_add_in_pages_hold_no_inline_script() -> None:
    folder = default_addins_dir(Settings(home=Path("/nonexistent")))
    assert folder is not None
    for page in folder.glob("*.html"):
        parser = _Inline()
        parser.feed(page.read_text(encoding="utf-8"))
        assert parser.found == [], f"{page.name}: {parser.found}"

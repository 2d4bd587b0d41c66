"""`copilot login`, `copilot sync outlook`, `copilot watch` as a user types them, against the
fake Entra (HTTPS) and fake Graph mailboxes (tests/graph_router.py)."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.graph.auth import device_code_provider
from copilot.cli import sources as graph_cli
from copilot.cli.app import app
from copilot.cli.sources import (
    token_cache_path,
)
from copilot.config import get_settings
from copilot.db.state import StateStore
from copilot.sources import Source, load_sources, remember
from tests.cli.test_service_client import ANNA, make_env, serving
from tests.fakes.entra_fake import (
    ANNA_OID,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT,
    FakeEntra,
)
from tests.fakes.graph_router import GraphRouter
from tests.fakes.graph_server import mailbox


@pytest.fixture
def graph() -> Iterator[GraphRouter]:
    router = GraphRouter().serve()
    yield router
    router.close()


@pytest.fixture
def env(home: Path, entra: FakeEntra, graph: GraphRouter, monkeypatch: pytest.MonkeyPatch):
    """The environment of a copilot configured for the fake tenant and Graph."""
    for name, value in {
        "COPILOT_ENTRA_TENANT_ID": TENANT,
        "COPILOT_ENTRA_CLIENT_ID": CLIENT_ID,
        "COPILOT_ENTRA_CLIENT_SECRET": CLIENT_SECRET,
        "COPILOT_ENTRA_AUTHORITY_HOST": entra.base_url,
        "COPILOT_TLS_CA_FILE": str(entra.ca_file),
        "COPILOT_GRAPH_BASE_URL": graph.url,
        "COPILOT_PARSE_WORKERS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    return get_settings()


def approving(entra: FakeEntra, seen: list[str]):
    def prompt(message: str) -> None:  # the person reads the code and signs in
        seen.append(message)
        entra.approve(re.search(r"enter the code (\S+)", message).group(1), oid=ANNA_OID)

    return prompt


def test_login_then_sync_outlook(env, entra, graph, monkeypatch) -> None:
    made = mailbox(graph.box(ANNA_OID), 6)
    seen: list[str] = []
    monkeypatch.setattr(graph_cli, "_prompt", approving(entra, seen))
    cli = CliRunner()

    signed_in = cli.invoke(app, ["login", "--user", "anna"])
    assert signed_in.exit_code == 0, signed_in.output
    assert "Signed in as anna@contoso.example" in signed_in.output and len(seen) == 1
    cache = token_cache_path(env, "anna")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert "graph-refresh" not in signed_in.output and "graph-token" not in signed_in.output

    synced = cli.invoke(app, ["sync", "outlook", "--user", "anna", "--json"])
    assert synced.exit_code == 0, synced.output
    report = json.loads(synced.output[synced.output.index("{") :])
    assert report["failed"] == 0 and report["indexed"] == 6 + 2 * 3  # two with 3 attachments
    assert graph.tokens() and all(t.startswith(f"graph-token.{ANNA_OID}.") for t in graph.tokens())
    state = StateStore(env.state_url)
    try:
        ids = set(state.item_states("local:anna", "graph-mail:me"))
    finally:
        state.close()
    assert {f"graph-mail:{m.id}" for m in made} <= ids
    assert [s.id for s in load_sources(env)] == ["local:anna:outlook:me"]
    assert len(seen) == 1, "the sync reused the sign-in"

    # The token expires (or is revoked) before the next sync: Graph answers 401, the
    # provider refreshes with the cached refresh token, and the sync goes on.
    graph.revoked |= graph.tokens()
    graph.box(ANNA_OID).add_message(subject="After the refresh", body="Heron news.")
    refreshed = cli.invoke(app, ["sync", "outlook", "--user", "anna", "--json"])
    assert refreshed.exit_code == 0, refreshed.output
    assert json.loads(refreshed.output[refreshed.output.index("{") :])["indexed"] == 1
    assert entra.token_requests[-1]["grant_type"] == "refresh_token"

    nobody = cli.invoke(app, ["sync", "outlook", "--user", "bob"])
    assert nobody.exit_code == 2
    assert "copilot login --user bob" in nobody.output


def test_onedrive_and_sharepoint_use_the_same_sign_in(env, entra, graph) -> None:
    box = graph.box(ANNA_OID)
    box.add_file("plan.md", b"# Plan\n\nThe heron project starts in May.\n")
    box.add_file("budget.csv", b"item,amount\nherons,12\n")
    device_code_provider(env, token_cache_path(env, "anna"), prompt=approving(entra, []))()
    cli = CliRunner()
    onedrive = cli.invoke(app, ["sync", "onedrive", "--user", "anna", "--json"])
    assert onedrive.exit_code == 0, onedrive.output
    assert json.loads(onedrive.output[onedrive.output.index("{") :])["indexed"] == 2
    no_library = cli.invoke(app, ["sync", "sharepoint", "--user", "anna"])
    assert no_library.exit_code == 2 and "COPILOT_GRAPH_SITE_DRIVES" in no_library.output
    library = cli.invoke(app, ["sync", "sharepoint", "--user", "anna", "--drive", "b!lib"])
    assert library.exit_code == 0, library.output
    assert [s.id for s in load_sources(env)] == [
        "local:anna:onedrive:me", "local:anna:sharepoint:b!lib",
    ]  # fmt: skip


def test_app_only_sync_of_another_mailbox(env, graph) -> None:
    upn = "bob@contoso.example"
    made = mailbox(graph.box(upn), 3)
    result = CliRunner().invoke(app, ["sync", "outlook", "--user", upn, "--app-only", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{") :])["indexed"] == 3 + 3
    assert graph.tokens() and all(t.startswith(f"app-token.{TENANT}.") for t in graph.tokens())
    assert graph.requests and all("/users/bob%40contoso.example/" in p for p, _ in graph.requests)
    state = StateStore(env.state_url)
    try:  # owned by the mailbox's user, under a scope naming the mailbox
        ids = set(state.item_states(f"local:{upn}", f"graph-mail:{upn}"))
    finally:
        state.close()
    assert {f"graph-mail:{m.id}" for m in made} <= ids
    assert load_sources(env)[0].app_only


def test_watch_once_syncs_every_source_and_one_failure_stops_none(
    env, entra, graph, tmp_path
) -> None:
    mailbox(graph.box(ANNA_OID), 3)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plan.md").write_text("# Plan\n\nThe heron project starts in May.\n")
    device_code_provider(env, token_cache_path(env, "anna"), prompt=approving(entra, []))()
    remember(env, Source(user="bob", kind="outlook"))  # never signed in: fails
    # (sources remembered by older versions name the user "bob": they become local:bob)
    remember(env, Source(user="anna", kind="outlook", folders=("inbox",)))
    remember(env, Source(user="anna", kind="local", path=str(docs)))
    cli = CliRunner()
    listed = cli.invoke(app, ["sources", "list"])
    assert listed.output.split() == ["local:bob:outlook:me", "local:anna:outlook:me", "folders:",
                                     "inbox", f"local:anna:local:{docs}"]  # fmt: skip

    result = cli.invoke(app, ["watch", "--once"])
    assert result.exit_code == 1, result.output  # one source failed...
    assert "bob:outlook:me" in result.output and "copilot login --user bob" in result.output
    state = StateStore(env.state_url)
    try:  # ...and the two after it still ran
        assert len(state.item_states("local:anna", "graph-mail:me")) == 3 + 3
        assert state.checkpoint("local:anna", "graph-mail:me")["deltas"].keys() == {"inbox"}
        done = [s for s in state.summary("local:anna")["syncs"] if s["status"] == "done"]
        assert len(done) == 2
    finally:
        state.close()

    assert cli.invoke(app, ["sources", "remove", "local:bob:outlook:me"]).exit_code == 0
    again = cli.invoke(app, ["watch", "--once", "--user", "anna"])
    assert again.exit_code == 0, again.output
    assert cli.invoke(app, ["sources", "remove", "local:bob:outlook:me"]).exit_code == 2


def test_watch_stops_cleanly_on_ctrl_c(env, tmp_path, monkeypatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Some words about herons.")
    remember(env, Source(user="anna", kind="local", path=str(docs)))

    real_sleep = time.sleep

    def interrupted(seconds: float) -> None:
        if seconds > 10:  # the wait between rounds (the sync itself sleeps briefly)
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", interrupted)
    result = CliRunner().invoke(app, ["watch", "--interval", "30"])
    assert result.exit_code == 0, result.output
    assert "Synced" in result.output and "Stopped" in result.output


def test_watch_refuses_a_too_short_interval_and_a_damaged_sources_file(env) -> None:
    cli = CliRunner()
    assert cli.invoke(app, ["watch", "--interval", "1"]).exit_code == 2
    (env.home_dir).mkdir(parents=True, exist_ok=True)
    (env.home_dir / "sources.json").write_text('[{"user": "anna", "kind": "fax"}]')
    result = cli.invoke(app, ["watch", "--once"])
    assert result.exit_code == 1 and "kind must be one of" in result.output


def test_login_syncs_and_watch_while_a_service_runs(env, entra, graph, tmp_path, monkeypatch):
    """The service holds the index: the syncs run in it as jobs (the CLI signs in first, the
    service reads the same token cache); login works here as without a service."""
    mailbox(graph.box(ANNA_OID), 3)
    upn = "bob@contoso.example"
    mailbox(graph.box(upn), 3)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plan.md").write_text("# Plan\n\nThe heron project starts in May.\n")
    seen: list[str] = []
    monkeypatch.setattr(graph_cli, "_prompt", approving(entra, seen))
    cli = CliRunner()
    with serving(make_env(dict(os.environ), env.home_dir)) as running:
        signed_in = cli.invoke(app, ["login", "--user", "anna"])
        assert signed_in.exit_code == 0, signed_in.output
        assert "Signed in as anna@contoso.example" in signed_in.output and len(seen) == 1

        synced = cli.invoke(app, ["sync", "outlook", "--user", "anna", "--json"])
        assert synced.exit_code == 0, synced.output
        assert json.loads(synced.output[synced.output.index("{") :])["indexed"] == 3 + 3
        jobs = running.http.get("/v1/sync", headers=ANNA).json()["jobs"]
        assert [(j["source"], j["status"]) for j in jobs] == [("graph-mail:me", "done")]
        assert jobs[0]["progress"]["total"] is None  # a mailbox says how much only as it goes

        app_only = cli.invoke(app, ["sync", "outlook", "--user", upn, "--app-only", "--json"])
        assert app_only.exit_code == 0, app_only.output
        assert json.loads(app_only.output[app_only.output.index("{") :])["indexed"] == 3 + 3

        nobody = cli.invoke(app, ["sync", "outlook", "--user", "carol"])
        assert nobody.exit_code == 2 and "copilot login --user carol" in nobody.output

        remember(env, Source(user="anna", kind="local", path=str(docs)))  # an older id: moved
        watched = cli.invoke(app, ["watch", "--once", "--user", "anna"])
        assert watched.exit_code == 0, watched.output
        assert "already open" not in watched.output
        jobs = running.http.get("/v1/sync", headers=ANNA).json()["jobs"]
        assert [j["source"] for j in jobs if j["status"] == "done"].count("graph-mail:me") == 2
        assert any(str(docs) in j["source"] for j in jobs)
        assert len(seen) == 1, "every sync reused the one sign-in"
    assert json.loads(cli.invoke(app, ["status", "--user", "anna", "--json"]).output)["items"] == 7

"""The ``copilot`` command as a client of a running ``copilot serve``: real processes.

A service runs on a free loopback port in a temporary ``COPILOT_HOME`` (dev mode, so the
pane's and the bot's ``dev:NAME`` users can be checked beside the CLI); the commands run
as subprocesses, as a person would type them. While the service holds the index, the
commands work through it, and print what they print without one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from copilot.cli.demo import build_workspace
from copilot.config import Settings
from copilot.db.engine import open_engine
from copilot.skills.history import RunStore
from copilot.workspace import Workspace
from tests.fakes.teams import activity, replies
from tests.skills.test_runs import make_run

START_TIMEOUT_S = 180  # a loaded 2-core machine: the embedder loads, the index opens
ANN = {"Authorization": "Bearer dev:ann"}
ANNA = {"Authorization": "Bearer dev:anna"}


def copilot(env: dict[str, str], *args: str, check: bool = True, timeout: float = 300) -> Any:
    result = subprocess.run([sys.executable, "-m", "copilot.cli.app", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"copilot {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def started(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "copilot.cli.app", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def discovery(env: dict[str, str]) -> dict[str, Any] | None:
    try:
        return json.loads((Path(env["COPILOT_HOME"]) / "service.json").read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def serving(env: dict[str, str], *options: str) -> Iterator[SimpleNamespace]:
    """``copilot serve --port 0 [options]`` in the foreground of a child; its address once
    ready."""
    log = Path(env["COPILOT_HOME"]).parent / f"serve-{time.monotonic_ns()}.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "copilot.cli.app", "serve", "--port",
                                   "0", *options], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "copilot serve did not start"
            info = discovery(env)
            if info and info["pid"] == server.pid:
                break
            time.sleep(0.2)
        http = httpx.Client(base_url=info["url"], timeout=60)
        assert http.get("/readyz").status_code == 200
        yield SimpleNamespace(process=server, url=info["url"], http=http, log=log,
                              token=info["token"])  # fmt: skip
        http.close()
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)


def make_env(cli_env: dict[str, str], home: Path) -> dict[str, str]:
    return {**cli_env, "COPILOT_HOME": str(home), "COPILOT_AUTH": "dev",
            "COPILOT_PARSE_WORKERS": "1"}  # fmt: skip


def texts(folder: Path, n: int, words: int = 12) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(f"w{i}x{j}" for j in range(words))
        (folder / f"note-{i:04d}.txt").write_text(f"Note {i} about the heron budget. {body}.\n")
    return folder


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """One service for the module's tests (each uses its own users and folders)."""
    root = tmp_path_factory.mktemp("service")
    env = make_env(dict(os.environ), root / "home")
    with serving(env) as running:
        running.env, running.root = env, root
        yield running


# -- the same output either way -------------------------------------------------------------


def volatile(value: Any) -> Any:
    """``value`` without what differs between two runs (times, run ids, the service)."""
    drop = {"seconds", "embed_seconds", "started_at", "finished_at", "run_id", "latency_ms",
            "prep_ms", "service", "score", "created_at", "last_synced"}  # fmt: skip
    if isinstance(value, dict):
        return {k: volatile(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [volatile(v) for v in value]
    if isinstance(value, str):  # the fence of untrusted text is new in every prompt
        return re.sub(r"untrusted-[0-9a-f]+", "untrusted-N", value)
    return value


def test_commands_print_the_same_json_with_and_without_the_service(
    service: SimpleNamespace, cli_env: dict[str, str], tmp_path: Path
) -> None:
    docs = build_workspace(tmp_path / "docs")
    here = make_env(cli_env, tmp_path / "alone")  # no service in this home
    there = service.env
    commands = [
        ("sync", "local", str(docs), "--user", "sam", "--json"),
        ("search", "when is the go-live date", "--user", "sam", "--json", "--k", "4"),
        ("status", "--user", "sam", "--json"),
        ("run", "ask", "--user", "sam", "--text", "When is the Atlas go-live?", "--json"),
        ("run", "summarise", "--user", "sam", "--file", str(docs / "Atlas status report.docx"),
         "--json"),
        ("skills", "list", "--user", "sam", "--json"),
    ]  # fmt: skip
    for args in commands:
        alone = json.loads(copilot(here, *args).stdout)
        through = json.loads(copilot(there, *args).stdout)
        assert volatile(through) == volatile(alone), args
        if args[0] == "search":  # scores: the service embeds on one thread, the CLI on two
            assert [h["score"] for h in through] == pytest.approx([h["score"] for h in alone])

    status = json.loads(copilot(there, "status", "--json").stdout)
    assert status["service"]["pid"] == service.process.pid
    assert status["service"]["url"] == service.url and status["service"]["engine"] == "local"
    assert json.loads(copilot(here, "status", "--json").stdout)["service"] is None
    shown = copilot(there, "status", "--user", "sam").stdout
    assert f"Service: running at {service.url} (pid {service.process.pid}" in shown
    assert "7 items" in shown
    plain = copilot(there, "search", "Q3 travel budget", "--user", "sam").stdout
    assert plain == copilot(here, "search", "Q3 travel budget", "--user", "sam").stdout
    assert "Budget 2025" in plain

    # Failures say the same words with the same exit code.
    for args in [("search", "   ", "--user", "sam"),
                 ("run", "nope", "--user", "sam", "--text", "x"),
                 ("sync", "local", str(tmp_path / "missing"), "--user", "sam"),
                 ("skills", "show", "nope", "--user", "sam")]:  # fmt: skip
        alone, through = copilot(here, *args, check=False), copilot(there, *args, check=False)
        assert (through.returncode, through.stderr) == (alone.returncode, alone.stderr), args
        assert through.returncode == 2 and "Traceback" not in through.stderr


def test_runs_through_the_service_page_past_the_apis_hundred(service: SimpleNamespace) -> None:
    # The API answers at most 100 runs a request; the CLI asks for up to 500 (a prefix is
    # looked up among them): through the service it read "query.limit: Input should be
    # less than or equal to 100" for every prefix and every --limit over 100.
    store = RunStore(open_engine(f"sqlite:///{service.root / 'home' / 'state.db'}"))
    oldest = store.record(make_run(user="local:rae", output="the first one"))
    for n in range(120):
        store.record(make_run(user="local:rae", output=f"run {n}"))
    store.engine.dispose()

    listed = json.loads(copilot(service.env, "runs", "list", "--user", "rae", "--limit", "150",
                                "--json").stdout)  # fmt: skip
    assert len(listed) == 121 and listed[-1]["id"] == oldest
    assert len({r["id"] for r in listed}) == 121  # pages neither overlap nor skip
    copilot(service.env, "runs", "feedback", oldest[:10], "--user", "rae", "--rating", "down")
    shown = json.loads(copilot(service.env, "runs", "show", oldest[:10], "--user", "rae",
                               "--json").stdout)  # fmt: skip
    assert shown["id"] == oldest and shown["rating"] == -1


# -- serialised syncs, identity ---------------------------------------------------------------


def test_two_cli_syncs_at_once_run_one_after_the_other(service: SimpleNamespace) -> None:
    first, second = texts(service.root / "two-a", 30), texts(service.root / "two-b", 30)
    runs = [started(service.env, "sync", "local", str(f), "--user", "anna", "--json")
            for f in (first, second)]  # fmt: skip
    reports = []
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        assert "already open" not in err
        reports.append(json.loads(out))
    assert [r["indexed"] for r in reports] == [30, 30]
    jobs = service.http.get("/v1/sync", headers=ANNA).json()["jobs"]
    spans = sorted((j["started_at"], j["finished_at"]) for j in jobs if "two-" in j["source"])
    assert len(spans) == 2 and all(j["status"] == "done" for j in jobs)
    assert spans[1][0] >= spans[0][1], "the service ran them one after the other"

    alone = copilot(service.env, "sync", "local", str(texts(service.root / "two-c", 3)),
                    "--user", "anna")  # fmt: skip
    assert "sync: items 3 of 3" in alone.stdout + alone.stderr
    assert "waiting for another sync" not in alone.stdout + alone.stderr  # none was running


def test_one_identity_for_the_cli_the_pane_and_the_bot(
    service: SimpleNamespace, tmp_path: Path
) -> None:
    docs = tmp_path / "ann-docs"
    docs.mkdir()
    (docs / "okapi.md").write_text("# Okapi\n\nThe okapi enclosure opens on 4 June.\n")
    http, env = service.http, service.env
    assert http.get("/v1/me", headers=ANN).status_code == 401  # ann is not a user yet
    copilot(env, "sync", "local", str(docs), "--user", "ann")  # ann is not a configured dev user
    copilot(env, "skills", "fork", "summarise", "--as", "annbrief", "--user", "ann")

    assert "ann" in http.get("/v1/dev/users").json()["users"]  # the pane's dev sign-in list
    assert http.get("/v1/me", headers=ANN).json()["user_id"] == "local:ann"
    hits = http.post("/v1/search", json={"query": "okapi enclosure"}, headers=ANN).json()
    assert hits[0]["title"] == "okapi.md"
    assert "annbrief" in {s["id"] for s in http.get("/v1/skills", headers=ANN).json()}
    anna = http.post("/v1/search", json={"query": "okapi enclosure"}, headers=ANNA).json()
    assert all(h["title"] != "okapi.md" for h in anna)  # another person sees none of it

    connector = SimpleNamespace(url="http://127.0.0.1:9")  # expectReplies: nothing is sent there
    answer = http.post("/api/messages", json=activity(connector, "skills", user="ann",
                                                      expect_replies=True))  # fmt: skip
    assert "annbrief" in json.dumps(replies(answer))  # the bot knows ann as the same person

    # What the pane does as ann, the CLI sees as ann: a run from the pane, in the CLI's status.
    run = http.post("/v1/skills/ask/run", json={"inputs": {"question": "When does the okapi "
                    "enclosure open?"}}, headers=ANN).json()  # fmt: skip
    assert "4 June" in run["text"]
    synced = json.loads(copilot(env, "status", "--user", "ann", "--json").stdout)["syncs"]
    assert [s["owner"] for s in synced] == ["local:ann"]


def test_eval_works_beside_the_service_and_finetune_compare_runs_in_it(
    service: SimpleNamespace, tmp_path: Path
) -> None:
    from tests.eval.test_eval import write_beir

    # eval indexes its collection in a throwaway home: the service's index is not touched.
    collection = write_beir(tmp_path / "beir")
    scores = json.loads(copilot(service.env, "eval", "retrieval", "--beir", str(collection),
                                "--mode", "bm25,hybrid", "--json").stdout)  # fmt: skip
    assert set(scores) == {"bm25", "hybrid"} and scores["hybrid"]["queries"] > 0

    # compare runs skills, which may search the index: it runs in the service.
    docs = texts(tmp_path / "compare-docs", 3)
    copilot(service.env, "sync", "local", str(docs), "--user", "cy")
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"q": {"question": "What is the heron budget?"}}))
    args = ("finetune", "compare", "--skill", "ask", "--model", "a", "--model", "b", "--user",
            "cy", "--inputs", str(inputs), "--json")  # fmt: skip
    done = copilot(service.env, *args, check=False)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["sample"] for r in rows] == ["q"] and set(rows[0]["outputs"]) == {"a", "b"}
    assert "already open" not in done.stderr

    # The other finetune commands use the state store only, which takes many processes.
    opted = copilot(service.env, "finetune", "consent", "--user", "local:cy")
    assert "local:cy opted in" in opted.stdout
    assert "local:cy" in copilot(service.env, "finetune", "consent", "--list").stdout


# -- the service's life ------------------------------------------------------------------------


def test_killing_the_service_mid_sync_leaves_a_resumable_sync(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    # Stored in batches of 4 x 8 notes: a kill after a few batches leaves most still to do.
    env = {**make_env(cli_env, tmp_path / "home"), "COPILOT_EMBED_BATCH": "8"}
    folder = texts(tmp_path / "many", 240, words=30)  # one chunk each
    with serving(env) as running:
        sync = started(env, "sync", "local", str(folder), "--user", "anna", "--json")
        deadline = time.monotonic() + 300
        while True:
            jobs = running.http.get("/v1/sync", headers=ANNA).json()["jobs"]
            progress = jobs[0]["progress"] if jobs else {}
            if progress.get("indexed", 0) >= 32:  # one batch is stored
                break
            assert sync.poll() is None, sync.communicate()
            assert time.monotonic() < deadline, "the sync made no progress"
            time.sleep(0.05)
        assert jobs[0]["status"] == "running" and progress["indexed"] < 240, "killed too late"
        os.kill(running.process.pid, signal.SIGKILL)
        _, err = sync.communicate(timeout=60)
    assert sync.returncode == 1 and "stopped answering" in err and "Traceback" not in err

    # No service now (its file is stale): the next sync runs here and resumes.
    assert json.loads(copilot(env, "status", "--json").stdout)["service"] is None
    again = json.loads(copilot(env, "sync", "local", str(folder), "--user", "anna", "--json",
                               timeout=600).stdout)  # fmt: skip
    assert again["unchanged"] >= 32 and again["unchanged"] + again["indexed"] == 240
    status = json.loads(copilot(env, "status", "--user", "anna", "--json").stdout)
    assert (status["items"], status["chunks"]) == (240, 240)  # nothing lost...
    with Workspace(Settings(home=env["COPILOT_HOME"])) as ws:
        assert ws.store.count("local:anna") == 240  # ...and nothing doubled in the index


def test_a_detached_start_that_fails_shows_its_own_log_lines(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = make_env(cli_env, tmp_path / "home")
    env["COPILOT_AUTH"] = "entra"  # the default, with no tenant configured
    for name in ("COPILOT_ENTRA_TENANT_ID", "COPILOT_ENTRA_CLIENT_ID"):
        env.pop(name, None)
    home = Path(env["COPILOT_HOME"])
    home.mkdir(mode=0o700)
    (home / "serve.log").write_text("an earlier start's last words\n")
    failed = copilot(env, "serve", "--detach", "--port", "0", check=False, timeout=120)
    assert failed.returncode == 2
    assert "tenant id" in failed.stderr and "COPILOT_AUTH=dev" in failed.stderr
    assert "earlier start" not in failed.stderr
    assert discovery(env) is None


def test_detach_status_and_stop_and_a_stale_file_is_ignored(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = make_env(cli_env, tmp_path / "home")
    home = Path(env["COPILOT_HOME"])
    home.mkdir(mode=0o700)
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale = {"url": "http://127.0.0.1:9", "pid": gone.pid, "started": 0, "listen": "127.0.0.1",
             "token": "x" * 43}  # fmt: skip
    (home / "service.json").write_text(json.dumps(stale))
    assert "Service: not running" in copilot(env, "status").stdout
    assert not (home / "service.json").exists()  # a dead service's file is removed

    try:
        shown = copilot(env, "serve", "--detach", "--port", "0", timeout=START_TIMEOUT_S + 30)
        info = discovery(env)
        assert info and f"runs at {info['url']} (pid {info['pid']})" in shown.stdout
        assert stat.S_IMODE((home / "service.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((home / "serve.log").stat().st_mode) == 0o600
        assert f"Service: running at {info['url']}" in copilot(env, "status").stdout
        assert "already runs" in copilot(env, "serve", "--detach").stdout
        refused = copilot(env, "serve", "--port", "0", check=False, timeout=60)
        assert refused.returncode == 2 and "already runs" in refused.stderr
        stopped = copilot(env, "stop", timeout=90)
        assert f"Stopped the copilot service (pid {info['pid']})" in stopped.stdout
        assert discovery(env) is None
        assert "Service: not running" in copilot(env, "status").stdout
        assert "No copilot service" in copilot(env, "stop").stdout
    finally:
        info = discovery(env)
        if info:  # a failed assertion must not leave a service behind
            os.kill(info["pid"], signal.SIGKILL)

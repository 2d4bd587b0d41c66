"""The API over real HTTP on loopback (development-mode users), with the scripted LLM."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openpyxl
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job
from tests.fakes.api_server import sse_events as events
from tests.fakes.builders_office import column_xlsx
from tests.fakes.llm_server import Reply, ScriptedLLM

ANNA = {"Authorization": "Bearer dev:anna"}
BOB = {"Authorization": "Bearer dev:bob"}
DOCS = {
    "atlas.md": "# Atlas risks\n\nThe largest risk of the Atlas migration is the legacy "
    "invoice export, a nightly batch job nobody has changed in six years.\n",
    "budget.md": "# Travel budget\n\nThe Q3 travel budget is 12,000 EUR, approved on 3 July.\n",
}


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, llm_server: ScriptedLLM
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("api")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    settings = Settings(
        home=root / "home",
        auth="dev",
        sync_roots=[str(root)],
        llm_base_url=llm_server.base_url,
        llm_timeout_s=3,
        llm_max_retries=0,
        max_request_mb=1,
        rate_limit_per_minute=1000,
        parse_workers=1,
    )
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        job = client.post("/v1/sync/local", json={"path": str(docs)}, headers=ANNA).json()
        assert wait_for_job(client, job, ANNA)["status"] == "done"
        yield {"client": client, "url": url, "docs": docs, "settings": settings}


@pytest.fixture
def client(api: dict[str, Any], llm: ScriptedLLM) -> httpx.Client:
    llm.responder = None
    return api["client"]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["detail"]
    assert "Traceback" not in response.text and "/work/" not in response.text
    return body


# -- identity, health, documents ---------------------------------------------------------


def test_health_and_identity(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "process": 0}
    assert client.get("/readyz").json()["index"] == "ok"
    me = client.get("/v1/me", headers=ANNA).json()
    assert me["user_id"] == "local:anna" and me["engine"] == "llm"
    problem(client.get("/v1/me"), 401)
    problem(client.get("/v1/me", headers={"Authorization": "Bearer dev:mallory"}), 401)
    assert client.get("/openapi.json").json()["info"]["title"] == "Office Copilot API"


def test_search_is_scoped_to_the_caller(client: httpx.Client) -> None:
    hits = client.post("/v1/search", json={"query": "Atlas risk"}, headers=ANNA).json()
    assert hits and hits[0]["item_id"].endswith("atlas.md") and hits[0]["where"]
    assert client.post("/v1/search", json={"query": "Atlas risk"}, headers=BOB).json() == []
    problem(client.post("/v1/search", json={"query": "..."}, headers=ANNA), 400)
    problem(client.post("/v1/search", json={"query": "x", "k": 1000}, headers=ANNA), 422)


# -- running skills ----------------------------------------------------------------------------


def test_run_json_with_citations_and_feedback(client: httpx.Client, llm: ScriptedLLM) -> None:
    llm.script(Reply.text("The Q3 travel budget is 12,000 EUR [1]. Also [8]."))
    body = {"inputs": {"question": "What is the Q3 travel budget?"}}
    run = client.post("/v1/skills/ask/run", json=body, headers=ANNA).json()
    assert run["text"] == "The Q3 travel budget is 12,000 EUR [1]. Also."
    assert run["invalid_citations"] == [8] and run["citations"][0]["item_id"].endswith("budget.md")
    assert run["usage"]["prompt_tokens"] > 0

    record = client.get(f"/v1/runs/{run['run_id']}", headers=ANNA).json()
    assert record["messages"][0]["role"] == "system"
    rated = client.post(f"/v1/runs/{run['run_id']}/feedback", json={"rating": 1}, headers=ANNA)
    assert rated.json()["rating"] == 1
    problem(client.get(f"/v1/runs/{run['run_id']}", headers=BOB), 404)
    problem(
        client.post(f"/v1/runs/{run['run_id']}/feedback", json={"rating": -1}, headers=BOB), 404
    )
    assert all(r["id"] != run["run_id"] for r in client.get("/v1/runs", headers=BOB).json())
    problem(
        client.post(f"/v1/runs/{run['run_id']}/feedback", json={"rating": 5}, headers=ANNA), 422
    )


def test_run_streams_server_sent_events_in_order(client: httpx.Client, llm: ScriptedLLM) -> None:
    llm.script(Reply.text("The largest risk is the invoice export [1].", chunks=5))
    response = client.post(
        "/v1/skills/ask/run",
        json={"inputs": {"question": "largest Atlas risk?"}},
        headers={**ANNA, "Accept": "text/event-stream"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response)
    kinds = [k for k, _ in got]
    assert kinds[0] == "sources" and kinds[-1] == "done" and kinds.count("delta") >= 2
    text = "".join(d["text"] for k, d in got if k == "delta")
    assert text == "The largest risk is the invoice export [1]."
    assert got[-1][1]["citations"][0]["n"] == 1


def test_a_summary_is_asked_for_its_size_and_ends_there(
    client: httpx.Client, llm: ScriptedLLM
) -> None:
    """Summarise over HTTP, as the pane does: a ~100-word text asks for a small summary, and
    a model that writes eight points is stopped after the third (two asked, one more kept)."""
    text = " ".join(f"Point {i} says the Atlas rehearsal moved to a later day." for i in range(10))
    points = "\n".join(f"- Point {i} of the summary. [1]" for i in range(1, 9))
    llm.script(Reply.text(points, chunks=24, chunk_delay=0.01))
    response = client.post(
        "/v1/skills/summarise/run",
        json={"inputs": {"text": text}},
        headers={**ANNA, "Accept": "text/event-stream"},
    )
    got = events(response)
    done = got[-1][1]
    assert got[-1][0] == "done" and done["text"].count("- Point") == 3
    shown = "".join(d["text"] for k, d in got if k == "delta")
    assert "Point 4" not in shown
    sent = "\n".join(m["content"] for m in llm.requests[-1].json["messages"])
    assert "Use about 2 points, 40 words in all." in sent


def test_disconnect_cancels_the_model_call(
    api: dict[str, Any], client: httpx.Client, llm: ScriptedLLM
) -> None:
    llm.script(Reply.text("one two three four five six seven eight", chunks=8, chunk_delay=0.5))
    with httpx.Client(base_url=api["url"], timeout=10) as own, own.stream(
        "POST", "/v1/skills/ask/run", json={"inputs": {"question": "Atlas?"}},
        headers={**ANNA, "Accept": "text/event-stream"},
    ) as response:  # fmt: skip
        for line in response.iter_lines():
            if line.startswith("event: delta"):
                break  # leave after the first words
    deadline = time.monotonic() + 5
    while not llm.requests[-1].disconnected.is_set():
        assert time.monotonic() < deadline, "the model call was not cancelled"
        time.sleep(0.05)
    deadline = time.monotonic() + 5
    while client.get("/v1/runs", headers=ANNA).json()[0]["status"] != "cancelled":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_preview_shows_the_exact_messages_and_sends_nothing(
    client: httpx.Client, llm: ScriptedLLM
) -> None:
    body = {"inputs": {"text": "Loved the hotel."}}
    preview = client.post("/v1/skills/sentiment/preview", json=body, headers=ANNA).json()
    fenced = r'<untrusted-(\w+) name="text">Loved the hotel\.</untrusted-\1>'
    assert re.search(fenced, preview["messages"][-1]["content"])
    assert llm.requests == []


def test_read_ahead_on_a_cloud_model_sends_nothing_and_records_nothing(
    client: httpx.Client, llm: ScriptedLLM
) -> None:
    runs = client.get("/v1/runs", headers=ANNA).json()
    body = {"inputs": {"text": "Subject: Atlas\n\nThe go-live moves to 21 March."}}
    reply = client.post("/v1/skills/summarise/read-ahead", json=body, headers=ANNA)
    assert reply.status_code == 200 and reply.json() == {"status": "not_needed"}
    assert llm.requests == [] and client.get("/v1/runs", headers=ANNA).json() == runs
    # Inputs are checked as for the run itself.
    wrong = client.post(
        "/v1/skills/summarise/read-ahead", json={"inputs": {"nope": 1}}, headers=ANNA
    )
    assert "nope" in problem(wrong, 422)["detail"]
    problem(client.post("/v1/skills/no-such-skill/read-ahead", json=body, headers=ANNA), 404)


def test_model_failures_are_plain_problems(client: httpx.Client, llm: ScriptedLLM) -> None:
    llm.script(Reply.status(500))
    body = problem(client.post("/v1/skills/ask/run", json={"inputs": {"question": "x y"}},
                               headers=ANNA), 502)  # fmt: skip
    assert body["code"] == "llm_server"
    body = problem(
        client.post("/v1/skills/ask/run", json={"inputs": {"nope": 1}}, headers=ANNA), 422
    )
    assert "nope" in body["detail"]


# -- personal skills ---------------------------------------------------------------------------


def test_personal_skill_lifecycle_and_isolation(client: httpx.Client) -> None:
    forked = client.post("/v1/skills/ask/fork", json={"new_id": "my-ask"}, headers=ANNA)
    assert forked.status_code == 201 and forked.json()["version"] == 1
    text = forked.json()["text"].replace("careful assistant", "blunt assistant")
    saved = client.put("/v1/skills/my-ask", json={"text": text, "message": "blunt"}, headers=ANNA)
    assert saved.json()["version"] == 2
    bad = client.put("/v1/skills/my-ask", json={"text": text.replace("  task:", "  tsak:")},
                     headers=ANNA)  # fmt: skip
    assert problem(bad, 422)["line"] > 1
    versions = client.get("/v1/skills/my-ask/versions", headers=ANNA).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert (
        client.post("/v1/skills/my-ask/revert", json={"version": 1}, headers=ANNA).json()["version"]
        == 3
    )
    exported = client.get("/v1/skills/my-ask/export", headers=ANNA)
    assert "careful assistant" in exported.text
    assert client.put("/v1/skills/my-ask/samples/s1", json={"inputs": {"question": "Atlas?"}},
                      headers=ANNA).status_code == 204  # fmt: skip
    assert "s1" in client.get("/v1/skills/my-ask/samples", headers=ANNA).json()

    # Bob cannot see, read, run, change or export it: it does not exist for him.
    assert "my-ask" not in [s["id"] for s in client.get("/v1/skills", headers=BOB).json()]
    for method, path, payload in [
        ("GET", "/v1/skills/my-ask", None),
        ("DELETE", "/v1/skills/my-ask", None),
        ("GET", "/v1/skills/my-ask/versions", None),
        ("POST", "/v1/skills/my-ask/revert", {"version": 1}),
        ("GET", "/v1/skills/my-ask/export", None),
        ("GET", "/v1/skills/my-ask/samples", None),
        ("POST", "/v1/skills/my-ask/run", {"inputs": {"question": "x"}}),
        ("POST", "/v1/skills/my-ask/preview", {"inputs": {"question": "x"}}),
        ("POST", "/v1/skills/my-ask/fork", {"new_id": "stolen"}),
    ]:
        response = client.request(method, path, json=payload, headers=BOB)
        assert response.status_code == 404, (method, path, response.text)
        assert "blunt" not in response.text and "careful" not in response.text
    # Saving under the same id makes Bob's own skill; Anna's is untouched.
    bobs = client.put("/v1/skills/my-ask", json={"text": text}, headers=BOB)
    assert bobs.status_code == 200 and bobs.json()["version"] == 1
    assert client.get("/v1/skills/my-ask", headers=ANNA).json()["version"] == 3
    assert client.delete("/v1/skills/my-ask", headers=BOB).status_code == 204
    assert client.delete("/v1/skills/my-ask", headers=ANNA).status_code == 204


# -- files, sync, limits -------------------------------------------------------------------------


def test_upload_a_workbook_get_it_scored(client: httpx.Client, tmp_path: Path) -> None:
    book = tmp_path / "reviews.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["Review"])
    for text in ("Wonderful staff and a great room.", "Dirty, noisy and overpriced."):
        wb.active.append([text])
    wb.save(book)
    files = {"file": ("reviews.xlsx", book.read_bytes())}
    response = client.post("/v1/files/sentiment", files=files,
                           data={"column": "Review", "engine": "local"}, headers=ANNA)  # fmt: skip
    assert response.status_code == 200, response.text
    out = tmp_path / "scored.xlsx"
    out.write_bytes(response.content)
    labels = [c.value for c in openpyxl.load_workbook(out)["Scored"]["B"]][1:]  # Review, Label…
    assert labels[:2] == ["positive", "negative"] or "negative" in labels
    problem(client.post("/v1/files/sentiment", files={"file": ("x.xlsx", b"not a workbook")},
                        data={"column": "Review"}, headers=ANNA), 400)  # fmt: skip
    # The embedded engine may be asked for by name, as on the CLI: here none is installed.
    none = problem(client.post("/v1/files/sentiment", files=files, headers=ANNA,
                               data={"column": "Review", "engine": "embedded"}), 400)  # fmt: skip
    assert "copilot model install" in none["detail"]


def test_an_upload_scored_by_a_configured_model_reads_each_label_off_its_first_token(
    client: httpx.Client, llm: ScriptedLLM, tmp_path: Path
) -> None:
    def label(request: Any) -> Reply:
        text = request["messages"][-1]["content"]
        return (
            Reply.label(negative=0.9, mixed=0.1)
            if "Dirty" in text
            else Reply.label(positive=0.95, neutral=0.05)
        )

    llm.responder = label
    book = column_xlsx("Review", ["Wonderful staff.", "Dirty and noisy."])
    response = client.post("/v1/files/sentiment", files={"file": ("r.xlsx", book)},
                           data={"column": "Review", "engine": "llm"}, headers=ANNA)  # fmt: skip
    assert response.status_code == 200, response.text
    out = tmp_path / "scored.xlsx"
    out.write_bytes(response.content)
    scored = openpyxl.load_workbook(out)
    assert [c.value for c in scored["Scored"]["B"]][1:] == ["positive", "negative"]
    summary = {r[0]: r[1] for r in scored["Summary"].iter_rows(values_only=True) if r[0]}
    assert summary["engine"] == "llm"
    assert summary["method"] == "the label the model answers first, for each text and clause"
    assert all(r.json["max_tokens"] == 1 and r.json["logprobs"] for r in llm.requests)


def test_a_client_that_hangs_up_stops_the_scoring_of_its_workbook(
    client: httpx.Client, api: dict[str, Any], llm: ScriptedLLM
) -> None:
    """30 rows at ~0.3 s each on the model; the client gives up after one second, and no
    more rows reach the model soon after (they did, until the workbook was done)."""
    calls: list[float] = []

    def slow(request: Any) -> Reply:
        calls.append(time.monotonic())
        time.sleep(0.3)
        return Reply.json({"label": "positive", "score": 0.5, "aspects": []})

    llm.responder = slow
    book = column_xlsx("Review", [f"Order {i} arrived on time." for i in range(30)])
    form = {"column": "Review", "engine": "llm"}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{api['url']}/v1/files/sentiment", files={"file": ("r.xlsx", book)},
                   data=form, headers=ANNA, timeout=1.0)  # fmt: skip
    time.sleep(1.5)  # the server notices within a poll (0.25 s) and stops at the next row
    sent = len(calls)
    time.sleep(1.5)
    assert len(calls) == sent and 1 <= sent < 12


def test_sync_jobs_are_per_user(client: httpx.Client, api: dict[str, Any]) -> None:
    jobs = client.get("/v1/sync", headers=ANNA).json()
    assert jobs["items"] == 2 and jobs["jobs"][0]["status"] == "done"
    job_id = jobs["jobs"][0]["id"]
    problem(client.get(f"/v1/sync/{job_id}", headers=BOB), 404)
    problem(client.delete(f"/v1/sync/{job_id}", headers=BOB), 404)
    assert client.get("/v1/sync", headers=BOB).json()["items"] == 0
    problem(client.post("/v1/sync/dropbox", json={}, headers=ANNA), 404)


def test_request_size_limit_and_unknown_routes(client: httpx.Client) -> None:
    big = {"inputs": {"text": "x" * (2 * 1024 * 1024)}}
    problem(client.post("/v1/skills/summarise/run", json=big, headers=ANNA), 413)
    problem(client.get("/v1/nope", headers=ANNA), 404)
    problem(client.post("/v1/search", content=b"{not json", headers={**ANNA,
            "Content-Type": "application/json"}), 422)  # fmt: skip


def test_rate_limit_per_user(api: dict[str, Any], llm: ScriptedLLM) -> None:
    settings = api["settings"].model_copy(update={"home": api["settings"].home_dir.parent / "rl",
                                                  "rate_limit_per_minute": 3})  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url) as c:
        codes = [c.post("/v1/search", json={"query": "budget"}, headers=ANNA).status_code
                 for _ in range(5)]  # fmt: skip
        assert codes[:3] == [200, 200, 200] and codes[3] == 429
        limited = c.post("/v1/search", json={"query": "budget"}, headers=ANNA)
        assert int(limited.headers["Retry-After"]) >= 1
        assert c.post("/v1/search", json={"query": "budget"}, headers=BOB).status_code == 200


def test_asking_about_an_item_fences_it_as_a_source(client: httpx.Client) -> None:
    """The item's text is data to answer from, never the question itself."""
    hits = client.post("/v1/search", json={"query": "Atlas risk"}, headers=ANNA).json()
    body = {"inputs": {"question": "What is the largest risk?"}, "item_id": hits[0]["item_id"],
            "retrieval": False}  # fmt: skip
    preview = client.post("/v1/skills/ask/preview", json=body, headers=ANNA).json()
    user_turn = preview["messages"][-1]["content"]
    asked = r'\nQuestion: <untrusted-(\w+) name="question">(.*?)</untrusted-\1>'
    question = re.search(asked, user_turn)
    assert question and question.group(2) == "What is the largest risk?"
    assert user_turn.rindex("</source>") < question.start()  # after the sources, as asked
    fenced = user_turn.split("<source ", 1)[1].split("</source>", 1)[0]
    assert "legacy invoice export" in fenced
    assert preview["sources"][0]["item_id"] == hits[0]["item_id"]


def test_saved_samples_rerun_beside_an_edited_candidate(client: httpx.Client) -> None:
    forked = client.post("/v1/skills/sentiment/fork", json={"new_id": "mood"}, headers=ANNA)
    assert forked.status_code == 201
    sample = {"inputs": {"text": "The hotel was dirty and loud."}}
    assert client.put("/v1/skills/mood/samples/bad", json=sample, headers=ANNA).status_code == 204
    candidate = forked.json()["text"].replace("meticulous analyst", "terse analyst")
    rows = client.post("/v1/skills/mood/test", json={"candidate_text": candidate,
                       "engine": "local"}, headers=ANNA).json()  # fmt: skip
    assert [r["sample"] for r in rows] == ["template", "bad"]
    assert rows[1]["current"]["text"].startswith("negative")
    assert rows[1]["candidate"]["engine"] == "local"
    broken = client.post("/v1/skills/mood/test", json={"candidate_text": "no front matter"},
                         headers=ANNA)  # fmt: skip
    assert problem(broken, 422)["line"] == 1
    assert client.delete("/v1/skills/mood", headers=ANNA).status_code == 204


def test_a_new_process_makes_what_every_run_needs_before_it_serves(tmp_path, monkeypatch):
    # the first 20 concurrent runs of a cold process waited up to ~300 ms for these
    from copilot.llm import tokens

    monkeypatch.setattr(tokens, "_encoding", None)  # as in a process that has served nothing
    settings = Settings(home=tmp_path / "home", auth="dev")
    with serving(create_app(settings)) as url:
        assert tokens._encoding is not None  # loaded at start, not by the first run
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_a_new_process_opens_its_model_engine_before_it_serves(tmp_path, llm):
    """The client, the engine (which asks the server its window) and the built-in skills'
    first renders are made at start; nothing is sent to the model and nothing recorded."""
    from copilot.skills import prepare

    rendered: list[str] = []
    real = prepare.render

    def recording(template, values):
        rendered.append(template.name)
        return real(template, values)

    settings = Settings(home=tmp_path / "home", auth="dev", llm_base_url=llm.base_url)
    app = create_app(settings)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(prepare, "render", recording)
        with serving(app) as url:
            runner = app.state.api.runner
            assert set(runner._engines) == {"llm"}  # opened; the embedded one never is
            assert sorted(set(rendered)) == ["Ask", "Sentiment", "Summarise"]
            assert llm.requests == []  # no completion asked for
            assert httpx.get(f"{url}/v1/runs", headers=ANNA, timeout=10).json() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SCHED_IDLE is Linux's")
def test_a_sync_asked_for_over_http_embeds_on_cpu_no_request_wants(tmp_path, monkeypatch):
    from copilot.index.embed import OnnxMiniLM

    embed = OnnxMiniLM.embed_documents
    policies: list[int] = []

    def recording(self, texts):
        policies.append(os.sched_getscheduler(0))
        return embed(self, texts)

    monkeypatch.setattr(OnnxMiniLM, "embed_documents", recording)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "minutes.txt").write_text("Minutes: the offsite is in May.")
    settings = Settings(home=tmp_path / "home", auth="dev", sync_roots=[str(tmp_path)])
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as c:
        job = c.post("/v1/sync/local", json={"path": str(docs)}, headers=ANNA).json()
        assert wait_for_job(c, job, ANNA)["status"] == "done"
        found = c.post("/v1/search", json={"query": "offsite"}, headers=ANNA).json()
    assert found and "offsite" in found[0]["snippet"], found  # indexed
    # the sync's slice at SCHED_IDLE (api/background.py); the search's query embedding, the
    # last call, at normal priority
    assert os.SCHED_IDLE in policies and policies[-1] == os.SCHED_OTHER

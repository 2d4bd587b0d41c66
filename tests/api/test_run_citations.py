"""The API's answers carry the same citations as every other surface: named for people,
only the cited ones under `citations`, the rest under `more_sources`; the same for a
question with or without its question mark, as JSON and as a stream; and an input outside
its skill's allowed values is refused with those values named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job
from tests.skills.mailbox import write_mailbox

ANNA = {"Authorization": "Bearer dev:anna"}
QUESTION = "What did Kay Mann say about outside legal advice"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("api-mail")
    mail = write_mailbox(root / "mail")
    settings = Settings(home=root / "home", auth="dev", sync_roots=[str(root)], parse_workers=1,
                        rate_limit_per_minute=1000)  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as c:
        job = c.post("/v1/sync/local", json={"path": str(mail)}, headers=ANNA).json()
        assert wait_for_job(c, job, ANNA)["status"] == "done"
        yield c


def streamed(client: httpx.Client, question: str) -> dict[str, Any]:
    response = client.post(
        "/v1/skills/ask/run", json={"inputs": {"question": question}, "engine": "local"},
        headers={**ANNA, "Accept": "text/event-stream"},
    )  # fmt: skip
    done = [b for b in response.text.split("\n\n") if b.startswith("event: done")]
    assert len(done) == 1, response.text
    data: dict[str, Any] = json.loads(done[0].split("data: ", 1)[1])
    return data


def test_a_run_lists_cited_sources_named_for_people_and_the_rest_as_more(
    client: httpx.Client,
) -> None:
    run = client.post(
        "/v1/skills/ask/run", json={"inputs": {"question": f"{QUESTION}?"}, "engine": "local"},
        headers=ANNA,
    ).json()  # fmt: skip

    assert run["citations"], run["text"]
    kay = run["citations"][0]
    assert kay["sender"] == "Kay Mann" and kay["kind"] == "mail" and kay["cited"] is True
    assert kay["label"] == f"{kay['subject']} — Kay Mann, {kay['where'].split(', ', 1)[1]}"
    assert not kay["snippet"].startswith(("Subject:", "From:"))
    more = run["more_sources"]
    assert more and all(not m["cited"] for m in more)
    numbers = [c["n"] for c in run["citations"]] + [m["n"] for m in more]
    assert len(numbers) == len(set(numbers))  # each passage once, under one number
    assert {s["item_id"] for s in run["sources"]} == {c["item_id"] for c in run["citations"] + more}


def test_the_stream_answers_the_same_with_or_without_the_question_mark(
    client: httpx.Client,
) -> None:
    with_mark, without = streamed(client, f"{QUESTION}?"), streamed(client, QUESTION)
    assert with_mark["citations"] == without["citations"]
    assert with_mark["more_sources"] == without["more_sources"]
    assert "found nothing" not in with_mark["text"]


def test_an_input_outside_its_allowed_values_is_refused(client: httpx.Client) -> None:
    response = client.post(
        "/v1/skills/summarise/run",
        json={"inputs": {"text": "Notes.", "style": "nonsense"}, "engine": "local"},
        headers=ANNA,
    )
    assert response.status_code == 400
    assert "bullets, paragraph, tldr, action_items, subject" in response.json()["detail"]

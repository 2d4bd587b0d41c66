"""/v1/admin/finetune over real HTTP (development-mode users): admins only, previews that
carry no one's text, and a job started from approved runs on the scripted server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from copilot.db.engine import open_engine
from copilot.finetune import consent
from copilot.skills.history import RunRecord, RunStore
from tests.fakes.api_server import serving
from tests.fakes.llm_server import ScriptedLLM

ANNA = {"Authorization": "Bearer dev:anna"}  # the admin
BOB = {"Authorization": "Bearer dev:bob"}
SECRET = "Zanzibar account"
TOPICS = [
    "board approved the migration budget for the third quarter",
    "marketing wants the spring campaign moved to April",
    "the new hire in finance needs a laptop and a badge",
    "customer complained about invoice errors in March",
    "the fourth floor office closes for painting next week",
    "legal asks everyone to finish privacy training by Friday",
    "the supplier raised prices for paper and toner",
    "the offsite moves from Berlin to Hamburg",
    "sales grew in the north region but fell in the south",
    "IT replaces the VPN client on all laptops this weekend",
    "the cafeteria adds a vegetarian menu on Wednesdays",
    "security found an unlocked server room door",
    "the mobile app has login problems on older phones",
    "HR announced new parental leave rules for January",
    "the warehouse inventory count starts on Monday morning",
    "travel bookings now need approval from a manager",
    "the intranet search cannot find scanned contracts",
    "parking spaces are reassigned after the renovation",
    "the audit found missing receipts for taxi rides",
    "the customer survey response rate dropped to twelve percent",
]


def record_runs(settings: Settings, user: str, topics: list[str]) -> None:
    runs = RunStore(open_engine(settings.state_url))
    consent.grant(runs.engine, user)
    for i, topic in enumerate(topics):
        text = f"{SECRET}: {topic}."
        run = RunRecord(
            user=user, skill_id="summarise", skill_version="builtin", engine="llm",
            model="gpt-4o-mini", inputs={"text": text}, inputs_hash="",
            messages=[{"role": "system", "content": "Summarise."},
                      {"role": "user", "content": text}],
            output=f"Summary {i}, mail me at boss{i}@example.com", data=None, citations=[],
            chunk_ids=[], prompt_tokens=10, completion_tokens=5, cost_usd=None, latency_ms=1.0,
            status="ok",
        )  # fmt: skip
        runs.feedback(user, runs.record(run), rating=1)
    runs.engine.dispose()


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, llm_server: ScriptedLLM
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("finetune-api")
    settings = Settings(
        home=root / "home", auth="dev", llm_base_url=llm_server.base_url, llm_timeout_s=5,
        llm_max_retries=0, admins=["local:anna"], rate_limit_per_minute=1000,
    )  # fmt: skip
    record_runs(settings, "local:bob", TOPICS[:14])
    record_runs(settings, "local:carol", TOPICS[14:])
    app = create_app(settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


BODY = {"skill_id": "summarise", "all_users_with_consent": True, "base_model": "gpt-3.5-turbo"}


def test_non_admins_get_403_before_anything_is_read(client: httpx.Client) -> None:
    for method, path, body in [
        ("POST", "/v1/admin/finetune/preview", BODY),
        ("POST", "/v1/admin/finetune/jobs", BODY),
        ("GET", "/v1/admin/finetune/jobs", None),
        ("GET", "/v1/admin/finetune/jobs/ftjob-1", None),
        ("POST", "/v1/admin/finetune/jobs/ftjob-1/cancel", None),
    ]:
        response = client.request(method, path, json=body, headers=BOB)
        assert "COPILOT_ADMINS" in problem(response, 403)["detail"]
    problem(client.post("/v1/admin/finetune/preview", json=BODY), 401)


def test_preview_gives_figures_and_no_ones_text(client: httpx.Client) -> None:
    response = client.post("/v1/admin/finetune/preview", json=BODY, headers=ANNA)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["examples"] == 20 and report["users"] == 2
    assert report["train"] + report["validation"] == 20
    assert report["privacy"]["redacted"] == {"email": 20}
    assert report["diversity"]["mean_pairwise_distance"] is not None
    assert report["validation_check"]["ok"] is True
    assert report["cost"]["base_model"] == "gpt-3.5-turbo" and report["cost"]["cost_usd"] > 0
    assert SECRET not in response.text and "example.com" not in response.text
    assert "local:bob" not in response.text  # contributors are counted, not named

    one = client.post("/v1/admin/finetune/preview", json={**BODY, "all_users_with_consent":
                      False, "user": "local:carol"}, headers=ANNA).json()  # fmt: skip
    assert one["examples"] == 6 and any("at least 10" in w for w in one["warnings"])
    missing = client.post("/v1/admin/finetune/preview", json={**BODY, "all_users_with_consent":
                          False, "user": "local:dave"}, headers=ANNA)  # fmt: skip
    assert "has not opted in" in problem(missing, 422)["detail"]


def test_an_admin_starts_a_job_and_follows_it(client: httpx.Client, llm: ScriptedLLM) -> None:
    small = client.post("/v1/admin/finetune/jobs", json={**BODY, "all_users_with_consent":
                        False, "user": "local:carol"}, headers=ANNA)  # fmt: skip
    assert "at least 10" in problem(small, 422)["detail"]
    assert llm.finetune.files == {}

    started = client.post("/v1/admin/finetune/jobs", json={**BODY, "suffix": "sum"},
                          headers=ANNA)  # fmt: skip
    assert started.status_code == 201, started.text
    job = started.json()["job"]
    assert job["status"] == "validating_files" and started.json()["started_by"] == "local:anna"
    uploaded = llm.finetune.contents[job["training_file"]].decode()
    assert "boss1@example.com" not in uploaded and "[EMAIL_1]" in uploaded

    path = f"/v1/admin/finetune/jobs/{job['id']}"
    assert client.get(path, headers=ANNA).json()["status"] == "running"
    done = client.get(path, headers=ANNA).json()
    assert done["status"] == "succeeded" and done["fine_tuned_model"].startswith("ft:")
    assert done["events"][0]["message"] == "The job has successfully completed"
    listed = client.get("/v1/admin/finetune/jobs", headers=ANNA).json()
    assert job["id"] in {j["id"] for j in listed}
    again = client.post(f"{path}/cancel", headers=ANNA)
    assert problem(again, 502)["code"] == "finetune_service"
    problem(client.get("/v1/admin/finetune/jobs/ftjob-none", headers=ANNA), 404)

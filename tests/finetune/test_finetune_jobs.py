"""Fine-tuning jobs against the scripted OpenAI-compatible server, the switch of a skill to
the fine-tuned model (and back with `copilot skills revert`), and comparing two models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from copilot.cli.finetune import finetune_app
from copilot.finetune import jobs
from copilot.finetune.overrides import skill_model
from copilot.finetune.switch import compare_models, use_for_all, use_model
from copilot.finetune.validate import FinetuneError
from copilot.skills.runner import SkillRunner
from copilot.workspace import Workspace
from tests.fakes.llm_server import Reply

FT = "ft:gpt-4o-mini:org:notes:000001"
TEXT = {"text": "The board moved the Atlas launch to May and approved the budget."}


def training_file(folder: Path, n: int = 12, name: str = "train.jsonl") -> Path:
    path = folder / name
    lines = [
        json.dumps({"messages": [{"role": "user", "content": f"Summarise note {i}."},
                                 {"role": "assistant", "content": f"Note {i} in short."}]})
        for i in range(n)
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_job_runs_from_upload_to_a_fine_tuned_model(llm_settings, llm, tmp_path):
    train = training_file(tmp_path)
    valid = training_file(tmp_path, 3, "valid.jsonl")

    job = jobs.start_job(llm_settings, train, "gpt-4o-mini", epochs=2, suffix="notes",
                         validation=valid)  # fmt: skip

    assert job["status"] == "validating_files" and job["model"] == "gpt-4o-mini"
    assert len(llm.finetune.files) == 2
    uploaded = llm.finetune.contents[job["training_file"]].decode()
    assert uploaded == train.read_text(encoding="utf-8")
    created = [b for m, p, b in llm.finetune.requests if p.endswith("/fine_tuning/jobs")]
    assert created[-1]["hyperparameters"] == {"n_epochs": 2}
    assert created[-1]["validation_file"] == job["validation_file"]
    assert jobs.job_status(llm_settings, job["id"])["status"] == "running"
    done = jobs.job_status(llm_settings, job["id"])
    assert done["status"] == "succeeded" and done["done"]
    assert done["fine_tuned_model"].startswith("ft:gpt-4o-mini:org:notes:")
    assert done["epochs"] == 2 and done["trained_tokens"] > 0
    events = jobs.job_events(llm_settings, job["id"])
    assert events[0]["message"] == "The job has successfully completed"  # newest first
    assert len(events) == 3
    with pytest.raises(jobs.ServiceError, match="has already succeeded"):
        jobs.cancel_job(llm_settings, job["id"])


def test_failed_and_cancelled_jobs_and_the_list(llm_settings, llm, tmp_path):
    train = training_file(tmp_path)
    llm.finetune.script("fail", "cancel")
    failing = jobs.start_job(llm_settings, train, "gpt-4o-mini")
    dropped = jobs.start_job(llm_settings, train, "gpt-4o-mini")
    by_hand = jobs.start_job(llm_settings, train, "gpt-4o-mini")
    for _ in range(2):
        failed = jobs.job_status(llm_settings, failing["id"])
        gone = jobs.job_status(llm_settings, dropped["id"])
    assert failed["status"] == "failed" and "training file was rejected" in failed["error"]
    assert failed["fine_tuned_model"] is None
    assert gone["status"] == "cancelled"
    assert jobs.cancel_job(llm_settings, by_hand["id"])["status"] == "cancelled"
    listed = jobs.list_jobs(llm_settings, limit=10)
    assert {j["id"] for j in listed} == {failing["id"], dropped["id"], by_hand["id"]}
    with pytest.raises(jobs.ServiceError, match="HTTP 404"):
        jobs.job_status(llm_settings, "ftjob-nope")
    with pytest.raises(FinetuneError, match="invalid job id"):
        jobs.job_status(llm_settings, "../../etc")


def test_an_invalid_file_is_refused_before_anything_is_uploaded(llm_settings, llm, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "only a question"}]}\n')
    with pytest.raises(FinetuneError, match="line 1: the last message must be the assistant"):
        jobs.start_job(llm_settings, bad, "gpt-4o-mini")
    assert llm.finetune.files == {} and llm.finetune.jobs == {}


def test_azure_openai_uses_the_same_calls(settings, llm, tmp_path):
    key = SecretStr("k-123")  # model_copy does not validate: the field's own type
    azure = settings.model_copy(update={"llm_azure_endpoint": llm.root, "llm_api_key": key})
    job = jobs.start_job(azure, training_file(tmp_path), "gpt-4o-mini")
    assert jobs.job_status(azure, job["id"])["status"] == "running"
    paths = [p for _, p, _ in llm.finetune.requests]
    assert paths and all(p.startswith("/openai/") and "api-version=" in p for p in paths)


def test_the_cli_starts_and_follows_a_job(llm_settings, llm, tmp_path, monkeypatch):
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    cli = CliRunner()
    train = training_file(tmp_path)
    started = cli.invoke(finetune_app, ["start", "--file", str(train), "--base-model",
                                        "gpt-4o-mini", "--suffix", "notes", "--json"])  # fmt: skip
    assert started.exit_code == 0, started.output
    job_id = json.loads(started.output)["id"]
    assert cli.invoke(finetune_app, ["status", job_id]).output.startswith(f"{job_id}: running")
    done = cli.invoke(finetune_app, ["status", job_id])
    assert "Fine-tuned model: ft:gpt-4o-mini:org:notes:" in done.output
    assert "successfully completed" in cli.invoke(finetune_app, ["events", job_id]).output
    assert job_id in cli.invoke(finetune_app, ["list"]).output
    refused = cli.invoke(finetune_app, ["cancel", job_id])
    assert refused.exit_code == 2 and "already succeeded" in refused.output


def test_use_switches_a_users_skill_to_the_model_and_revert_switches_back(llm_settings, llm):
    with Workspace(llm_settings) as ws:
        runner = SkillRunner(ws)

        def model_sent(user: str) -> str:
            runner.run(user, "summarise", TEXT, engine="llm", retrieval=False)
            return llm.requests[-1].json["model"]

        assert model_sent("anna") == "gpt-4o-mini"
        stored = use_model(runner.skills, "anna", "summarise", FT)
        assert stored.source == "personal" and stored.version == 2  # forked, then switched
        assert model_sent("anna") == FT
        assert model_sent("bob") == "gpt-4o-mini"  # another user's skill is untouched
        history = runner.skills.history("anna", "summarise")
        assert history[0].message == f"fine-tuned model {FT}" and history[0].model == FT
        assert runner.runs.list("anna", limit=1)[0].messages[0]["role"] == "system"

        runner.skills.revert("anna", "summarise", 1)  # `copilot skills revert`
        assert model_sent("anna") == "gpt-4o-mini"


def test_an_admin_override_reaches_every_user_whose_skill_names_no_model(llm_settings, llm):
    with Workspace(llm_settings) as ws:
        runner = SkillRunner(ws)
        engine = ws.state.engine
        use_model(runner.skills, "anna", "summarise", "ft:gpt-4o-mini:org:anna:000009")
        use_for_all(engine, "summarise", FT, "admin")
        assert skill_model(engine, "summarise") == FT

        runner.run("bob", "summarise", TEXT, engine="llm", retrieval=False)
        assert llm.requests[-1].json["model"] == FT
        runner.run("anna", "summarise", TEXT, engine="llm", retrieval=False)
        assert llm.requests[-1].json["model"] == "ft:gpt-4o-mini:org:anna:000009"  # hers wins

        use_for_all(engine, "summarise", None, "admin")
        runner.run("bob", "summarise", TEXT, engine="llm", retrieval=False)
        assert llm.requests[-1].json["model"] == "gpt-4o-mini"


def test_compare_runs_the_samples_on_both_models(llm_settings, llm, tmp_path, monkeypatch):
    llm.responder = lambda body: Reply.text(
        f"answer from {body['model']}", prompt_tokens=100, completion_tokens=10,
        model=body["model"],  # a fine-tuned model answers under its own name
    )  # fmt: skip
    with Workspace(llm_settings) as ws:
        runner = SkillRunner(ws)
        runner.skills.fork("anna", "summarise")
        runner.skills.add_sample("anna", "summarise", "launch", TEXT)
        rows = compare_models(runner, "anna", "summarise", ["gpt-4o-mini", FT])
    assert [r["sample"] for r in rows] == ["template", "launch"]  # the template's own, and hers
    base, tuned = rows[1]["outputs"]["gpt-4o-mini"], rows[1]["outputs"][FT]
    assert base["text"] == "answer from gpt-4o-mini" and tuned["text"] == f"answer from {FT}"
    assert base["prompt_tokens"] == 100 and base["cost_usd"] == pytest.approx(0.000021)
    assert tuned["cost_usd"] == pytest.approx(0.000021)
    assert tuned["priced_as"].startswith("gpt-4o-mini (base price")
    assert runner.runs.list("anna", limit=5) == []  # comparing records nothing

    monkeypatch.setenv("COPILOT_HOME", str(llm_settings.home))
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    samples = tmp_path / "samples.json"
    samples.write_text(json.dumps([TEXT]), encoding="utf-8")
    shown = CliRunner().invoke(finetune_app, ["compare", "--skill", "summarise", "--user", "anna",
                                              "--model", "gpt-4o-mini", "--model", FT,
                                              "--inputs", str(samples)],
                                       env={"COLUMNS": "250"})  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert "answer from gpt-4o-mini" in shown.output and f"answer from {FT}" in shown.output
    assert "100+10 tokens" in shown.output


def test_cli_use_for_a_user_and_for_all_users_needs_an_admin(llm_settings, llm, monkeypatch):
    monkeypatch.setenv("COPILOT_HOME", str(llm_settings.home))
    cli = CliRunner()
    done = cli.invoke(finetune_app, ["use", "--skill", "summarise", "--model", FT, "-u", "anna"])
    assert done.exit_code == 0 and "v2 now runs on" in done.output and "revert" in done.output
    refused = cli.invoke(finetune_app, ["use", "--skill", "summarise", "--model", FT,
                                        "--all-users", "--admin", "anna"])  # fmt: skip
    assert refused.exit_code == 2 and "COPILOT_ADMINS" in refused.output
    bad = cli.invoke(finetune_app, ["use", "--skill", "summarise", "--model", "a b", "-u", "x"])
    assert bad.exit_code == 2 and "invalid model name" in bad.output


def test_use_by_job_waits_for_success(llm_settings, llm, tmp_path, monkeypatch):
    """`use --job` takes the model from the job, and only once the job has succeeded."""
    monkeypatch.setenv("COPILOT_HOME", str(llm_settings.home))
    monkeypatch.setenv("COPILOT_LLM_BASE_URL", llm.base_url)
    job = jobs.start_job(llm_settings, training_file(tmp_path), "gpt-4o-mini", suffix="notes")
    cli = CliRunner()
    args = ["use", "--skill", "summarise", "--job", job["id"], "-u", "anna"]
    early = cli.invoke(finetune_app, args)  # the scripted job is running on this read
    assert early.exit_code == 2 and "running" in early.output
    done = cli.invoke(finetune_app, args)  # and has succeeded on the next
    assert done.exit_code == 0, done.output
    assert "now runs on ft:gpt-4o-mini:org:notes:" in done.output

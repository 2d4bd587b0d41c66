"""Building a fine-tuning set from approved runs: consent, edits, dedupe, split, privacy,
validation and cost. Runs are recorded straight into the RunStore, as the runner would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.config import Settings
from copilot.db.engine import open_engine
from copilot.finetune import consent
from copilot.finetune.dataset import (
    Example,
    build_dataset,
    dedupe,
    diversity,
    split,
    validation_path,
    write_dataset,
)
from copilot.finetune.privacy import Pseudonymiser, dataset_policy
from copilot.finetune.validate import (
    FinetuneError,
    Validation,
    cost_summary,
    estimate_cost,
    validate_file,
)
from copilot.skills.history import RunRecord, RunStore

SYSTEM = "You write short summaries for busy office workers."
TOPICS = [
    "The board approved the Atlas migration budget of 40,000 EUR for the third quarter.",
    "Marketing wants the spring campaign moved to April because the printer is late.",
    "The new hire in finance starts Monday and needs a laptop and a badge.",
    "Customer Fabrikam complained about invoice errors in the March statement.",
    "The office on the fourth floor will be closed for painting next week.",
    "Legal asks everyone to finish the data protection training by Friday.",
    "The supplier raised prices for paper and toner by eight percent.",
    "Our team offsite moves from Berlin to Hamburg due to a hotel overbooking.",
    "Quarterly sales grew in the north region but fell in the south region.",
    "IT will replace the VPN client on all laptops during the weekend window.",
    "The cafeteria adds a vegetarian menu every Wednesday starting in May.",
    "Security found an unlocked server room door and asks for more caution.",
    "Product review of the mobile app shows login problems on older phones.",
    "HR announced new parental leave rules that apply from next January.",
]


@pytest.fixture
def runs(settings: Settings) -> RunStore:
    return RunStore(open_engine(settings.state_url))


def record(
    runs: RunStore,
    user: str,
    text: str,
    output: str,
    *,
    rating: int | None = 1,
    edited: str | None = None,
    skill: str = "summarise",
    extra: list[dict[str, str]] | None = None,
) -> str:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    run = RunRecord(
        user=user, skill_id=skill, skill_version="builtin", engine="llm", model="gpt-4o-mini",
        inputs={"text": text}, inputs_hash="", messages=messages + (extra or []), output=output,
        data=None, citations=[], chunk_ids=[], prompt_tokens=50, completion_tokens=20,
        cost_usd=None, latency_ms=10.0, status="ok",
    )  # fmt: skip
    run_id = runs.record(run)
    if rating is not None or edited is not None:
        runs.feedback(user, run_id, rating=rating, edited_text=edited)
    return run_id


def build(runs: RunStore, settings: Settings, **kwargs: object):
    return build_dataset(runs, "summarise", policy=dataset_policy(settings), settings=settings,
                         **kwargs)  # type: ignore[arg-type]  # fmt: skip


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_approved_runs_become_chat_examples_with_the_users_edits(runs, settings, tmp_path):
    consent.grant(runs.engine, "anna")
    for i, text in enumerate(TOPICS[:12]):
        edited = "- Budget approved: 40,000 EUR for Q3." if i == 0 else None
        extra = [{"role": "assistant", "content": "stale"}] if i == 1 else None
        record(runs, "anna", text, f"Summary {i}: {text[:30]}", edited=edited, extra=extra)
    record(runs, "anna", TOPICS[12], "A bad answer", rating=-1)  # thumbs down: left out
    record(runs, "anna", TOPICS[13], "Not rated", rating=None)  # never rated: left out

    built = build(runs, settings, user="anna", base_model="gpt-4o-mini")
    paths = write_dataset(built, tmp_path / "summarise.jsonl")

    assert built.report["runs_approved"] == 12 and built.report["examples"] == 12
    examples = [ex for p in paths for ex in lines_of(p)]
    assert len(examples) == 12
    for ex in examples:
        assert [m["role"] for m in ex["messages"]] == ["system", "user", "assistant"]
        assert ex["messages"][0]["content"] == SYSTEM
    by_input = {ex["messages"][1]["content"]: ex["messages"][2]["content"] for ex in examples}
    assert by_input[TOPICS[0]] == "- Budget approved: 40,000 EUR for Q3."  # the edit wins
    assert by_input[TOPICS[1]].startswith("Summary 1:")  # the stale assistant turn dropped
    assert built.report["cost"]["base_model"] == "gpt-4o-mini"
    assert built.report["cost"]["cost_usd"] > 0
    assert validate_file(paths[0]).ok


def test_fewer_than_ten_examples_are_refused(runs, settings, tmp_path):
    consent.grant(runs.engine, "anna")
    for text in TOPICS[:9]:
        record(runs, "anna", text, "ok")
    built = build(runs, settings, user="anna")
    assert built.report["train"] == 9
    assert any("at least 10" in w for w in built.report["warnings"])
    with pytest.raises(FinetuneError, match=r"only 9 usable.*at least 10.*50-100 recommended"):
        write_dataset(built, tmp_path / "small.jsonl")
    assert not (tmp_path / "small.jsonl").exists()


def test_near_identical_inputs_are_one_example(runs, settings):
    consent.grant(runs.engine, "anna")
    for text in TOPICS[:12]:
        record(runs, "anna", text, "ok")
    base = TOPICS[0]
    variants = [base.upper(), base + "  ", base.replace("third", "3rd"), base + " Thanks!"]
    for v in variants:
        record(runs, "anna", v, "ok")

    built = build(runs, settings, user="anna")

    assert built.report["duplicates_removed"] == 4
    assert built.report["examples"] == 12
    assert built.report["largest_duplicate_cluster_share"] == round(5 / 16, 4)


def test_dedupe_keeps_different_inputs_and_the_first_of_a_cluster():
    def ex(text: str, n: int) -> Example:
        e = Example([{"role": "user", "content": text}], "anna", f"r{n}", text=text)
        e.key = str(n)
        return e

    items = [ex("alpha beta gamma delta epsilon", 1), ex("zeta eta theta iota kappa", 2),
             ex("alpha beta gamma delta epsilon zeta", 3)]  # fmt: skip
    kept, removed, largest = dedupe(items)
    assert [e.run_id for e in kept] == ["r1", "r2"] and removed == 1
    assert largest == round(2 / 3, 4)


def test_split_is_deterministic_and_stable_when_runs_are_added():
    def ex(n: int) -> Example:
        e = Example([{"role": "user", "content": f"input {n}"}], "anna", f"r{n}", f"input {n}")
        import hashlib

        e.key = hashlib.sha256(f"input {n}".encode()).hexdigest()
        return e

    first = [ex(n) for n in range(60)]
    train, val = split(first)
    _, again_val = split(list(reversed(first)))
    assert {e.run_id for e in val} == {e.run_id for e in again_val}
    assert 1 <= len(val) <= 15 and len(train) + len(val) == 60
    _, more_val = split(first + [ex(n) for n in range(60, 200)])
    assert {e.run_id for e in val} <= {e.run_id for e in more_val}
    assert 0.04 < len(more_val) / 200 < 0.16  # about 10 %
    small_train, small_val = split(first[:10])  # 10 examples: all of them train
    assert len(small_train) == 10 and small_val == []


def test_only_opted_in_users_contribute(runs, settings):
    consent.grant(runs.engine, "anna")
    for text in TOPICS[:7]:
        record(runs, "anna", text, "anna's summary")
    for text in TOPICS[7:]:
        record(runs, "bob", text, "bob's summary")

    everyone = build(runs, settings, all_users_with_consent=True)
    assert everyone.report["examples_per_user"] == {"anna": 7}
    with pytest.raises(FinetuneError, match="'bob' has not opted in"):
        build(runs, settings, user="bob")
    with pytest.raises(FinetuneError, match="choose one"):
        build(runs, settings)

    consent.grant(runs.engine, "bob")
    assert build(runs, settings, all_users_with_consent=True).report["users"] == 2
    assert consent.revoke(runs.engine, "anna") and not consent.revoke(runs.engine, "anna")
    after = build(runs, settings, all_users_with_consent=True)
    assert after.report["examples_per_user"] == {"bob": 7}


def test_personal_data_is_redacted_and_what_remains_is_reported_by_line(runs, settings, tmp_path):
    consent.grant(runs.engine, "anna")
    for text in TOPICS[:10]:
        record(runs, "anna", text, "ok")
    record(runs, "anna", "Call Priya on +49 30 1234567 or mail priya@example.com.",
           "Reply to priya@example.com, card 4111 1111 1111 1111 was charged.")  # fmt: skip
    record(runs, "anna", "Write to anna (at) example (dot) org about the card 4111.1111.1111.1111",
           "Done.")  # fmt: skip

    built = build(runs, settings, user="anna")
    paths = write_dataset(built, tmp_path / "private.jsonl")

    privacy = built.report["privacy"]
    assert privacy["redacted"] == {"card": 1, "email": 1, "phone": 1}
    assert privacy["examples_redacted"] == 1
    text = "\n".join(p.read_text(encoding="utf-8") for p in paths)
    assert "priya@example.com" not in text and "1234567" not in text
    assert "4111 1111 1111 1111" not in text
    assert "[EMAIL_1]" in text and "[PHONE_1]" in text
    # The obfuscated address and the dotted card number slip past the redactor: reported.
    kinds = sorted(h.kind for _, h in built.hits)
    assert kinds == ["card", "email"]
    for name, hit in built.hits:
        path = paths[0] if name == "train" else validation_path(paths[0])
        line = path.read_text(encoding="utf-8").splitlines()[hit.line - 1]
        assert "(at) example" in line and "•" in hit.masked and "4111.1111" not in hit.masked
    assert any("possible e-mail" in w for w in built.report["warnings"])


def test_pseudonyms_are_consistent_within_a_dataset(runs, settings, tmp_path):
    consent.grant(runs.engine, "anna")
    for text in TOPICS[:10]:
        record(runs, "anna", text, "ok")
    record(runs, "anna", "Anna Schmidt met Bob Jones about the Atlas budget.",
           "Anna and Bob Jones agreed; Anna Schmidt will write it up.")  # fmt: skip
    record(runs, "anna", "Bob Jones asked anna schmidt for the minutes.", "Bob Jones got them.")
    names = Pseudonymiser(["Anna Schmidt", "Bob Jones", "Anna"])

    built = build(runs, settings, user="anna", pseudonyms=names)
    text = "\n".join(e.line() for e in built.train + built.validation)

    anna, bob = names.mapping["anna schmidt"], names.mapping["bob jones"]
    assert anna != bob and "Schmidt" not in text and "Bob Jones" not in text
    assert text.count(anna) == 3 and text.count(bob) == 4
    assert names.mapping["anna"] == anna.split()[0]  # "Anna" alone is the same person
    assert Pseudonymiser(["Bob Jones", "Anna Schmidt", "Anna"]).mapping == names.mapping
    assert built.report["privacy"]["pseudonyms_replaced"] == 8


def test_diversity_tells_varied_from_repetitive_inputs(settings):
    from copilot.index.embed import get_embedder

    embedder = get_embedder(settings)
    varied = diversity(TOPICS, embedder)
    repeated = ["Please summarise the weekly status meeting notes."] * 8
    same = diversity([*repeated, "Please summarise the weekly status meeting notes!"], embedder)
    assert varied["distinct_2"] > 0.8 > same["distinct_2"]
    assert varied["mean_pairwise_distance"] > 0.6
    assert same["mean_pairwise_distance"] < 0.05


BAD_LINES = [
    {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                  {"role": "assistant", "content": "a"}]},  # 1 ok
    {"messages": [{"role": "user", "content": "q"}]},  # 2 no assistant at the end
    {"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]},  # 3
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]},
    {"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "system", "content": "s"},
                  {"role": "assistant", "content": "a"}]},  # 6
    {"prompt": "old format", "completion": "x"},  # 7
]  # fmt: skip


def test_validation_names_each_bad_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [json.dumps(x) for x in BAD_LINES] + ["{not json", ""]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    long = {"messages": [{"role": "user", "content": "word " * 300},
                         {"role": "assistant", "content": "ok"}]}  # fmt: skip
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(long) + "\n")

    result = validate_file(path, max_tokens=200)

    by_line: dict[int, str] = {}
    for line, problem in result.errors:
        by_line.setdefault(line, problem)
    assert sorted(by_line) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert "last message must be the assistant" in by_line[2]
    assert "role 'tool'" in by_line[3]
    assert "no text content" in by_line[4]
    assert "expected user" in by_line[5]
    assert "system message may only come first" in by_line[6]
    assert "'messages' must be a non-empty list" in by_line[7]
    assert "not valid JSON" in by_line[8] and "blank line" in by_line[9]
    assert "over the 200-token limit" in by_line[10]
    assert not result.ok and result.tokens and result.tokens[0] < 30


def test_cost_is_tokens_times_epochs_times_price():
    assert estimate_cost(100_000, 0.008, 3) == 2.40
    assert Settings().finetune_prices["gpt-3.5-turbo"] == 0.008
    summary = cost_summary(Validation(examples=1, tokens=[100_000]), None, "gpt-3.5-turbo", 3)
    assert summary["cost_usd"] == 2.40 and summary["billed_tokens"] == 300_000
    dated = cost_summary(Validation(examples=1, tokens=[1000]), None, "gpt-4o-mini-2024-07-18", 1)
    assert dated["usd_per_1k_tokens"] == Settings().finetune_prices["gpt-4o-mini"]
    with pytest.raises(FinetuneError, match="no fine-tuning price for 'llama-3'"):
        cost_summary(Validation(examples=1, tokens=[1]), None, "llama-3", 1)


def test_the_cli_writes_a_dataset_that_validates(runs, settings, tmp_path):
    from copilot.cli.finetune import finetune_app

    cli = CliRunner()
    for text in TOPICS[:12]:
        record(runs, "anna", text, f"In short: {text[:40]}")
    out = tmp_path / "set" / "summarise.jsonl"
    args = ["dataset", "--skill", "summarise", "--user", "anna", "--out", str(out),
            "--no-embeddings", "--base-model", "gpt-4o-mini"]  # fmt: skip

    refused = cli.invoke(finetune_app, args)
    assert refused.exit_code == 2 and "has not opted in" in refused.output
    assert cli.invoke(finetune_app, ["consent", "--user", "anna"]).exit_code == 0
    made = cli.invoke(finetune_app, args)
    assert made.exit_code == 0, made.output
    assert "12 examples" in made.output and "Cost estimate" in made.output
    report = json.loads((tmp_path / "set" / "summarise.report.json").read_text())
    assert report["train"] + report["validation"] == 12

    checked = cli.invoke(finetune_app, ["validate", str(out), "--base-model", "gpt-3.5-turbo"])
    assert checked.exit_code == 0, checked.output
    assert "0 errors" in checked.output and "Cost estimate" in checked.output

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\n', encoding="utf-8")
    failed = cli.invoke(finetune_app, ["validate", str(broken), "--base-model", "gpt-4o-mini"])
    assert failed.exit_code == 1 and "line 1: 'messages' must be a non-empty list" in failed.output

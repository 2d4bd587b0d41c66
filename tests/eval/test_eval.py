"""``copilot eval retrieval``: metrics, BEIR loading, the runner, the mail set generator."""

from __future__ import annotations

import email
import email.policy
import json
import math
import subprocess
import sys

import pytest

from copilot.eval.beir import CollectionError, load_beir
from copilot.eval.mailgen import SLOTS, generate
from copilot.eval.metrics import mrr_at, ndcg_at, percentile, recall_at
from copilot.eval.retrieval import (
    evaluate_beir,
    evaluate_mail_known_item,
    load_known_item,
    message_id_of,
)
from copilot.workspace import Workspace

DOCS = [
    ("d1", "Wind tunnel tests", "Lift and drag of a swept wing were measured in a wind tunnel."),
    ("d2", "Heat transfer", "Heat conduction in composite slabs with a contact resistance."),
    ("d3", "Boundary layers", "Laminar boundary layer separation on a flat plate at Mach 2."),
    ("d4", "Panel flutter", "Flutter of thin panels in supersonic flow, with experiments."),
    ("d5", "Rocket nozzles", "Thrust losses in conical rocket nozzles due to divergence."),
    ("d6", "", "Hypersonic flow over blunt bodies: shock standoff distance measured."),
]
QUERIES = [
    ("q1", "heat conduction through composite slabs", {"d2": 2}),
    ("q2", "flutter of panels at supersonic speed", {"d4": 2, "d3": 1}),
    ("q3", "shock standoff of blunt bodies in hypersonic flow", {"d6": 1}),
]


def write_beir(folder, queries=QUERIES, docs=DOCS):
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc_id, title, text in docs:
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id, text, _ in queries:
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    rows = ["query-id\tcorpus-id\tscore"]
    rows += [f"{q}\t{d}\t{g}" for q, _, rels in queries for d, g in rels.items()]
    (folder / "qrels" / "test.tsv").write_text("\n".join(rows) + "\n")
    return folder


def copilot(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "copilot.cli.app", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# ---- metrics -------------------------------------------------------------------------------


def test_metrics_on_hand_computed_rankings():
    relevant = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b", "x"], relevant) == pytest.approx(1.0)
    # b first, a second: (1/1 + 2/log2 3) / (2/1 + 1/log2 3)
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at(["b", "a"], relevant) == pytest.approx(expected)
    assert ndcg_at(["x", "y"], relevant) == 0.0
    assert mrr_at(["x", "y", "b"], relevant) == pytest.approx(1 / 3)
    assert mrr_at(["x"] * 10 + ["a"], relevant, 10) == 0.0  # found at rank 11: outside @10
    assert recall_at(["a", "x"], relevant) == 0.5
    assert recall_at(["a"], {}) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([], 95) == 0.0


# ---- loading and validation ----------------------------------------------------------------


def test_load_beir_keeps_only_judged_queries(tmp_path):
    folder = write_beir(tmp_path / "c", [*QUERIES, ("q4", "unjudged", {"d1": 0})])
    collection = load_beir(folder)
    assert len(collection.corpus) == 6
    assert set(collection.queries) == {"q1", "q2", "q3"}
    assert collection.qrels["q2"] == {"d4": 2, "d3": 1}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "corpus.jsonl").unlink(), r"corpus\.jsonl is missing"),
        (lambda f: (f / "qrels" / "test.tsv").unlink(), r"test\.tsv is missing"),
        (lambda f: _append(f / "corpus.jsonl", "{not json\n"), r"corpus\.jsonl:7: not valid JSON"),
        (lambda f: _append(f / "corpus.jsonl", '{"title": "x"}\n'), r"corpus\.jsonl:7: .*'_id'"),
        (lambda f: _append(f / "corpus.jsonl", '["a"]\n'), r"corpus\.jsonl:7: expected a JSON"),
        (lambda f: _append(f / "corpus.jsonl", '{"_id": "d1"}\n'), "duplicate document id"),
        (lambda f: (f / "corpus.jsonl").write_bytes(b"\xff\xfe\n"), r"corpus\.jsonl:1: not UTF-8"),
        (lambda f: (f / "corpus.jsonl").write_text(""), "holds no documents"),
        (lambda f: _append(f / "qrels" / "test.tsv", "q1\td1\n"), r"test\.tsv:6: expected 3"),
        (lambda f: _append(f / "qrels" / "test.tsv", "q1\td1\thigh\n"), "is not a number"),
        (lambda f: _append(f / "qrels" / "test.tsv", "q9\td1\t1\n"), "not in queries.jsonl"),
    ],
)
def test_bad_beir_folders_name_the_file_and_line(tmp_path, damage, message):
    folder = write_beir(tmp_path / "c")
    damage(folder)
    with pytest.raises(CollectionError, match=message):
        load_beir(folder)


def _append(path, text):
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)


def test_not_a_folder(tmp_path):
    with pytest.raises(CollectionError, match="not a folder"):
        load_beir(tmp_path / "nope")


# ---- the runner, through the command line and the library ----------------------------------


def test_eval_command_scores_a_tiny_beir_folder(cli_env, tmp_path):
    folder = write_beir(tmp_path / "tiny")
    result = copilot(cli_env, "eval", "retrieval", "--beir", str(folder), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) == {"bm25", "dense", "hybrid"}
    for mode in scores.values():
        assert {"ndcg@10", "mrr@10", "recall@100", "p50_ms", "p95_ms"} <= set(mode)
        assert 0 < mode["p50_ms"] <= mode["p95_ms"]
    # six documents: dense ranks them all; BM25 only those sharing a word with the query
    assert scores["dense"]["recall@100"] == scores["hybrid"]["recall@100"] == 1.0
    assert scores["bm25"]["mrr@10"] == 1.0  # each query shares rare words with its document
    assert scores["hybrid"]["mrr@10"] == 1.0
    # the user's own home is untouched: the collection went to a throwaway one
    assert not (tmp_path / "home" / "index").exists()


def test_eval_command_scores_hybrid_with_and_without_the_dense_legs_feedback(cli_env, tmp_path):
    folder = write_beir(tmp_path / "tiny")
    args = ("eval", "retrieval", "--beir", str(folder), "--mode", "hybrid,hybrid-no-feedback")
    result = copilot(cli_env, *args, "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert set(scores) == {"hybrid", "hybrid-no-feedback"}
    assert scores["hybrid"]["mrr@10"] == scores["hybrid-no-feedback"]["mrr@10"] == 1.0
    # COPILOT_SEARCH_FEEDBACK=0 turns it off: hybrid is then the baseline to the last digit
    off = copilot(cli_env | {"COPILOT_SEARCH_FEEDBACK": "0"}, *args, "--json")
    assert off.returncode == 0, off.stderr
    plain = json.loads(off.stdout)
    assert plain["hybrid"]["ndcg@10"] == plain["hybrid-no-feedback"]["ndcg@10"]


def test_the_feedback_setting_reaches_the_store(settings):
    with Workspace(settings) as ws:
        assert ws.store.feedback == 3  # the default
    with Workspace(settings.model_copy(update={"search_feedback": 0})) as ws:
        assert ws.store.feedback == 0


def test_eval_command_refuses_a_broken_folder_with_a_clear_message(cli_env, tmp_path):
    folder = write_beir(tmp_path / "tiny")
    _append(folder / "queries.jsonl", "{oops\n")
    result = copilot(cli_env, "eval", "retrieval", "--beir", str(folder), "--mode", "bm25")
    assert result.returncode == 2
    assert "queries.jsonl:4: not valid JSON" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    result = copilot(cli_env, "eval", "retrieval", "--beir", str(folder), "--mode", "fuzzy")
    assert result.returncode == 2 and "Unknown mode" in result.stderr


def test_hostile_queries_are_scored_not_crashed_on(settings, tmp_path):
    hostile = [
        ("e1", "   ", {"d1": 1}),  # whitespace only: unsearchable, scores 0
        ("e2", "?!…", {"d1": 1}),  # punctuation only
        ("e3", "flutter " * 1250, {"d4": 1}),  # 10,000 characters
        ("e4", "風洞試験 の 揚力", {"d1": 1}),  # non-Latin script
        ("e5", "heat\x00\x07 conduction\x1b[31m slabs", {"d2": 1}),  # control characters
    ]
    folder = write_beir(tmp_path / "c", QUERIES + hostile)
    scores = evaluate_beir(folder, ("bm25", "hybrid"), settings)
    assert scores["hybrid"].queries == 8
    assert scores["hybrid"].unsearchable == 2
    assert scores["bm25"].mrr10 >= 5 / 8  # q1-q3, e3 and e5 still find their document


# ---- mail known-item -----------------------------------------------------------------------


def test_mail_generator_is_deterministic_and_its_queries_point_at_real_messages(tmp_path):
    first = generate(tmp_path / "a", threads=6, seed=3)
    second = generate(tmp_path / "b", threads=6, seed=3)
    assert first == second and first[1] > 0
    for path in (tmp_path / "a").iterdir():
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes()
    queries, _ = load_known_item(tmp_path / "a")
    assert len(queries) == first[1]
    replies = [p for p in (tmp_path / "a").glob("*.eml") if b"In-Reply-To" in p.read_bytes()]
    assert replies and all(b"wrote:" in p.read_bytes() or b"Original" in p.read_bytes()
                           for p in replies)  # fmt: skip


def test_mail_known_item_through_the_mail_parser(settings, tmp_path):
    generate(tmp_path / "mail", threads=8, seed=1)
    scores = evaluate_mail_known_item(tmp_path / "mail", ("bm25", "hybrid"), settings)
    assert scores["bm25"].mrr10 > 0.5
    assert scores["hybrid"].mrr10 > 0.5


def test_messages_that_state_the_same_fact_count_as_right_answers(tmp_path):
    """A query names only some of its fact's values; another thread's message that states
    the fact with those values answers it as well, and is listed, graded below the one the
    query was written for."""
    generate(tmp_path / "mail", threads=90, seed=0)
    rows = [line.split("\t") for line in
            (tmp_path / "mail" / "queries.tsv").read_text().splitlines()[1:]]  # fmt: skip
    shared = [row for row in rows if row[2]]
    assert len(rows) == 204 and sum(1 for row in rows if not row[2]) == 73
    values = {v for vs in SLOTS.values() for v in vs if len(v) > 3}
    bodies = {message_id_of(p): _body(p) for p in (tmp_path / "mail").glob("*.eml")}
    for query, _wanted, also in shared[:40]:
        named = {v for v in values if v in query}
        for message_id in also.split():
            own = bodies[message_id].split("\n\n")[1]  # after the greeting: its own words
            assert all(v in own for v in named), (query, message_id)
    _, qrels = load_known_item(tmp_path / "mail")
    first = qrels["2"]
    assert sorted(first.values(), reverse=True)[0] == 2 and list(first.values()).count(2) == 1
    assert len(first) == 1 + len(rows[0][2].split())


def _body(path):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return message.get_content()


def test_eval_command_counts_every_message_that_states_the_fact(cli_env, tmp_path):
    folder = tmp_path / "mail"
    generate(folder, threads=12, seed=0)

    def mrr() -> float:
        args = ("eval", "retrieval", "--mail-known-item", str(folder), "--mode", "bm25", "--json")
        return json.loads(copilot(cli_env, *args).stdout)["bm25"]["mrr@10"]

    every = mrr()
    rows = (folder / "queries.tsv").read_text().splitlines()
    assert any(row.split("\t")[2] for row in rows[1:])  # some queries have more right answers
    (folder / "queries.tsv").write_text("\n".join(r.rsplit("\t", 1)[0] for r in rows) + "\n")
    assert every > mrr()  # scored against the one message only, as before


def test_known_item_queries_must_name_existing_messages(tmp_path):
    generate(tmp_path / "mail", threads=2, seed=0)
    _append(tmp_path / "mail" / "queries.tsv", "lost query\t<nobody@nowhere>\n")
    with pytest.raises(CollectionError, match=r"queries\.tsv:\d+: no \.eml file has"):
        load_known_item(tmp_path / "mail")
    real = message_id_of(next((tmp_path / "mail").glob("*.eml")))
    (tmp_path / "mail" / "queries.tsv").write_text(f"q\t{real}\t{real} <gone@nowhere>\n")
    with pytest.raises(CollectionError, match=r"queries\.tsv:1: no \.eml file has .*gone@"):
        load_known_item(tmp_path / "mail")
    (tmp_path / "mail" / "queries.tsv").unlink()
    with pytest.raises(CollectionError, match=r"queries\.tsv is missing"):
        load_known_item(tmp_path / "mail")

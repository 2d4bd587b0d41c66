"""Approved skill runs → a chat fine-tuning dataset: examples, dedupe, diversity, split.

An example is what the model saw and what the user approved: the run's recorded messages
(exactly as the skill rendered and sent them, so training matches what runs will send),
any trailing assistant turn dropped, and the final text appended as the assistant message
(the user's edited text when there is one: ``RunStore.approved`` already puts it in
``output``). Consecutive messages of one role are joined, so turns alternate.

Why dedupe near-identical inputs: fifty thumbs-up runs of "summarise today's stand-up"
teach one answer fifty times, and a model trained that way repeats it. Exact copies are
caught by a hash of the normalised last user turn, near copies by the Jaccard similarity
of their character 5-gram sets (``NEAR_DUPLICATE``; robust to a changed word in a short
input, where word n-grams are not). Long inputs are compared through a bottom-k sketch of
their shingle hashes (exact below ``SKETCH`` shingles), so memory stays bounded. The
newest run of each cluster is kept.

Why a hash split: the same example lands on the same side every time, and adding runs
later never moves an old example from training to validation.

Only users who opted in (``consent``) contribute, whether the dataset is one user's or
everyone's: their approved runs are read per user, so nobody else's text is even loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import Engine

from copilot.fileio import write_atomically
from copilot.finetune import consent
from copilot.finetune.privacy import Hit, Pseudonymiser, ScrubReport, scan_lines, scrub_messages
from copilot.finetune.validate import (
    DEFAULT_EPOCHS,
    FinetuneError,
    cost_summary,
    max_tokens_of,
    validate_lines,
)
from copilot.llm.redact import RedactionPolicy
from copilot.skills.history import RunRecord, RunStore

MIN_EXAMPLES = 10  # the service refuses fewer
RECOMMENDED = (50, 100)
MAX_RUNS = 5000  # per user read from the run store
NEAR_DUPLICATE = 0.8  # character-5-gram Jaccard at or above which two inputs are one
SKETCH = 256  # shingle hashes kept per input (the smallest ones)
CANDIDATES = 50  # most-overlapping earlier inputs compared with each input
COMMON = 200  # a shingle hash shared by this many inputs no longer finds candidates
VALIDATION_PER_MILLE = 100  # 10 %
MAX_EMBEDDED = 200  # inputs embedded for the diversity figure (about 5 s on 2 cores)
ROLES = ("system", "user", "assistant")
_WORD = re.compile(r"\w+")


@dataclass
class Example:
    messages: list[dict[str, str]]
    user: str
    run_id: str
    text: str = ""  # the last user turn, what dedupe, diversity and the split look at
    key: str = ""  # hash of the normalised last user turn

    def line(self) -> str:
        return json.dumps({"messages": self.messages}, ensure_ascii=False)


@dataclass
class Dataset:
    train: list[Example]
    validation: list[Example]
    report: dict[str, Any] = field(default_factory=dict)
    hits: list[tuple[str, Hit]] = field(default_factory=list)  # ("train"|"validation", hit)


# -- runs to examples ------------------------------------------------------------------------


def contributors(
    engine: Engine, *, user: str | None = None, all_users_with_consent: bool = False
) -> list[str]:
    """The users whose runs may be used; one user must have opted in too."""
    if (user is None) == (not all_users_with_consent):
        raise FinetuneError("choose one: --user ID, or --all-users-with-consent")
    opted = consent.consenting(engine)
    if user is not None:
        if user not in opted:
            raise FinetuneError(
                f"user {user!r} has not opted in to fine-tuning: they (or you, with their "
                f"agreement) run `copilot finetune consent --user {user}`"
            )
        return [user]
    return sorted(opted)


def example_from_run(run: RunRecord) -> list[dict[str, str]] | str:
    """The example's messages, or the reason the run cannot be one."""
    messages = [
        {"role": str(m.get("role")), "content": str(m.get("content"))} for m in run.messages
    ]
    while messages and messages[-1]["role"] == "assistant":
        messages.pop()
    final = run.output
    if run.edited_text is None and run.data is not None:
        final = json.dumps(run.data, ensure_ascii=False)  # what a JSON skill's model wrote
    if not final.strip():
        return "empty final text"
    merged: list[dict[str, str]] = []
    for m in [*messages, {"role": "assistant", "content": final}]:
        if m["role"] not in ROLES:
            return f"a message has role {m['role']!r}"
        if merged and merged[-1]["role"] == m["role"]:
            joined = merged[-1]["content"] + "\n\n" + m["content"]
            merged[-1] = {"role": m["role"], "content": joined}
        else:
            merged.append(dict(m))
    body = merged[1:] if merged[0]["role"] == "system" else merged
    if not body or body[0]["role"] != "user" or any(m["role"] == "system" for m in body):
        return "the messages do not start with a user turn after the system message"
    if any(not m["content"].strip() for m in merged):
        return "an empty message"
    return merged


def _normalised(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _sketch(text: str) -> frozenset[int]:
    """The SKETCH smallest crc32 hashes of the normalised text's character 5-grams."""
    norm = " ".join(_normalised(text))
    grams = {norm[i : i + 5] for i in range(max(1, len(norm) - 4))} if norm else set()
    hashes = sorted({zlib.crc32(g.encode("utf-8")) for g in grams})
    return frozenset(hashes[:SKETCH])


def _similarity(a: frozenset[int], b: frozenset[int], threshold: float = NEAR_DUPLICATE) -> float:
    """Jaccard estimated from two bottom-k sketches (exact when both are whole sets)."""
    both = len(a & b)
    if len(a) < SKETCH and len(b) < SKETCH:  # whole sets: the exact figure, at C speed
        return both / len(a | b)
    if both < threshold * SKETCH:  # the estimate below is at most both / SKETCH: too low
        return both / SKETCH
    union = sorted(a | b)[:SKETCH]
    return sum(1 for h in union if h in a and h in b) / len(union) if union else 0.0


def _finish(example: Example) -> Example:
    users = [m["content"] for m in example.messages if m["role"] == "user"]
    example.text = users[-1]
    example.key = hashlib.sha256(" ".join(_normalised(example.text)).encode()).hexdigest()
    return example


# -- dedupe, balance, diversity, split --------------------------------------------------------


def dedupe(
    examples: list[Example], threshold: float = NEAR_DUPLICATE
) -> tuple[list[Example], int, float]:
    """Keep the first of each cluster of near-identical inputs (the newest run, as given).

    Clusters link transitively (union-find): an input near any member joins the cluster,
    and an input near two clusters merges them, so a chain of small edits is one cluster
    whatever the order. Returns the kept examples, how many were removed, and the share of
    all examples in the largest cluster (1/n when every input differs).
    """
    parent = list(range(len(examples)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sketches: list[frozenset[int]] = []
    by_key: dict[str, int] = {}
    postings: dict[int, list[int]] = {}
    for n, ex in enumerate(examples):
        sketch = _sketch(ex.text)
        links = [by_key[ex.key]] if ex.key in by_key else []
        shared: Counter[int] = Counter()
        for h in sketch:
            posting = postings.get(h, ())
            if len(posting) < COMMON:  # " the " says nothing about which input is near
                shared.update(posting)
        links += [i for i, _ in shared.most_common(CANDIDATES)
                  if _similarity(sketch, sketches[i], threshold) >= threshold]  # fmt: skip
        for i in links:  # the smaller index (the newer run) stays the root
            a, b = sorted((root(i), root(n)))
            parent[b] = a
        sketches.append(sketch)
        by_key.setdefault(ex.key, n)
        for h in sketch:
            postings.setdefault(h, []).append(n)
    roots = [root(i) for i in range(len(examples))]
    kept = [ex for i, ex in enumerate(examples) if roots[i] == i]
    largest = max(Counter(roots).values()) / len(examples) if examples else 0.0
    return kept, len(examples) - len(kept), round(largest, 4)


def balance(examples: list[Example], max_user_share: float | None) -> tuple[list[Example], int]:
    """Cap any one user's share of the examples, when asked to (their newest are kept).

    A user over the share keeps x examples where x = share * (x + everyone else's), so the
    share holds in the result; with several users over a small share it holds approximately.
    """
    users = Counter(e.user for e in examples)
    if max_user_share is None or len(users) < 2:
        return examples, 0
    if not 0 < max_user_share < 1:
        raise FinetuneError("max user share is a fraction above 0 and below 1")
    caps = {}
    for u, n in users.items():
        others = len(examples) - n
        caps[u] = min(n, max(1, int(max_user_share * others / (1 - max_user_share))))
    taken: Counter[str] = Counter()
    out = []
    for e in examples:
        if taken[e.user] < caps[e.user]:
            taken[e.user] += 1
            out.append(e)
    return out, len(examples) - len(out)


def diversity(texts: Sequence[str], embedder: Any = None) -> dict[str, Any]:
    """How varied the inputs are: distinct-1/2 (unique n-grams over all n-grams) and, with an
    embedder, the mean pairwise cosine distance of their embeddings (0 = all the same)."""
    unigrams: Counter[str] = Counter()
    bigrams: Counter[str] = Counter()
    for t in texts:
        words = _normalised(t)
        unigrams.update(words)
        bigrams.update(" ".join(words[i : i + 2]) for i in range(len(words) - 1))
    out: dict[str, Any] = {
        "inputs": len(texts),
        "distinct_1": round(len(unigrams) / max(1, sum(unigrams.values())), 4),
        "distinct_2": round(len(bigrams) / max(1, sum(bigrams.values())), 4),
        "mean_pairwise_distance": None,
    }
    if embedder is not None and len(texts) >= 2:
        sample = list(texts)[:MAX_EMBEDDED]
        vectors = np.asarray(embedder.embed_documents(sample), dtype=np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
        n = len(vectors)
        total = float(np.linalg.norm(vectors.sum(axis=0)) ** 2)
        mean_cos = (total - n) / (n * (n - 1))
        out["mean_pairwise_distance"] = round(1.0 - mean_cos, 4)
    return out


def split(
    examples: list[Example], per_mille: int = VALIDATION_PER_MILLE
) -> tuple[list[Example], list[Example]]:
    """Training and validation by a hash of each input: deterministic and stable."""
    train = [e for e in examples if int(e.key[:8], 16) % 1000 >= per_mille]
    validation = [e for e in examples if int(e.key[:8], 16) % 1000 < per_mille]
    if len(train) < MIN_EXAMPLES:  # the service needs 10 to train on: all of them train
        return list(examples), []
    if not validation and per_mille and len(train) > MIN_EXAMPLES:
        first = min(train, key=lambda e: e.key)
        train.remove(first)
        validation = [first]
    return train, validation


# -- the whole thing ---------------------------------------------------------------------------


def build_dataset(
    runs: RunStore,
    skill_id: str,
    *,
    policy: RedactionPolicy,
    user: str | None = None,
    all_users_with_consent: bool = False,
    min_rating: int = 1,
    pseudonyms: Pseudonymiser | None = None,
    embedder: Any = None,
    max_user_share: float | None = None,
    settings: Any = None,
    base_model: str | None = None,
    epochs: int = DEFAULT_EPOCHS,
) -> Dataset:
    """Everything but writing: read, scrub, dedupe, balance, measure, split, validate, scan."""
    users = contributors(runs.engine, user=user, all_users_with_consent=all_users_with_consent)
    records: list[RunRecord] = []
    for u in users:
        records += runs.approved(skill_id, user=u, min_rating=min_rating, limit=MAX_RUNS)
    records.sort(key=lambda r: r.created_at, reverse=True)
    skipped: Counter[str] = Counter()
    scrub = ScrubReport()
    examples = []
    for run in records:
        messages = example_from_run(run)
        if isinstance(messages, str):
            skipped[messages] += 1
            continue
        messages = scrub_messages(messages, policy, scrub, pseudonyms)
        examples.append(_finish(Example(messages, run.user, run.id)))
    kept, removed, largest = dedupe(examples)
    kept, unbalanced = balance(kept, max_user_share)
    train, validation = split(kept)
    per_user = Counter(e.user for e in kept)
    report: dict[str, Any] = {
        "skill_id": skill_id,
        "min_rating": min_rating,
        "users": len(per_user),
        "examples_per_user": dict(sorted(per_user.items())),
        "largest_user_share": round(max(per_user.values()) / len(kept), 4) if kept else 0.0,
        "runs_approved": len(records),
        "skipped": dict(skipped),
        "duplicates_removed": removed,
        "largest_duplicate_cluster_share": largest,
        "dropped_for_balance": unbalanced,
        "examples": len(kept),
        "train": len(train),
        "validation": len(validation),
        "diversity": diversity([e.text for e in kept], embedder),
        "privacy": scrub.as_dict(),
        "warnings": [],
    }
    dataset = Dataset(train, validation, report)
    max_tokens = max_tokens_of(settings)
    checked = validate_lines([e.line() for e in train + validation], max_tokens=max_tokens)
    report["validation_check"] = checked.as_dict()
    if base_model is not None and checked.examples:
        train_check = validate_lines([e.line() for e in train], max_tokens=max_tokens)
        report["cost"] = cost_summary(train_check, settings, base_model, epochs)
    for name, part in (("train", train), ("validation", validation)):
        dataset.hits += [(name, h) for h in scan_lines(e.line() for e in part)]
    report["residual_hits"] = len(dataset.hits)
    report["warnings"] = _warnings(report)
    return dataset


def _warnings(report: dict[str, Any]) -> list[str]:
    out = []
    n = report["train"]
    if n < MIN_EXAMPLES:
        out.append(f"only {n} training examples: at least {MIN_EXAMPLES} are needed")
    elif n < RECOMMENDED[0]:
        out.append(f"{n} training examples: {RECOMMENDED[0]}-{RECOMMENDED[1]} are recommended")
    if report["largest_duplicate_cluster_share"] > 0.2:
        out.append("over 20% of the approved runs were one near-identical input")
    d = report["diversity"]
    if d["inputs"] >= 5 and d["distinct_2"] < 0.3:
        out.append(f"inputs repeat the same phrases (distinct-2 {d['distinct_2']})")
    distance = d.get("mean_pairwise_distance")
    if distance is not None and distance < 0.2:
        out.append(f"inputs are close in meaning (mean pairwise distance {distance})")
    if report["largest_user_share"] > 0.5 and report["users"] > 1:
        out.append("one user contributes over half of the examples (see --max-user-share)")
    if report["residual_hits"]:
        out.append(
            f"{report['residual_hits']} possible e-mail/phone/card numbers remain after "
            "redaction: look at the listed lines before uploading"
        )
    return out


def validation_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".jsonl") + ".validation.jsonl")


def write_dataset(dataset: Dataset, out: Path) -> list[Path]:
    """Write the training file to ``out`` and the validation file beside it; refuses fewer
    than MIN_EXAMPLES training examples. Files are written whole or not at all."""
    n = len(dataset.train)
    if n < MIN_EXAMPLES:
        raise FinetuneError(
            f"only {n} usable training examples for {dataset.report.get('skill_id')!r}: at "
            f"least {MIN_EXAMPLES} are needed ({RECOMMENDED[0]}-{RECOMMENDED[1]} recommended). "
            "Approve more runs (thumbs up, with edits where the answer needed them)"
        )
    paths = [out]
    _write_lines(out, [e.line() for e in dataset.train])
    if dataset.validation:
        paths.append(validation_path(out))
        _write_lines(paths[1], [e.line() for e in dataset.validation])
    else:
        validation_path(out).unlink(missing_ok=True)  # never leave a stale one beside it
    return paths


def _write_lines(path: Path, lines: list[str]) -> None:
    """JSONL, private (0600): redacted, but still the users' own words."""
    write_atomically(path, "".join(line + "\n" for line in lines))

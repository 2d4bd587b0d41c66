"""Load a BEIR-layout collection, checking every line, so a bad file fails with its name.

Layout (https://github.com/beir-cellar/beir): ``corpus.jsonl`` (``_id``, ``title``,
``text``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/test.tsv`` (``query-id``,
``corpus-id``, ``score``, with an optional header row). Only queries that have at least
one relevant document are evaluated, as BEIR does. A malformed line raises
``CollectionError`` naming the file and line: a silently skipped line would quietly change
the numbers a benchmark reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copilot.errors import CopilotError

MAX_LINE = 10_000_000  # one document of 10 MB is already far beyond any BEIR corpus


class CollectionError(CopilotError, ValueError):
    """A collection folder that cannot be evaluated; the message says which file and why."""

    kind = "bad_collection"
    status = 400
    title = "The collection cannot be evaluated"


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str


@dataclass(frozen=True)
class Collection:
    name: str
    corpus: dict[str, Doc]
    queries: dict[str, str]  # only the queries with judgements
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade


def load_beir(folder: Path, split: str = "test") -> Collection:
    """Read and validate ``folder``; raise ``CollectionError`` on anything unusable."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CollectionError(f"{folder} is not a folder")
    corpus: dict[str, Doc] = {}
    for where, row in _jsonl(folder / "corpus.jsonl"):
        doc_id = _id(row, where)
        if doc_id in corpus:
            raise CollectionError(f"{where}: duplicate document id {doc_id!r}")
        corpus[doc_id] = Doc(doc_id, _text(row, "title", where), _text(row, "text", where))
    if not corpus:
        raise CollectionError(f"{folder / 'corpus.jsonl'} holds no documents")
    queries: dict[str, str] = {}
    for where, row in _jsonl(folder / "queries.jsonl"):
        query_id = _id(row, where)
        if query_id in queries:
            raise CollectionError(f"{where}: duplicate query id {query_id!r}")
        queries[query_id] = _text(row, "text", where)
    qrels = _qrels(folder / "qrels" / f"{split}.tsv")
    unknown = sorted(set(qrels) - set(queries))
    if unknown:
        raise CollectionError(
            f"{folder / 'qrels' / f'{split}.tsv'} judges {len(unknown)} queries that are not "
            f"in queries.jsonl (first: {unknown[0]!r})"
        )
    judged = {q: rels for q, rels in qrels.items() if any(g > 0 for g in rels.values())}
    if not judged:
        raise CollectionError(f"{folder / 'qrels' / f'{split}.tsv'} has no relevant documents")
    return Collection(
        name=folder.name,
        corpus=corpus,
        queries={q: queries[q] for q in judged},
        qrels=judged,
    )


def _jsonl(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    if not path.is_file():
        raise CollectionError(f"{path} is missing")
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            where = f"{path}:{number}"
            if len(raw) > MAX_LINE:
                raise CollectionError(f"{where}: line longer than {MAX_LINE:,} bytes")
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise CollectionError(f"{where}: not UTF-8 ({exc.reason})") from None
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CollectionError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise CollectionError(f"{where}: expected a JSON object")
            yield where, row


def _id(row: dict[str, Any], where: str) -> str:
    value = row.get("_id")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise CollectionError(f"{where}: missing or empty '_id'")
    return value


def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise CollectionError(f"{where}: '{key}' must be a string")
    return value


def _qrels(path: Path) -> dict[str, dict[str, int]]:
    if not path.is_file():
        raise CollectionError(f"{path} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8", errors="strict") as handle:
        try:
            lines = list(enumerate(handle, 1))
        except UnicodeDecodeError as exc:
            raise CollectionError(f"{path}: not UTF-8 ({exc.reason})") from None
    for number, line in lines:
        fields = line.rstrip("\r\n").split("\t")
        if not line.strip():
            continue
        if number == 1 and fields[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue  # the header row
        if len(fields) != 3:
            raise CollectionError(
                f"{path}:{number}: expected 3 tab-separated fields (query-id, corpus-id, "
                f"score), found {len(fields)}"
            )
        query_id, doc_id, score = (f.strip() for f in fields)
        try:
            grade = int(float(score))
        except (ValueError, OverflowError):
            raise CollectionError(f"{path}:{number}: score {score!r} is not a number") from None
        if not query_id or not doc_id:
            raise CollectionError(f"{path}:{number}: empty query or document id")
        qrels.setdefault(query_id, {})[doc_id] = grade
    if not qrels:
        raise CollectionError(f"{path} holds no judgements")
    return qrels

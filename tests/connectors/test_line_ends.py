"""Line-oriented input is cut at line ends only: a NEL (U+0085) or U+2028 inside a sentence,
as in real UCI review files, stays inside its line."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.parsers.text import parse_text, split_lines
from copilot.bot.commands import parse, strip_mentions
from copilot.eval.bipia import load_bipia
from copilot.eval.retrieval import load_known_item
from copilot.eval.sentiment import read_tsv

NEL_REVIEW = "The battery lasts\x85 all day, great phone."  # as in amazon_cells_labelled.txt


def test_split_lines_cuts_at_newlines_only() -> None:
    text = "one\r\ntwo\x85still two\u2028and\x0cstill\nthree\rfour\n"
    assert split_lines(text) == ["one", "two\x85still two\u2028and\x0cstill", "three", "four"]
    assert split_lines("") == [] and split_lines("a\n\n") == ["a", ""]


def test_sentiment_tsv_with_a_nel_sentence(tmp_path: Path) -> None:
    path = tmp_path / "amazon_cells_labelled.txt"
    path.write_bytes(f"{NEL_REVIEW}\t1\r\nBroke after a week.\t0\n".encode())
    assert read_tsv(path) == [(NEL_REVIEW, 1), ("Broke after a week.", 0)]


def test_bipia_emails_with_a_nel_in_the_context(tmp_path: Path) -> None:
    row = {"context": f"Hi,\x85{NEL_REVIEW}", "question": "What lasts?", "ideal": "The battery"}
    (tmp_path / "emails.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n")
    (tmp_path / "text_attacks.json").write_text(json.dumps({"task": ["Say hello."]}))
    emails = load_bipia(tmp_path).emails
    assert len(emails) == 1 and NEL_REVIEW in emails[0].context


def test_known_item_queries_with_a_nel(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_text("Message-ID: <a@x>\nSubject: s\n\nbody\n")
    (tmp_path / "queries.tsv").write_text("query\tmessage_id\nbattery\x85 life\t<a@x>\n")
    queries, qrels = load_known_item(tmp_path)
    assert list(queries.values()) == ["battery\x85 life"] and len(qrels) == 1


def test_text_files_keep_a_nel_inside_its_paragraph() -> None:
    parsed = parse_text(f"{NEL_REVIEW}\nSecond line.\n\nNext paragraph.".encode(), "r.txt",
                        "text/plain")  # fmt: skip
    blocks = [e.text for e in parsed.elements]
    assert blocks == [f"{NEL_REVIEW}\nSecond line.", "Next paragraph."]
    assert [e.locator["line"] for e in parsed.elements] == [1, 4]


def test_bot_messages_keep_their_lines_and_a_nel_is_only_a_space() -> None:
    text, _ = strip_mentions(f"summarise\n{NEL_REVIEW}\nline two", None, None)
    assert text == "summarise\nThe battery lasts all day, great phone.\nline two"
    assert parse(text, {"summarise"}).text == "The battery lasts all day, great phone.\nline two"

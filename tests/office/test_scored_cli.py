"""`copilot run sentiment --file X.xlsx --column Review --out Y.xlsx` as a user types it,
on the local engine: the user's columns beside the scores, a Summary of real cells, noun
aspects only, and a short table in the terminal."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from copilot.cli.app import app
from copilot.office.xlsx_scored import format_aspects
from copilot.skills.engines.local.engine import describe_sentiment
from copilot.skills.sentiment_io import aggregate, result_from_json

REVIEWS = [
    (101, "Acme Ltd", "The battery is basically useless, it died after an hour."),
    (102, "Bolt GmbH", "Extremely fast delivery and the screen is gorgeous."),
    (103, "Acme Ltd", "My cat loves the box, but the charger broke due to poor quality."),
    (104, "Cole plc", "Customer service was extremely rude and the refund took weeks."),
    (105, "Bolt GmbH", "Great keyboard, terrible speakers."),
]
ADVERBS_AND_FRIENDS = {"basically", "extremely", "cat", "due", "really", "very"}


@pytest.fixture
def cli(home: Path) -> CliRunner:
    return CliRunner()


def reviews(path: Path) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Feedback"
    ws.append(["Id", "Customer", "Review", "Stars"])
    for (i, customer, text), stars in zip(REVIEWS, (1, 5, 2, 1, 3), strict=True):
        ws.append([i, customer, text, stars])
    wb.save(path)
    return path


def test_the_scored_workbook_keeps_the_users_columns_beside_the_scores(
    cli: CliRunner, tmp_path: Path
) -> None:
    src = reviews(tmp_path / "feedback.xlsx")
    before = src.read_bytes()
    out = tmp_path / "scored.xlsx"
    run = cli.invoke(app, ["run", "sentiment", "--user", "anna", "--engine", "local", "--file",
                           str(src), "--column", "Review", "--out", str(out)])  # fmt: skip
    assert run.exit_code == 0, run.output
    assert src.read_bytes() == before  # the user's file is never edited

    # The terminal: a short table, not JSON.
    assert "{" not in run.output and '"counts"' not in run.output
    lines = run.output.splitlines()
    assert lines[0].startswith("Scored 5 rows of Feedback!C")
    assert lines[1].split() == ["label", "texts", "share"]
    assert [ln.split()[0] for ln in lines[2:7]] == [
        "positive", "negative", "neutral", "mixed", "total"
    ]  # fmt: skip
    assert sum(int(ln.split()[1]) for ln in lines[2:6]) == 5

    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Feedback", "Scored", "Summary"]
    original = [[c.value for c in row] for row in book["Feedback"].iter_rows()]
    assert original[0] == ["Id", "Customer", "Review", "Stars"]  # the original, unchanged
    scored = [[c.value for c in row] for row in book["Scored"].iter_rows()]
    assert scored[0] == ["Id", "Customer", "Review", "Stars", "Label", "Score", "Confidence",
                         "Aspects"]  # fmt: skip
    for row, (i, customer, text) in zip(scored[1:], REVIEWS, strict=True):
        assert row[:3] == [i, customer, text]  # filter the scores by Id or Customer
        assert row[4] in {"positive", "negative", "neutral", "mixed"}
        assert isinstance(row[5], int | float) and isinstance(row[6], int | float)
    assert book["Scored"].auto_filter.ref == "A1:H6"

    aspects = [row[7] for row in scored[1:] if row[7]]
    names = {part.split(" (")[0] for cell in aspects for part in cell.split("; ")}
    assert names and not names & ADVERBS_AND_FRIENDS, names

    summary = book["Summary"]
    table = [[c.value for c in row] for row in summary.iter_rows(max_col=4)]
    assert table[0] == ["Label", "Count", "Share", "Mean score"]
    for row in table[1:6]:  # four labels and the total: numbers, not text
        assert isinstance(row[1], int) and isinstance(row[2], int | float)
    assert table[5][:2] == ["total", 5]
    assert table[7][:3] == ["Aspect", "Mentions", "Mean score"]
    top = [row for row in table[8:] if row[0] and isinstance(row[1], int)]
    assert top and not {row[0] for row in top} & ADVERBS_AND_FRIENDS
    info = {row[0]: row[1] for row in table if row[0] in {"skill", "engine", "source"}}
    assert info == {"skill": "sentiment", "engine": "local", "source": "feedback.xlsx"}
    texts = [c for row in table for c in row if isinstance(c, str)]
    assert not any("{" in t or "[" in t for t in texts)  # no Python dict text


def test_an_unknown_column_is_named_and_nothing_is_written(cli: CliRunner, tmp_path: Path) -> None:
    src = reviews(tmp_path / "feedback.xlsx")
    out = tmp_path / "scored.xlsx"
    run = cli.invoke(app, ["run", "sentiment", "--user", "anna", "--engine", "local", "--file",
                           str(src), "--column", "Comments", "--out", str(out)])  # fmt: skip
    assert run.exit_code != 0 and "Comments" in run.output
    assert not out.exists()


def test_an_aspect_without_a_score_shows_its_label_only() -> None:
    answer = {
        "label": "negative",
        "score": -0.5,
        "aspects": [
            {"aspect": "battery", "label": "negative", "evidence": "died in a day"},
            {"aspect": "screen", "label": "positive", "score": 0.8, "evidence": "sharp"},
            {"aspect": "price", "label": "neutral"},
        ],
    }
    result = result_from_json(answer, "The battery died in a day; the screen is sharp.")
    battery, screen, price = result.aspects
    assert battery.score is None and screen.score == 0.8 and price.score is None
    shown = describe_sentiment(result)
    assert "- battery: negative — “died in a day”" in shown and "+0.00" not in shown
    assert "- screen: positive (+0.80)" in shown and shown.endswith("\n- price: neutral")
    assert format_aspects(result.aspects) == (
        "battery (negative): died in a day; screen (+0.80): sharp; price (neutral)"
    )
    top = {a["aspect"]: a for a in aggregate([result])["aspects"]}
    assert top["battery"] == {"aspect": "battery", "mentions": 1, "mean_score": None}

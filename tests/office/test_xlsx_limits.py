"""The workbook scorer's limits: each refusal names the limit, and nothing is left behind."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from copilot.office import xlsx, xlsx_scored
from copilot.office.xlsx import WorkbookError, read_text_column
from copilot.office.xlsx_scored import write_scored_workbook
from copilot.skills.types import SentimentResult
from tests.hostile.workbooks import workbook


def book(path: Path, rows: list[list[object]]) -> Path:
    wb = openpyxl.Workbook()
    wb.active.title = "Reviews"
    for row in rows:
        wb.active.append(row)
    wb.save(path)
    return path


def scores(n: int) -> list[SentimentResult]:
    return [SentimentResult("neutral", 0.0, 0.5, []) for _ in range(n)]


def test_a_cell_over_excels_limit_is_named(tmp_path: Path) -> None:
    """Excel and openpyxl never write such a cell; a hand-made file can."""
    long = b'<row><c t="inlineStr"><is><t>' + b"x" * 40_000 + b"</t></is></c></row>"
    path = tmp_path / "long.xlsx"
    path.write_bytes(workbook([long], []))
    with pytest.raises(WorkbookError, match=r"row 2: 40,000 characters, over Excel's 32,767"):
        read_text_column(path, "Review")


def test_too_many_text_rows_are_named(tmp_path: Path) -> None:
    path = book(tmp_path / "rows.xlsx", [["Comment"], *([f"text {i}"] for i in range(5))])
    with pytest.raises(WorkbookError, match="more than 3 text rows, the limit"):
        read_text_column(path, "Comment", max_rows=3)


def test_the_copy_and_the_output_have_caps_named_in_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = book(
        tmp_path / "wide.xlsx", [["Comment", *range(20)], *(["t", *range(20)] for _ in range(9))]
    )
    column = read_text_column(path, "Comment")
    monkeypatch.setattr(xlsx_scored, "MAX_VISITED", 100)
    with pytest.raises(WorkbookError, match="span more than 100 cells"):
        write_scored_workbook(path, tmp_path / "out.xlsx", column, scores(len(column.rows)))
    monkeypatch.setattr(xlsx_scored, "MAX_VISITED", 10_000)
    monkeypatch.setattr(xlsx_scored, "MAX_WRITTEN", 150)
    with pytest.raises(WorkbookError, match="would hold more than 150 cells, the limit"):
        write_scored_workbook(path, tmp_path / "out.xlsx", column, scores(len(column.rows)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.xlsx"]  # nothing half-written


def test_rows_past_excels_last_row_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = book(tmp_path / "far.xlsx", [["Comment"], ["a"], [None], [None], [None], ["b"]])
    monkeypatch.setattr(xlsx, "MAX_ROW_NUMBER", 4)
    with pytest.raises(WorkbookError, match="rows past Excel's last row, 4"):
        read_text_column(path, "Comment")


def test_the_scored_copy_is_written_in_streaming_mode(tmp_path: Path) -> None:
    """Rows of the Scored sheet line up with the source rows, gaps included."""
    path = book(tmp_path / "gaps.xlsx", [["Comment"], ["good"], [None], [None], ["bad"]])
    column = read_text_column(path, "Comment")
    out = tmp_path / "out.xlsx"
    write_scored_workbook(path, out, column, scores(2))
    scored = openpyxl.load_workbook(out)["Scored"]
    assert [[c.value for c in row] for row in scored.iter_rows(max_col=3)] == [
        ["Comment", "Label", "Score"],
        ["good", "neutral", 0.0],
        [None, None, None],
        [None, None, None],
        ["bad", "neutral", 0.0],
    ]


def test_an_empty_column_gets_a_header_row_on_top(tmp_path: Path) -> None:
    """A column given by letter with nothing in it has no header row: the scores' headers
    still need a place, so the Scored sheet gets a header row naming the columns by letter,
    and its rows sit one lower."""
    path = book(tmp_path / "bare.xlsx", [[7, "good"], [8, None]])
    column = read_text_column(path, "C")
    assert (column.header_row, column.rows) == (0, [])
    out = tmp_path / "out.xlsx"
    write_scored_workbook(path, out, column, [], summary={"run": {"engine": "local"}})
    result = openpyxl.load_workbook(out)
    rows = [[c.value for c in row] for row in result["Scored"].iter_rows(max_col=4)]
    assert rows == [["A", "B", "C", "Label"], [7, "good", None, None], [8, None, None, None]]
    info = {r[0]: r[1] for r in result["Summary"].iter_rows(values_only=True) if r[0]}
    assert info["run engine"] == "local"  # a nested mapping as lines, never its repr
    assert info["total"] == 0
    with pytest.raises(ValueError, match="summary line 'rows': list is not one value"):
        write_scored_workbook(path, tmp_path / "x.xlsx", column, [], summary={"rows": []})
    assert not (tmp_path / "x.xlsx").exists()

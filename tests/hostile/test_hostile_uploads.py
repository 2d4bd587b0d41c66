"""Hostile workbooks sent to ``POST /v1/files/sentiment``.

Each file is built here as a small zip whose sheet XML expands to a million cells (rows
without ``r=`` attributes, the form openpyxl walks slowest) or millions of shared strings.
Before the fix, the first answered after two minutes and held a gigabyte of the server; now
each is refused by the sandboxed reader within seconds, naming the limit it broke, and the
server's memory barely moves.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import openpyxl
import pytest

from tests.hostile.conftest import ANNA, Server
from tests.hostile.workbooks import many_strings, million_cells

ATTACKS = {
    # The files: expanded parts this compressible are refused as zip bombs.
    "1M cells without r=": (million_cells, "looks like a zip bomb"),
    "4M shared strings": (lambda: many_strings(4_000_000), "looks like a zip bomb"),
    # Kept under the zip-bomb ratio check (parts under 16 MB): the cell counts refuse them.
    "1M small cells": (lambda: million_cells(b"<c><v>1</v></c>"), "more than 200,000 cells"),
    "900k shared strings": (lambda: many_strings(900_000), "more than 200,000 shared strings"),
}


def upload(server: Server, data: bytes, name: str = "reviews.xlsx") -> tuple[int, dict, float, int]:
    with server.watched() as measured:
        response = server.client.post(
            "/v1/files/sentiment",
            files={"file": (name, data)},
            data={"column": "Review", "engine": "local"},
            headers=ANNA,
        )
    seconds, growth = measured()
    body = response.json() if "json" in response.headers.get("content-type", "") else {}
    return response.status_code, body, seconds, growth


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_a_hostile_workbook_is_refused_fast_and_small(server: Server, attack: str) -> None:
    build, reason = ATTACKS[attack]
    data = build()
    assert len(data) < 400_000  # a small upload: the cost is all in the expansion
    status, body, seconds, growth = upload(server, data)
    print(f"{attack}: {status} after {seconds:.2f} s, server +{growth} MB")
    server.within_limits(seconds, growth, attack)
    assert status == 400, body
    assert reason in body["detail"] and "reviews.xlsx" in body["detail"]


def test_two_at_once(server: Server) -> None:
    """The issue's two parallel uploads held 3.2 GB for three minutes."""
    data = million_cells(b"<c><v>1</v></c>")
    with server.watched() as measured, ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: upload(server, data), range(2)))
    seconds, growth = measured()
    print(f"two at once: {[a[0] for a in answers]} after {seconds:.2f} s, server +{growth} MB")
    server.within_limits(seconds, growth, "two uploads at once")
    assert [a[0] for a in answers] == [400, 400]


def test_an_ordinary_workbook_is_still_scored(server: Server) -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "Reviews"
    wb.active.append(["Review", "Stars"])
    for text, stars in [("Wonderful staff and a great room.", 5), ("Dirty and overpriced.", 1)]:
        wb.active.append([text, stars])
    data = io.BytesIO()
    wb.save(data)
    with server.watched() as measured:
        response = server.client.post(
            "/v1/files/sentiment",
            files={"file": ("hotel reviews.xlsx", data.getvalue())},
            data={"column": "Review", "engine": "local"},
            headers=ANNA,
        )
    assert response.status_code == 200, response.text
    assert "reviews-scored.xlsx" in response.headers["content-disposition"]
    scored = openpyxl.load_workbook(io.BytesIO(response.content))
    assert scored.sheetnames == ["Reviews", "Scored", "Summary"]
    assert scored["Reviews"]["B2"].value == 5  # the user's sheet, copied
    assert scored["Scored"]["C2"].value in ("positive", "negative", "neutral", "mixed")
    seconds, _ = measured()  # the first run loads the local sentiment model: no RSS bound
    assert seconds < 60


def test_an_oversized_upload_is_refused_by_size(server: Server) -> None:
    status, body, seconds, growth = upload(server, b"PK\x03\x04" + b"\0" * (26 * 2**20))
    server.within_limits(seconds, growth, "a 26 MB upload")
    assert status == 413, body

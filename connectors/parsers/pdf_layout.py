"""Reading order and sentences for PDF page text.

Two things go wrong with a PDF's text as pypdf extracts it, and both cost retrieval:

* Lines are where the typesetter broke them, not where sentences end. The chunker splits
  at line breaks, so "we have assumed that we / can obtain enough basic patterns" became
  two pieces that could land in two chunks. ``reflow`` joins the lines of a sentence
  (and a word hyphenated across them) and keeps real breaks: after a sentence's end,
  before a list item, around a heading or a table row.
* Content-stream order is usually reading order (LaTeX, Word and InDesign write a column
  at a time), but some producers write a multi-column page line by line across its
  columns, which interleaves them ("of 2007, and who had more than • You do not have to
  file Schedule D credit, you must complete Form 6251." on a three-column IRS page).
  ``page_text`` notices that from the positions of pypdf's text runs (many jumps far to
  the right on one baseline) and only then reads the page again with pdfminer.six's
  layout analysis (``LAParams``: text boxes, then columns, in reading order). pypdf's own
  layout mode was tried first: it renders a grid of characters whose columns collide on
  such pages ("filing statusincome from farming"). pdfminer is slower than pypdf, which
  is why it reads only the pages that need it (5 of 1,100 pages of the shared PDFs).
"""

from __future__ import annotations

import io
import itertools
import logging
import re
from typing import Any

MIN_JUMPS = 3  # same-baseline jumps far to the right before a page is suspected

_BULLET = re.compile(r"^([•▪◦‣∙·*–—-]\s|\(?\d{1,3}[.)]\s|\(?[a-z][.)]\s)")
_SENTENCE_END = re.compile(r"[.!?:;]['\"’”)\]]*$")
_HYPHENATED = re.compile(r"[^\W\d_]-$")

logging.getLogger("pdfminer").setLevel(logging.ERROR)  # it warns about every oddity too


def page_text(page: Any, data: bytes, index: int) -> str:
    """Page ``index`` of the PDF ``data`` (read by pypdf as ``page``) in reading order; raw,
    not reflowed. See the module docstring for when pdfminer.six reads it instead."""
    runs: list[tuple[float, float]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: Any) -> None:
        if text.strip():
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            runs.append((float(x), float(y)))

    text: str = page.extract_text(visitor_text=visit)
    if interleaved(runs, float(page.mediabox.width)):
        return laid_out(data, index) or text
    return text


def interleaved(runs: list[tuple[float, float]], width: float) -> bool:
    """Whether the content stream jumps across the page on one baseline often enough to
    suspect columns written line by line (tables do too: for them layout analysis gives
    back about what pypdf did)."""
    if width <= 0:
        return False
    jumps = sum(
        1
        for (x1, y1), (x2, y2) in itertools.pairwise(runs)
        if abs(y1 - y2) < 1.0 and x2 - x1 > 0.35 * width
    )
    baselines = len({round(y) for _, y in runs})
    return jumps >= MIN_JUMPS and jumps >= 0.15 * baselines


def laid_out(data: bytes, index: int) -> str | None:
    """Page ``index`` as pdfminer.six's layout analysis reads it; None if it cannot."""
    from pdfminer.high_level import extract_text
    from pdfminer.layout import LAParams

    try:
        text = extract_text(io.BytesIO(data), page_numbers=[index], laparams=LAParams())
    except Exception:  # a file pypdf could read but pdfminer cannot: keep pypdf's text
        return None
    return text if text.strip() else None


def reflow(text: str) -> str:
    """Join the lines of each sentence: see the module docstring. Blank lines stay."""
    lines = text.split("\n")
    sizes = sorted(len(line) for line in lines if line.strip())
    typical = sizes[int(len(sizes) * 0.8)] if sizes else 0
    out: list[str] = []
    previous = ""  # the last line as it was, before it was joined to anything
    for line in lines:
        if out and previous and line and _continues(previous, line, typical):
            if _HYPHENATED.search(previous) and line[0].islower():
                out[-1] = out[-1][:-1] + line
            else:
                out[-1] = f"{out[-1]} {line}"
        else:
            out.append(line)
        previous = line
    return "\n".join(out)


def _continues(previous: str, line: str, typical: int) -> bool:
    """Whether ``line`` goes on with the sentence ``previous`` ends with."""
    if _BULLET.match(line) or _SENTENCE_END.search(previous):
        return False
    first = line[0]
    if first.islower():
        return True
    # A capital, a digit or a bracket: the same sentence only after a full-width line (a
    # short one is a heading, a table row or the end of a paragraph).
    last = previous[-1]
    full = len(previous) >= 0.7 * typical
    return full and (last.isalpha() or last in ",-") and (first.isupper() or first in "(\"'“‘")

"""Repair quoted-printable debris in mail text that was never decoded as such.

Mail exported by some tools (the Enron corpus is full of it) says it is plain 7-bit text
while its body is still quoted-printable: soft line breaks ("goa=" at a line end, or
"goa= ls" once the lines were joined), "=20" for a space, "=3D" for "=", "=E2=80=99"
for a curly apostrophe. Left in, the debris reaches snippets, summaries and sentiment
aspects ("very= =20 good"), and breaks words for search.

Why a guess, and a careful one: a part declared quoted-printable is decoded by the stdlib;
this is for the others, where a literal "=" is normal ("a=b", "?id=20&page=3", "x = 5").
So the text is repaired only on evidence that it is QP as a whole (``looks_like_qp``):
soft breaks, or several distinct escapes. Once it is, every "=" is debris, because real
QP writes a literal "=" as "=3D": that is what makes decoding the rest safe.
"""

from __future__ import annotations

import re

# Signs of QP. A soft break: "=" ending a line after a word character, or the same break
# once lines were joined with a space or two, inside a word ("goa= ls", "If=  there"). An escape
# that QP writers emit for text: a space or tab (not the start of a number: "x=200"), "=",
# a line end, a UTF-8 sequence, or a Windows-1252 quote, dash or no-break space.
_SOFT_RAW = re.compile(r"(?<=\w)=[ \t]*\r?\n(?=\S)")
_SOFT_JOINED = re.compile(r"(?<=[^\W\d_])= {1,2}(?=[a-z])|(?<=\w)= (?==[0-9A-F]{2})")
_TYPICAL = re.compile(
    r"=(?:20|09)(?![0-9])|=3D|=0[AD]|=[C-F][0-9A-F](?:=[89AB][0-9A-F])+|=(?:9[1-7]|85|A0)(?![0-9])"
)
_RUN = re.compile(r"(?:=[0-9A-F]{2})+")
_SOFT_ANY = re.compile(r"=(?:\r?\n|[ \t])")  # once the text is QP, every other "=" is soft
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_RUNS = re.compile(r"(?<=\S) {2,}")  # what decoded "=20"s leave behind
_EDGES = re.compile(r"^[ \t]+|[ \t]+$", re.MULTILINE)  # "=20" lines started or ended with
MAX_CHARS = 2_000_000


def looks_like_qp(text: str) -> bool:
    """Evidence that ``text`` is still quoted-printable: two soft breaks, a soft break and
    an escape, or three escapes of two kinds. One "x=20" or "a= b" alone is not enough."""
    soft = len(_SOFT_RAW.findall(text)) + len(_SOFT_JOINED.findall(text))
    escapes = [m.group(0) for m in _TYPICAL.finditer(text)]
    if soft + min(len(escapes), 1) >= 2:
        return True
    return len(escapes) >= 3 and len(set(escapes)) >= 2


def repair_qp(text: str, charset: str | None = None) -> str:
    """``text`` with its quoted-printable debris decoded, or unchanged without evidence.

    Escaped bytes are read as UTF-8 when they are, else in ``charset`` (the part's declared
    one), else Windows-1252."""
    if "=" not in text or len(text) > MAX_CHARS or not looks_like_qp(text):
        return text
    text = _SOFT_ANY.sub("", text)
    text = _RUN.sub(lambda run: _decode_run(run.group(0), charset), text)
    return _EDGES.sub("", _RUNS.sub(" ", _CONTROL.sub("", text)))


def _decode_run(run: str, charset: str | None) -> str:
    """A run of escapes as the bytes they stand for."""
    data = bytes.fromhex(run.replace("=", ""))
    for candidate in ("utf-8", charset):
        if candidate:
            try:
                return data.decode(candidate)
            except (LookupError, UnicodeDecodeError):
                pass
    return data.decode("cp1252", "replace")

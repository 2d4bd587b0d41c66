"""Files from users, read the one safe way: a workbook upload, ``copilot run --file``, a
Teams attachment.

Such a file is hostile until proven otherwise: a 120 KB workbook can unpack to a million
cells and hold the API process for two minutes and a gigabyte. So every one takes the path
synced files take (``ingest.sandbox``), and no parser ever runs in the caller's process:

1. its size is checked before a byte is read (``max_bytes``);
2. a worker process with an address-space limit and a deadline receives the bytes,
   runs ``connectors.parsers.safety.check_container`` (the file is what its name says; no
   zip bomb, DTD or encrypted part), then the parser, or the reader the caller names (the
   workbook scorer's column reader and writer);
3. for a workbook, the cells and shared strings are counted in its XML first
   (``check_spreadsheet``): openpyxl takes half a minute over a million cells;
4. only the result (text, a column of strings) comes back; a file that breaks a limit
   becomes an ``UntrustedFileError`` naming the file and the limit.

A worker is started per call (about half a second): these are single files a person sends,
and a fresh process holds nothing from the last one.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from connectors.parsers import XLSM, XLSX, media_type_for, parse
from connectors.types import Parsed, ParseError
from copilot.errors import CopilotError
from copilot.ingest.sandbox import ParsePool, ParseTask

T = TypeVar("T")

TIMEOUT_S = 30.0  # a file a person sends is read within this, or refused
MEMORY_MB = 1024  # the worker's address space: parsers, the file and its text
# Cells (and shared strings) in a whole workbook, counted in its XML before any parser runs:
# openpyxl reads ~30,000 cells a second here, so this keeps a read, and the copy the
# scorer writes, well inside the deadline (a sync's parser has its own, larger budget).
MAX_CELLS = 200_000
MAX_STYLE_RECORDS = 64_000  # Excel's own limit on cell formats
SPREADSHEETS = (XLSX, XLSM)
_PREFIX = rb"<(?:[A-Za-z_][\w.-]*:)?"
_COUNTED = {  # what is counted in which part, and its limit
    "cells": (re.compile(_PREFIX + rb"c[\s>/]"), MAX_CELLS),
    "shared strings": (re.compile(_PREFIX + rb"si[\s>/]"), MAX_CELLS),
    "cell formats": (re.compile(_PREFIX + rb"(?:xf|font|fill|border|numFmt|dxf)[\s>/]"),
                     MAX_STYLE_RECORDS),
}  # fmt: skip


class UntrustedFileError(CopilotError, ValueError):
    """A file from a user that cannot be read safely; the message names it and the limit."""

    kind = "bad_file"
    status = 400
    title = "I couldn't read the file"


class FileTooLarge(UntrustedFileError):
    kind = "file_too_large"
    status = 413


def read_untrusted(
    source: Path | bytes,
    name: str,
    *,
    max_bytes: int,
    media_type: str | None = None,
    timeout_s: float = TIMEOUT_S,
    memory_mb: int = MEMORY_MB,
) -> Parsed:
    """Parse a user's file (a path, or its bytes) into text elements, in the sandbox."""
    kind = media_type or media_type_for(name)
    reader = parse_spreadsheet if kind in SPREADSHEETS else None
    parsed: Parsed = run_untrusted(
        reader, source, name, max_bytes=max_bytes, media_type=media_type,
        timeout_s=timeout_s, memory_mb=memory_mb,
    )  # fmt: skip
    assert isinstance(parsed, Parsed)
    return parsed


def run_untrusted(
    reader: Callable[..., T] | None,
    source: Path | bytes,
    name: str,
    *args: Any,
    max_bytes: int,
    media_type: str | None = None,
    timeout_s: float = TIMEOUT_S,
    memory_mb: int = MEMORY_MB,
) -> T:
    """``reader(data, name, *args)`` on a user's file in the sandbox, after the container
    checks; ``reader`` None parses the file. ``reader`` must be a module-level function
    raising ``ParseError`` for a bad file, and ``args`` and its result must pickle."""
    kind = media_type or media_type_for(name)
    if kind is None:
        raise UntrustedFileError(f"{name}: this file type is not supported")
    data = read_limited(source, name, max_bytes)
    task = ParseTask(data, name, kind, reader, tuple(args))
    with ParsePool(workers=1, timeout_s=timeout_s, memory_mb=memory_mb) as pool:
        [(_, outcome)] = list(pool.run([(0, task)]))
    if outcome.error is not None:
        message = outcome.error.removesuffix("; skipped")  # the sync's wording
        raise UntrustedFileError(message if name in message else f"{name}: {message}")
    # What ``reader`` returned (Parsed with no reader), unpickled from the worker's answer.
    return cast(T, outcome.parsed)


def check_spreadsheet(data: bytes, name: str) -> None:
    """Refuse a workbook with more cells, shared strings or cell formats than the limits,
    counted in its XML (decompressed a MB at a time, stopping at the limit)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            totals = dict.fromkeys(_COUNTED, 0)
            for info in zf.infolist():
                what = _counted_in(info.filename.lower())
                if what is None:
                    continue
                pattern, limit = _COUNTED[what]
                totals[what] += _count(zf, info, pattern, limit - totals[what])
                if totals[what] > limit:
                    raise ParseError(
                        f"{name} has more than {limit:,} {what}, the limit for a workbook "
                        "sent to the copilot: keep only the sheets and columns it needs."
                    )
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ParseError(f"{name}: the workbook is damaged ({exc}).") from exc


def _counted_in(part: str) -> str | None:
    if part.startswith("xl/worksheets/") and part.endswith(".xml"):
        return "cells"
    if part == "xl/sharedstrings.xml":
        return "shared strings"
    if part == "xl/styles.xml":
        return "cell formats"
    return None


def _count(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, pattern: re.Pattern[bytes], left: int
) -> int:
    """Matches of ``pattern`` in a part, stopping once there are more than ``left``."""
    found, tail = 0, b""
    with zf.open(info) as part:
        while True:
            chunk = part.read(1 << 20)
            buf = tail + chunk
            end = len(buf) - 16 if chunk else len(buf)  # a tag may straddle two chunks
            found += sum(1 for m in pattern.finditer(buf, 0, len(buf)) if m.start() < end)
            if found > left or not chunk:
                return found
            tail = buf[end:]


def parse_spreadsheet(data: bytes, name: str) -> Parsed:
    """A workbook parsed as the sync parses it, once ``check_spreadsheet`` passed."""
    check_spreadsheet(data, name)
    return parse(data, name, XLSX)


def read_limited(source: Path | bytes, name: str, max_bytes: int) -> bytes:
    """The file's bytes (``source`` itself when given bytes), refused by size first."""
    limit = f"{max_bytes / 2**20:g} MB"
    if isinstance(source, bytes):
        if len(source) > max_bytes:
            raise FileTooLarge(f"{name} is {len(source) / 2**20:.1f} MB, over the {limit} limit")
        return source
    try:
        size = source.stat().st_size
        if size > max_bytes:
            raise FileTooLarge(f"{name} is {size / 2**20:.1f} MB, over the {limit} limit")
        with source.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # the file may grow between stat and read
    except FileNotFoundError as exc:
        raise UntrustedFileError(f"{name}: no such file") from exc
    except OSError as exc:
        raise UntrustedFileError(f"{name}: cannot read the file ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise FileTooLarge(f"{name} is over the {limit} limit")
    if not data:
        raise UntrustedFileError(f"{name} is empty")
    return data

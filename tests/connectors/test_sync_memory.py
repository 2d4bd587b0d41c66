"""Memory regression: `copilot sync local` of a folder with a long document and a large
workbook, as a user runs it, stays within a fixed peak RSS.

What blew up before (issue 15): ONNX Runtime's arena grew to ~1 GB on batches of 64
full-width chunks and kept it for the process's life. The folder here is generated, a few
hundred chunks, so the test takes under a minute on two busy cores.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

PEAK_RSS_LIMIT_MB = 680  # measured 574 MB; 736 MB before the batch budget in embed.py
WORDS = [
    *("budget", "migration", "invoice", "export", "approval", "quarter", "travel", "hiring"),
    *("review", "contract", "supplier", "schedule", "risk", "meeting", "customer", "report"),
    *("forecast", "payroll", "audit", "office"),
]


def prose(rng: random.Random, chars: int) -> str:
    paragraphs, size = [], 0
    while size < chars:
        sentences = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))).capitalize() + "."
            for _ in range(rng.randint(3, 8))
        ]
        paragraphs.append(" ".join(sentences))
        size += len(paragraphs[-1])
    return "\n\n".join(paragraphs)


def build_folder(folder: Path) -> None:
    rng = random.Random(15)
    folder.mkdir()
    (folder / "long.md").write_text("# Annual report\n\n" + prose(rng, 100_000))
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Ledger")
    sheet.append(["Date", "Supplier", "Amount", "Comment"])
    for row in range(200):
        sheet.append([f"2024-{row % 12 + 1:02d}-01", rng.choice(WORDS), row * 3.5, prose(rng, 60)])
    book.save(folder / "ledger.xlsx")
    for n in range(10):
        (folder / f"note-{n}.txt").write_text(prose(rng, 2_000))


# The child reads its own high-water mark as it exits. Not wait4's ru_maxrss: Linux carries
# the parent's peak across fork+exec into it, so a 1.4 GB pytest made a 0.55 GB sync "1.4 GB".
CHILD = """
import atexit, re, sys
def report():
    status = open("/proc/self/status").read()
    sys.stderr.write("VmHWM_KB=" + re.search(r"VmHWM:\\s+(\\d+)", status).group(1) + "\\n")
atexit.register(report)
from copilot.cli.app import main
main()
"""


@pytest.mark.usefixtures("embedder")  # the one-time ONNX export (a child of its own) done first
def test_a_sync_stays_within_its_memory_bound(tmp_path: Path, cli_env: dict[str, str]) -> None:
    folder = tmp_path / "files"
    build_folder(folder)
    command = [sys.executable, "-c", CHILD, "sync", "local", str(folder), "--user", "anna"]
    command.append("--json")
    env = {**cli_env, "COPILOT_PARSE_WORKERS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["indexed"] == 12 and report["failed"] == 0 and report["chunks"] > 150
    peak_mb = int(re.search(r"VmHWM_KB=(\d+)", done.stderr).group(1)) // 1024
    print(f"sync of {report['chunks']} chunks: peak RSS {peak_mb} MB")
    assert peak_mb <= PEAK_RSS_LIMIT_MB

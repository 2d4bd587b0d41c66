"""Ingestion of real files: ``bench/ingest.py --real DIR`` (e.g. ../shared/data/office-files).

Why a second mode: the generated corpus is clean and evenly sized; real files are not. One
wide Russian table or a workbook of 19,000 rows can hold a sync for minutes and gigabytes,
and damaged files must fail with a reason, not stall. So this mode reports, besides time
and items/s, the peak memory, the longest stretch without a progress report, the chunks
kept keyword-only by the embedding budget, and whether every file ended up indexed or
failed with a reason (issue 18's goals: <= 2 GB, no freeze over 5 s, nothing lost).

Each side runs in a process of its own, so each peak RSS is its own: the copilot (its
process, and the largest of its parse workers) and the plain LlamaIndex pipeline of
``bench/ingest.py`` (SimpleDirectoryReader + VectorStoreIndex, default readers: .eml and
.msg are read as raw text). Prints JSON lines: copilot_real, llamaindex_real, summary_real.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REAL_EXTS = [".eml", ".msg", ".docx", ".xlsx", ".pdf"]
GOAL_RSS_MB = 2048
GOAL_FREEZE_S = 5.0


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in REAL_EXTS)


def copilot_real(folder: Path, home: Path) -> dict[str, Any]:
    """A first sync of ``folder`` into a fresh home; the model is loaded before the clock."""
    from connectors.local import LocalFolder
    from copilot.config import Settings
    from copilot.ingest.pipeline import SyncReport, sync
    from copilot.workspace import Workspace

    settings = Settings(home=home, models_dir_override=Settings().models_dir)
    beats: list[float] = []
    said: list[str] = []  # what each report said, to tell where the longest gaps were
    largest: dict[str, Any] = {"chunks": 0, "item": ""}

    def on_progress(report: SyncReport) -> None:
        beats.append(time.perf_counter())
        said.append(
            f"seen {report.seen} indexed {report.indexed} chunks {report.chunks} "
            f"item {report.item_done}/{report.item_total} {report.current}"
        )
        if report.item_total > largest["chunks"]:
            largest.update(chunks=report.item_total, item=report.current)

    with Workspace(settings) as ws:
        ws.embedder.embed_documents(["warm up the runtime"])
        connector = LocalFolder(folder, owner="bench")
        cpu_before = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        report = sync(connector, settings, ws.state, ws.store, ws.embedder, on_progress)
        ended = time.perf_counter()
        cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - cpu_before
        states = ws.state.item_states("bench", connector.scope)
        rows = ws.state.failures("bench")
    failed = {r["item_id"] for r in rows if r["stage"] != "note"}
    accounted = {i for i, s in states.items() if s.status == "indexed"} | failed
    files = files_of(folder)
    unaccounted = [p.name for p in files if f"local:{p.resolve()}" not in accounted]
    marks = [started, *beats, ended]
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    after = ["start", *said]
    worst = sorted(range(len(gaps)), key=lambda i: gaps[i], reverse=True)[:3]
    return {
        "name": "copilot_real",
        "files": len(files),
        "items": report.seen,
        "indexed": report.indexed,
        "failed": report.failed,
        "unaccounted": unaccounted[:10],
        "chunks": report.chunks,
        "embedded": report.embedded,
        "keyword_only": report.keyword_only,
        "notes": len(report.notes),
        "largest_item_chunks": largest,
        "seconds": round(ended - started, 1),
        "items_per_s": round(len(files) / (ended - started), 2),
        "embed_seconds": round(report.embed_seconds, 1),
        "cpu_s": round(cpu, 1),
        "max_progress_gap_s": round(max(gaps), 2),
        "longest_gaps": [{"s": round(gaps[i], 1), "after": after[i]} for i in worst],
        "rss_mb": _peak_mb(resource.RUSAGE_SELF),
        "parse_worker_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN),
        "load_avg": round(os.getloadavg()[0], 1),
        "settings": {
            "parse_workers": settings.parse_workers,
            "embed_backend": settings.embed_backend,
            "embed_batch": settings.embed_batch,
            "embed_threads": settings.embed_threads,
            "embed_table_rows": settings.embed_table_rows,
            "embed_item_chunks": settings.embed_item_chunks,
        },
    }


def llamaindex_real(folder: Path, work: Path) -> dict[str, Any]:
    from ingest import run_llamaindex  # bench/ingest.py: the same plain pipeline

    files = len(files_of(folder))
    record = run_llamaindex(folder, work, files, 200, REAL_EXTS, show=False, per_file=True)
    record.update(name="llamaindex_real", rss_mb=_peak_mb(resource.RUSAGE_SELF))
    return record


def _child(which: str, folder: Path, work: Path) -> dict[str, Any]:
    """Run one side in a fresh interpreter and return its JSON record."""
    code = (
        "import json, sys; from pathlib import Path; sys.path[:0] = sys.argv[4:6]; "
        "import ingest_real as r; "
        "f = r.copilot_real if sys.argv[1] == 'copilot' else r.llamaindex_real; "
        "print('RESULT ' + json.dumps(f(Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    here = Path(__file__).resolve().parent
    argv = [sys.executable, "-c", code, which, str(folder), str(work), str(here), str(here.parent)]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(json.loads(line[len("RESULT ") :]))
    return {"name": f"{which}_real", "error": (done.stderr or done.stdout)[-2000:]}


def run_real(folder: Path, skip_baseline: bool, emit: Any) -> int:
    """Both sides over ``folder``; 0 if the copilot met the goals (memory, freezes, nothing
    unaccounted for)."""
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        mine = emit(_child("copilot", folder, Path(tmp) / "copilot-home"))
        plain = None if skip_baseline else emit(_child("llamaindex", folder, Path(tmp) / "li"))
    summary: dict[str, Any] = {"name": "summary_real"}
    if "error" in mine:
        emit(summary | {"pass": False})
        return 1
    summary["rss_goal_mb"] = GOAL_RSS_MB
    summary["rss_pass"] = mine["rss_mb"] + 2 * mine["parse_worker_rss_mb"] <= GOAL_RSS_MB
    summary["freeze_goal_s"] = GOAL_FREEZE_S
    summary["freeze_pass"] = mine["max_progress_gap_s"] <= GOAL_FREEZE_S
    summary["all_accounted"] = not mine["unaccounted"]
    if plain and "error" not in plain:
        summary["speed_vs_llamaindex"] = round(plain["seconds"] / mine["seconds"], 2)
        summary["cpu_vs_llamaindex"] = round(plain["cpu_s"] / mine["cpu_s"], 2)
    passed = summary["rss_pass"] and summary["freeze_pass"] and summary["all_accounted"]
    emit(summary | {"pass": passed})
    return 0 if passed else 1

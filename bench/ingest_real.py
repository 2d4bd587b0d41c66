"""Ingestion of real files: ``bench/ingest.py --real DIR`` (e.g. ../shared/data/office-files).

Why a second mode: the generated corpus is clean and evenly sized; real files are not. One
wide Russian table or a workbook of 19,000 rows can hold a sync for minutes and gigabytes,
and damaged files must fail with a reason, not stall. So this mode reports, besides time
and items/s, the peak memory, the longest stretch without a progress report, the chunks
kept keyword-only by the embedding budget, and whether every file ended up indexed or
failed with a reason (issue 18's goals: <= 2 GB, no freeze over 5 s, nothing lost).

Each side runs in a process of its own, so each peak RSS is its own, under a time cap (a
side that does not finish is reported as "> cap"):

* the copilot as it is (its process, and the largest of its parse workers); with
  ``--float``, once more on the float backend (``COPILOT_EMBED_BACKEND=onnx``);
* ``--baseline-commit REV``: the copilot as it was at REV (issue 18 compares with the
  commit before its work, ``git log -- copilot/ingest/budget.py``, the first one's
  parent), exported with ``git archive`` into /tmp and run by this same function with
  that tree first on ``PYTHONPATH`` (so its parse workers run that code too);
* the plain LlamaIndex pipeline of ``bench/ingest.py`` (SimpleDirectoryReader +
  VectorStoreIndex, default readers: .eml and .msg are read as raw text).

``--copies N`` makes a larger set of the same kind: N copies of every file under other
names, each with its bytes changed where the format allows it without changing what it
says (a PDF comment after %%EOF, bytes after a zip's end record, blank lines after a
message), so no two files hash the same. .msg files (OLE containers) are copied as they
are. Items of equal content share no parsing; a copy's chunk whose text, title line
included, the index already holds takes the stored vector (``copilot/ingest/reuse.py``):
a file's copies have other names, so other title lines, but a message's copies keep their
subject and an attachment its name, so theirs are found (``reused`` in the record).

Prints JSON lines: copilot_real, baseline_real, llamaindex_real, summary_real.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REAL_EXTS = [".eml", ".msg", ".docx", ".xlsx", ".pdf"]
GOAL_RSS_MB = 2048
GOAL_FREEZE_S = 5.0
GOAL_SPEEDUP = 3.0  # against the baseline commit, same files, same machine
CAP_S = 900.0


def _peak_mb(who: int) -> float:
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def files_of(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in REAL_EXTS)


# --- the file set ---------------------------------------------------------------------------


def _altered(data: bytes, suffix: str, copy: int) -> bytes:
    """``data`` with bytes that change its hash and nothing a parser reads."""
    tag = b"bench copy %d" % copy
    if suffix == ".pdf":
        return data + b"\n%" + tag + b"\n"
    if suffix in (".docx", ".xlsx"):
        return data + tag  # after the end-of-central-directory record: zip readers skip it
    if suffix == ".eml":
        return data + b"\n" * (copy + 1)
    return data


def make_copies(folder: Path, copies: int, dest: Path) -> Path:
    """``copies`` altered copies of each file of ``folder`` in ``dest``, by kind."""
    for path in files_of(folder):
        data = path.read_bytes()
        kind = dest / path.parent.name
        kind.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            target = kind / f"c{copy}-{path.name}"
            target.write_bytes(_altered(data, path.suffix.lower(), copy))
    return dest


def baseline_tree(commit: str, repo: Path) -> Path:
    """The project's code at ``commit`` in /tmp (made once): ``git archive``, so the
    checkout's own .git and working tree are left alone."""
    sha = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", f"{commit}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    tree = Path(tempfile.gettempdir()) / f"copilot-baseline-{sha[:12]}"
    if not (tree / "copilot" / "workspace.py").is_file():
        tmp = Path(tempfile.mkdtemp(prefix=".copilot-baseline-", dir=tree.parent))
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", sha, "copilot", "connectors"],
            capture_output=True, check=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
        shutil.rmtree(tree, ignore_errors=True)
        os.replace(tmp, tree)
    return tree


# --- one side ---------------------------------------------------------------------------------


def copilot_real(folder: Path, home: Path) -> dict[str, Any]:
    """A first sync of ``folder`` into a fresh home; the model is loaded before the clock.

    Runs against whichever ``copilot`` is first on the path (this tree or a baseline's),
    so it reads the report's newer fields only where they exist."""
    from connectors.local import LocalFolder
    from copilot.config import Settings
    from copilot.ingest import pipeline
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    settings = Settings(home=home, models_dir_override=Settings().models_dir)
    beats: list[float] = []
    said: list[str] = []  # what each report said, to tell where the longest gaps were
    largest: dict[str, Any] = {"chunks": 0, "item": ""}

    def on_progress(report: Any) -> None:
        beats.append(time.perf_counter())
        total = getattr(report, "item_total", 0)
        said.append(
            f"seen {report.seen} indexed {report.indexed} chunks {report.chunks} "
            f"item {getattr(report, 'item_done', 0)}/{total} {getattr(report, 'current', '')}"
        )
        if total > largest["chunks"]:
            largest.update(chunks=total, item=report.current)

    with Workspace(settings) as ws:
        ws.embedder.embed_documents(["warm up the runtime"])
        model_id = ws.embedder.model_id
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
    names = ("parse_workers", "embed_backend", "embed_batch", "embed_threads")
    names += ("embed_table_rows", "embed_item_chunks")
    return {
        "name": "copilot_real",
        "code": str(Path(str(pipeline.__file__)).parents[2]),
        "model_id": model_id,
        "files": len(files),
        "items": report.seen,
        "indexed": report.indexed,
        "failed": report.failed,
        "unaccounted": unaccounted[:10],
        "unaccounted_count": len(unaccounted),
        "chunks": report.chunks,
        "embedded": report.embedded,
        "reused": getattr(report, "reused", 0),  # vectors found, not embedded again
        "keyword_only": getattr(report, "keyword_only", 0),
        "notes": len(getattr(report, "notes", [])),
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
        "settings": {name: getattr(settings, name, None) for name in names},
    }


def llamaindex_real(folder: Path, work: Path) -> dict[str, Any]:
    from ingest import run_llamaindex  # bench/ingest.py: the same plain pipeline

    files = len(files_of(folder))
    record = run_llamaindex(folder, work, files, 200, REAL_EXTS, show=False, per_file=True)
    record.update(name="llamaindex_real", rss_mb=_peak_mb(resource.RUSAGE_SELF))
    record["parse_worker_rss_mb"] = _peak_mb(resource.RUSAGE_CHILDREN)
    return record


def _child(
    which: str,
    folder: Path,
    work: Path,
    cap: float,
    code: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one side (``copilot`` or ``llamaindex``) in a fresh interpreter; see ``in_tree``."""
    call = "ingest_real.llamaindex_real" if which == "llamaindex" else "ingest_real.copilot_real"
    return in_tree(call, folder, work, cap, f"{which}_real", code, env)


def in_tree(
    call: str,
    folder: Path,
    work: Path,
    cap: float,
    name: str,
    code: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """``call`` (``module.function`` of bench/, taking ``folder`` and ``work``) in a fresh
    interpreter, its own process group killed whole at the cap; its JSON record, named
    ``name``. ``code``: the project tree to run instead of this one (``baseline_tree``)."""
    here = Path(__file__).resolve().parent
    root = code or here.parent
    script = (
        "import importlib, json, sys; from pathlib import Path; sys.path[:0] = sys.argv[4:6]; "
        "module, function = sys.argv[1].rsplit('.', 1); "
        "f = getattr(importlib.import_module(module), function); "
        "print('RESULT ' + json.dumps(f(Path(sys.argv[2]), Path(sys.argv[3]))))"
    )
    argv = [sys.executable, "-c", script, call, str(folder), str(work), str(here), str(root)]
    environment = dict(os.environ, **(env or {}))
    # The parse workers are started as ``python -m``: the path tells them whose code to run.
    environment["PYTHONPATH"] = os.pathsep.join([str(root), str(here)])
    started = time.perf_counter()
    # Not started in the checkout: ``python -m`` puts its folder first on the workers' path.
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
        start_new_session=True, cwd=work.parent,
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the child and its parse workers
        process.communicate()
        return {"name": name, "timed_out": True, "seconds": f"> {cap:g}", "cap_s": cap}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            record = dict(json.loads(line[len("RESULT ") :]))
            record["name"] = name
            record["wall_with_load_s"] = round(time.perf_counter() - started, 1)
            return record
    return {"name": name, "error": (err or out)[-2000:]}


def run_real(
    folder: Path,
    skip_baseline: bool,
    emit: Any,
    copies: int = 1,
    baseline_commit: str | None = None,
    cap: float = CAP_S,
    floats: bool = False,
) -> int:
    """The copilot, the baseline commit and LlamaIndex over ``folder`` (or its copies); 0
    if the copilot met the goals (memory, freezes, nothing unaccounted for, speed)."""
    repo = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        if copies > 1:
            folder = make_copies(folder, copies, Path(tmp) / "files")
        emit({"name": "files_real", "folder": str(folder), "files": len(files_of(folder))})
        mine = emit(_child("copilot", folder, Path(tmp) / "copilot-home", cap))
        if floats:  # the float backend (onnx, opt-in since int8 became the default), same files
            env = {"COPILOT_EMBED_BACKEND": "onnx"}
            unquantised = _child("copilot", folder, Path(tmp) / "float-home", cap, env=env)
            emit(unquantised | {"name": "copilot_float_real"})
        old = None
        if baseline_commit:
            tree = baseline_tree(baseline_commit, repo)
            old = _child("copilot", folder, Path(tmp) / "baseline-home", cap, code=tree)
            emit(old | {"name": "baseline_real", "commit": baseline_commit})
        plain = None
        if not skip_baseline:
            plain = emit(_child("llamaindex", folder, Path(tmp) / "li", cap))
    summary: dict[str, Any] = {"name": "summary_real"}
    if "error" in mine or mine.get("timed_out"):
        emit(summary | {"pass": False})
        return 1
    peak = mine["rss_mb"] + mine["parse_worker_rss_mb"] * mine["settings"]["parse_workers"]
    summary["rss_bound_mb"] = round(peak, 1)  # the process + every worker at its own peak
    summary["rss_goal_mb"] = GOAL_RSS_MB
    summary["rss_pass"] = peak <= GOAL_RSS_MB
    summary["freeze_goal_s"] = GOAL_FREEZE_S
    summary["freeze_pass"] = mine["max_progress_gap_s"] <= GOAL_FREEZE_S
    summary["all_accounted"] = not mine["unaccounted"]
    passed = summary["rss_pass"] and summary["freeze_pass"] and summary["all_accounted"]
    if old is not None:
        if old.get("timed_out"):
            summary["speed_vs_baseline"] = f"> {cap / mine['seconds']:.2f}"
        elif "error" not in old:
            summary["speed_vs_baseline"] = round(old["seconds"] / mine["seconds"], 2)
            summary["cpu_vs_baseline"] = round(old["cpu_s"] / mine["cpu_s"], 2)
        speed = summary.get("speed_vs_baseline")
        summary["speed_goal"] = GOAL_SPEEDUP
        summary["speed_pass"] = isinstance(speed, str) or (speed or 0) >= GOAL_SPEEDUP
        passed = passed and summary["speed_pass"]
    if plain and "error" not in plain:
        if plain.get("timed_out"):
            summary["speed_vs_llamaindex"] = f"> {cap / mine['seconds']:.2f}"
        else:
            summary["speed_vs_llamaindex"] = round(plain["seconds"] / mine["seconds"], 2)
            summary["cpu_vs_llamaindex"] = round(plain["cpu_s"] / mine["cpu_s"], 2)
    emit(summary | {"pass": passed})
    return 0 if passed else 1


# --- chunks per character by script ---------------------------------------------------------

# The same business text in English, Russian and German (a translation, so the lengths
# compare): WordPiece in MiniLM's English vocabulary cuts Cyrillic into far more tokens.
SCRIPTS = {
    "english": (
        "The quarterly report shows that sales in the northern region grew by twelve percent, "
        "while costs for logistics and warehousing rose faster than planned. The board asked "
        "the finance department to prepare a revised budget before the next meeting and to "
        "explain which contracts with suppliers can be renegotiated. Customer complaints about "
        "late deliveries fell after the new distribution centre opened in March. The project "
        "team recommends moving the remaining orders to the new system by the end of the year."
    ),
    "russian": (
        "Квартальный отчёт показывает, что продажи в северном регионе выросли на двенадцать "
        "процентов, а расходы на логистику и складское хранение росли быстрее, чем "
        "планировалось. Совет директоров поручил финансовому отделу подготовить "
        "пересмотренный бюджет до следующего заседания и объяснить, какие договоры с "
        "поставщиками можно пересмотреть. Жалобы клиентов на задержки поставок сократились "
        "после открытия нового распределительного центра в марте. Проектная группа "
        "рекомендует перевести оставшиеся заказы в новую систему до конца года."
    ),
    "german": (
        "Der Quartalsbericht zeigt, dass der Umsatz in der Region Nord um zwölf Prozent "
        "gestiegen ist, während die Kosten für Logistik und Lagerhaltung schneller als geplant "
        "stiegen. Der Vorstand bat die Finanzabteilung, vor der nächsten Sitzung ein "
        "überarbeitetes Budget vorzubereiten und zu erklären, welche Lieferverträge neu "
        "verhandelt werden können. Kundenbeschwerden über verspätete Lieferungen gingen nach "
        "der Eröffnung des neuen Verteilzentrums im März zurück. Das Projektteam empfiehlt, "
        "die restlichen Aufträge bis Jahresende in das neue System zu übertragen."
    ),
}


def chunks_per_char(paragraphs: int = 400) -> list[dict[str, Any]]:
    """Each script's text as one long document of ``paragraphs`` paragraphs, chunked as a
    sync chunks it: tokens and chunks per 1,000 characters, and how much text the item
    budget (``embed_item_chunks`` embedded chunks) covers."""
    from connectors.types import Element
    from copilot.config import Settings
    from copilot.index.embed import get_embedder
    from copilot.ingest.budget import Limits, plan_chunks

    settings = Settings(models_dir_override=Settings().models_dir)
    embedder = get_embedder(settings)
    limits = Limits(settings.embed_table_rows, settings.embed_item_chunks)
    rows = []
    for script, text in SCRIPTS.items():
        elements = [Element(f"{n}. {text}", {"paragraph": n}) for n in range(paragraphs)]
        chars = sum(len(e.text) for e in elements)
        tokens = sum(embedder.count_tokens([e.text for e in elements]))
        planned = plan_chunks(elements, "report.docx", embedder, settings, limits)
        per_chunk = chars / len(planned.chunks)
        rows.append(
            {
                "name": "chunks_per_char",
                "script": script,
                "chars": chars,
                "tokens_per_1000_chars": round(1000 * tokens / chars, 1),
                "chunks_per_1000_chars": round(1000 * len(planned.chunks) / chars, 2),
                "chars_per_chunk": round(per_chunk),
                "embedded_by_budget_chars": round(per_chunk * settings.embed_item_chunks),
                "budget_chunks": settings.embed_item_chunks,
                "chunk_tokens": settings.chunk_tokens,
            }
        )
    return rows


if __name__ == "__main__":  # .venv/bin/python bench/ingest_real.py: the chunks-per-char table
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    for row in chunks_per_char():
        print(json.dumps(row, ensure_ascii=False))

"""Re-sync after edits: what a sync costs when documents change a little, as they do.

Why: the first sync of a library is paid once; after it, syncs mostly find documents that
changed in a paragraph or two, and a changed file is stored again as a new version. This
bench measures that case, side by side with a baseline commit (each side in a process of
its own, the same files, one after the other), and one more common case of text the index
already holds: the same file in two folders.

The set (``bench/corpus.py``'s vocabulary, one seed): ``--docs`` long Word reports of
``--sections`` sections (a heading, then five to seven paragraphs of 40-100 words),
``--copies`` of them also under ``shared/`` with the same name (a document filed twice).
Then, per side: a first sync into a fresh home; each report edited as a person would
(one sentence rewritten in a paragraph in the middle, one paragraph added at the end),
its modification time moved on; a second sync. Reported per sync: wall time, chunks
stored, texts the embedder was asked for, vectors reused (``reused``, where the side has
it), peak RSS of the process.

    .venv/bin/python bench/resync.py --baseline-commit HEAD~1 [--docs 30] [--sections 12]

Prints JSON lines: machine, resync (one per side), ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EDIT = "As agreed at the review, the figures above are revised. "


def write_reports(folder: Path, docs: int, sections: int, copies: int, seed: int = 0) -> None:
    """``docs`` reports in ``folder``, the first ``copies`` once more under ``shared/``."""
    from docx import Document

    sys.path.insert(0, str(HERE))
    from corpus import VOCAB, _Text

    t = _Text(random.Random(seed))
    (folder / "shared").mkdir(parents=True)
    for n in range(docs):
        doc = Document()
        doc.add_heading(f"{t.title()} report {n}", 0)
        for s in range(sections):
            doc.add_heading(f"{s + 1}. {t.r.choice(VOCAB).title()} {t.r.choice(VOCAB)}", 1)
            for _ in range(t.r.randint(5, 7)):
                doc.add_paragraph(" ".join(t.words(t.r.randint(40, 100))))
        doc.save(folder / f"report-{n:03d}.docx")
        if n < copies:
            doc.save(folder / "shared" / f"report-{n:03d}.docx")


def edit_reports(folder: Path) -> int:
    """Rewrite one sentence in the middle of each top-level report and add a paragraph."""
    from docx import Document

    edited = 0
    for path in sorted(folder.glob("report-*.docx")):
        doc = Document(str(path))
        body = [p for p in doc.paragraphs if p.text and not p.style.name.startswith("Heading")]
        middle = body[len(body) // 2]
        middle.text = EDIT + middle.text.split(". ", 1)[-1]
        doc.add_paragraph("Next steps: the owners confirm the revised plan by Friday.")
        doc.save(str(path))
        later = time.time() + 60
        os.utime(path, (later, later))
        edited += 1
    return edited


def side(folder: Path, home: Path) -> dict[str, Any]:
    """Both syncs of one side, in this process (run by ``main`` in a child)."""
    from connectors.local import LocalFolder
    from copilot.config import Settings
    from copilot.ingest import pipeline
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    settings = Settings(home=home, models_dir_override=Settings().models_dir)
    record: dict[str, Any] = {"code": str(Path(str(pipeline.__file__)).parents[2])}
    with Workspace(settings) as ws:
        asked: list[int] = []
        inner = ws.embedder

        class Counting:  # the workspace's embedder, counting the texts it is given
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            def embed_documents(self, texts: Any) -> Any:
                asked.append(len(texts))
                return inner.embed_documents(texts)

        inner.embed_documents(["warm up the runtime"])
        record["model_id"] = inner.model_id
        for name in ("first", "after_edits"):
            if name == "after_edits":
                record["edited_files"] = edit_reports(folder)
            asked.clear()
            started = time.perf_counter()
            report = sync(LocalFolder(folder, owner="bench"), settings, ws.state, ws.store,
                          Counting())  # type: ignore[arg-type]  # fmt: skip
            record[name] = {
                "seconds": round(time.perf_counter() - started, 2),
                "indexed": report.indexed,
                "unchanged": report.unchanged,
                "chunks": report.chunks,
                "texts_embedded": sum(asked),
                "reused": getattr(report, "reused", 0),
                "embed_seconds": round(report.embed_seconds, 2),
            }
    record["rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=30)
    parser.add_argument("--sections", type=int, default=12)
    parser.add_argument("--copies", type=int, default=5, help="reports also under shared/")
    parser.add_argument("--baseline-commit", help="also run the code of this commit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cap", type=float, default=900.0, help="seconds per side")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from ingest_real import baseline_tree, in_tree

    def emit(record: dict[str, Any]) -> None:
        print(json.dumps(record), flush=True)

    emit({"name": "machine", "cpus": os.cpu_count(), "python": platform.python_version(),
          "load_avg": round(os.getloadavg()[0], 1)})  # fmt: skip
    sides = [("copilot", ROOT)]
    if args.baseline_commit:
        sides.append(("baseline", baseline_tree(args.baseline_commit, ROOT)))
    records = {}
    for label, tree in sides:
        with tempfile.TemporaryDirectory(prefix="bench-resync-") as tmp:
            folder = Path(tmp) / "files"
            write_reports(folder, args.docs, args.sections, args.copies, args.seed)
            home = Path(tmp) / "home"  # each side in its own process, killed at the cap
            record = in_tree("resync.side", folder, home, args.cap, "resync", tree)
            record.update(side=label, commit=args.baseline_commit
                          if label == "baseline" else "working tree")  # fmt: skip
            records[label] = record
            emit(record)
    if all("first" in records.get(side, {}) for side in ("copilot", "baseline")):
        ours, base = records["copilot"], records["baseline"]
        emit({
            "name": "ratio",
            "baseline": args.baseline_commit,
            **{f"{sync}_speedup": round(base[sync]["seconds"] / ours[sync]["seconds"], 2)
               for sync in ("first", "after_edits")},
            "after_edits_texts_embedded": [ours["after_edits"]["texts_embedded"],
                                           base["after_edits"]["texts_embedded"]],
        })  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

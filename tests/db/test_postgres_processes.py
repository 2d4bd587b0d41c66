"""Several processes on one PostgreSQL state store: what several API replicas and sync
workers rely on. Each worker is a separate Python process, as a replica would be.

qdrant-client's local mode (``COPILOT_QDRANT_URL=local:DIR``, the stand-in for a Qdrant
server) admits one process at a time, so the vector store is handed from process to process
here; processes writing vectors at the same moment need a real Qdrant server (docs/scaling.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import qdrant_client

from copilot.db.state import StateStore
from copilot.index.server_client import collection_name
from copilot.skills.library.store import SkillStore
from tests.fakes.postgres import Postgres

ROOT = Path(__file__).resolve().parents[2]
COPILOT = Path(sys.executable).with_name("copilot")

WORKER = textwrap.dedent(
    """
    import sys
    from copilot.db.engine import open_engine
    from copilot.db.state import StateStore
    from copilot.skills.library.store import SkillStore

    url, worker = sys.argv[1], int(sys.argv[2])
    state = StateStore(url)
    skills = SkillStore(open_engine(url))
    text = open(sys.argv[3]).read()
    for i in range(40):
        # ids 0-19 are written by both workers (a rescan racing a sync), 20-39 by one only
        item = f"shared-{i}" if i < 20 else f"w{worker}-{i}"
        row = {"item_id": item, "scope": "local:/d", "parent_id": None, "kind": "file",
               "title": item, "url": "", "version": f"v{worker}", "content_hash": "h",
               "status": "indexed", "chunks": 1, "modified": 0.0}
        state.record_items("ann", [row])
        skills.save("ann", "notes", text.replace("POINTS", str(worker * 100 + i)))
    """
)

SKILL = """\
---
name: Notes
description: Notes in POINTS points.
model:
  api: chat
  configuration:
    type: openai
    name: gpt-4o-mini
inputs:
  text:
    type: string
---
system:
Write POINTS notes.

user:
{{text}}
"""


def test_two_worker_processes_lose_and_duplicate_nothing(postgres: Postgres, tmp_path: Path):
    url = postgres.new_database()
    StateStore(url).close()  # tables in place before the workers race to create them
    skill = tmp_path / "notes.prompty"
    skill.write_text(SKILL)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(n), str(skill)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in (1, 2)
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err

    state = StateStore(url)
    try:
        items = state.item_states("ann", "local:/d")
        assert len(items) == 20 + 2 * 20  # the shared ids once each, every worker's own ids
        assert state.summary("ann")["items"] == 60
        history = SkillStore(state.engine).history("ann", "notes")
        assert [h.version for h in history] == list(range(80, 0, -1))  # none lost or twice
    finally:
        state.close()


def test_sync_worker_and_reader_processes_share_postgres_and_qdrant(
    postgres: Postgres, tmp_path: Path
):
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(4):
        (docs / f"d{n}.txt").write_text(f"Memo {n}: the quarterly budget review, item {n}.\n")
    env = {
        **os.environ,
        "COPILOT_HOME": str(tmp_path / "home"),
        "COPILOT_DATABASE_URL": postgres.new_database(),
        "COPILOT_QDRANT_URL": f"local:{tmp_path / 'qdrant'}",
        "COPILOT_USER": "ann",
    }

    def copilot(*args: str) -> dict:
        done = subprocess.run(
            [str(COPILOT), *args, "--json"], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first = copilot("sync", "local", str(docs))
    assert (first["seen"], first["indexed"], first["failed"]) == (4, 4, 0)
    (docs / "d1.txt").write_text("Memo 1, revised: the budget review moved to Friday.\n")
    second = copilot("sync", "local", str(docs))  # a second worker process, same stores
    assert (second["unchanged"], second["indexed"]) == (3, 1)

    status = copilot("status")  # a reader process
    assert (status["items"], status["chunks"]) == (4, 4)
    client = qdrant_client.QdrantClient(path=str(tmp_path / "qdrant"))
    try:
        names = [c.name for c in client.get_collections().collections]
        assert len(names) == 1 and names[0].startswith(collection_name(""))
        points = client.count(names[0], exact=True).count
    finally:
        client.close()
    # the revised memo replaced its old chunk; nothing twice (one chunk and one whole-item
    # BM25 point per memo, copilot/index/items.py)
    assert points == 4 + 4

"""Opt-in robustness run over real-world files from other projects' test suites.

    pytest tests/test_office_files.py --office-files ../shared/data/office-files

Every file must end up either indexed or failed with a reason; nothing may crash or hang.
Skipped (with the reason shown) when no folder is given: the suite passes without it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from connectors.local import LocalFolder
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace


@pytest.fixture
def office_files(request) -> Path:
    value = request.config.getoption("--office-files")
    if not value:
        pytest.skip("opt-in: pass --office-files DIR (or set COPILOT_OFFICE_FILES)")
    return Path(value)


def test_every_real_file_is_indexed_or_fails_with_a_reason(office_files, settings, tmp_path):
    started = time.monotonic()
    with Workspace(settings) as ws:
        report = sync(
            LocalFolder(office_files, owner="robust"), settings, ws.state, ws.store, ws.embedder
        )
        seconds = time.monotonic() - started
        files = [p for p in office_files.rglob("*") if p.is_file() and p.suffix != ".tsv"]
        states = ws.state.item_states("robust", LocalFolder(office_files, owner="robust").scope)
        # Notes (an embedding budget that applied) sit with the failures; they are not ones.
        failures = {f["item_id"]: f for f in ws.state.failures("robust") if f["stage"] != "note"}
    top_level = {i: s for i, s in states.items() if s.parent_id is None}
    accounted = set(top_level) | set(failures)
    missing = [p for p in files if f"local:{p.resolve()}" not in accounted]
    assert not missing, missing[:10]
    assert all(f["reason"].strip() for f in failures.values())
    summary = {
        "files": len(files),
        "indexed": sum(1 for s in top_level.values() if s.status == "indexed"),
        "failed": len([f for f in failures if "#" not in f]),
        "attachments_indexed": sum(
            1 for s in states.values() if s.parent_id and s.status == "indexed"
        ),
        "chunks": report.chunks,
        "seconds": round(seconds, 1),
    }
    print(json.dumps(summary))
    for f in failures.values():
        print(f"failed ({f['stage']}): {Path(f['item_id']).name}: {f['reason']}")

"""Atomic, private file writes: whole or not at all, and owner-only whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest

from copilot.fileio import (
    create_private_file,
    loose,
    make_private_dir,
    save_atomically,
    tighten,
    warn_if_loose,
    write_atomically,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


pytestmark = pytest.mark.usefixtures("umask_022")  # plain writes come out world-readable


def test_write_atomically_replaces_the_file_privately_by_default(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "sources.json"
    write_atomically(target, "[]\n")
    assert target.read_text() == "[]\n" and mode(target) == 0o600
    assert mode(target.parent) == mode(target.parent.parent) == 0o700  # folders it created
    write_atomically(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in target.parent.iterdir()) == ["sources.json"]  # no temp left


def test_a_public_file_gets_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "out" / "manifest.xml"
    write_atomically(target, "<x/>", mode=0o644)
    assert mode(target) == 0o644 and mode(target.parent) == 0o755  # an ordinary folder


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.docx"
    target.write_text("old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_atomically(broken, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.docx"]


def test_save_atomically_refuses_a_missing_folder_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no such folder to write out\.xlsx"):
        save_atomically(lambda tmp: None, tmp_path / "typo" / "out.xlsx")


def test_make_private_dir_leaves_existing_folders_alone(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    made = make_private_dir(shared / "a" / "b")
    assert mode(shared) == 0o755 and mode(shared / "a") == mode(made) == 0o700
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="file is not a folder"):
        make_private_dir(tmp_path / "file")


def test_create_private_file_creates_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    assert create_private_file(path) and mode(path) == 0o600
    path.write_text("data")
    assert not create_private_file(path) and path.read_text() == "data"


def test_tighten_takes_group_and_other_bits_off_a_tree_but_not_through_links(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours")
    outside.chmod(0o644)
    shard = tmp_path / "shard"
    (shard / "segments" / "s1").mkdir(parents=True)
    (shard / "segments" / "s1" / "data.bin").write_bytes(b"1")
    (shard / "meta.json").write_text("{}")
    (shard / "run.sh").write_text("")
    (shard / "run.sh").chmod(0o755)
    (shard / "link").symlink_to(outside)
    assert len(loose([shard, shard / "meta.json"])) == 2

    tighten(shard)
    assert mode(shard) == mode(shard / "segments") == mode(shard / "segments" / "s1") == 0o700
    assert mode(shard / "segments" / "s1" / "data.bin") == mode(shard / "meta.json") == 0o600
    assert mode(shard / "run.sh") == 0o700  # the owner's own bits are kept
    assert mode(outside) == 0o644
    assert loose(shard.rglob("*")) == []


def test_warn_if_loose_names_the_open_paths_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private, opened = tmp_path / "a.db", tmp_path / "b.db"
    for path in (private, opened):
        create_private_file(path)
    opened.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="copilot"):
        assert warn_if_loose([private, opened, tmp_path / "missing"], "the state database") == [
            opened
        ]
    (record,) = caplog.records
    assert "the state database" in record.getMessage() and f"{opened} (0644)" in record.getMessage()
    assert "chmod -R go-rwx" in record.getMessage() and str(private) not in record.getMessage()
    assert mode(opened) == 0o644
    caplog.clear()
    assert warn_if_loose([private], "x") == [] and caplog.records == []

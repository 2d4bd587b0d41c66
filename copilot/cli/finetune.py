"""``copilot finetune …``: consent, dataset, validate, start/status/events/cancel/list, use,
compare. Every expected failure is one plain line and exit code 2 (validation errors: 1).

Beside a running ``copilot serve``: ``compare`` runs skills, which may search the index
(the service's, one writer), so it runs in the service when one runs (``cli/backend.py``,
the skills operation ``compare``). Every other command works in this process whether or
not a service runs: they read and write only the state store (SQLite in WAL mode with a
busy timeout, or PostgreSQL: many processes at once), files and the fine-tuning provider's
API; ``dataset`` loads the embedder, not the index.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from copilot.cli.finetune_output import console, print_cost, print_job, print_report, when
from copilot.cli.output import fail, settings_or_exit
from copilot.finetune.validate import DEFAULT_EPOCHS, FinetuneError

if TYPE_CHECKING:  # imported by the commands that use them: `copilot --help` stays fast
    from copilot.config import Settings

finetune_app = typer.Typer(help="Fine-tune a model on approved skill runs, and switch to it.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
SkillOpt = Annotated[str, typer.Option("--skill", help="The skill id.")]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, max=50, help="Training epochs.")]


def _engine(settings: Settings) -> Any:
    from copilot.db.engine import open_engine

    return open_engine(settings.state_url)


def _guard(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one step; the workflow's expected errors become one line and exit 2."""
    from copilot.llm.errors import LLMError
    from copilot.skills.library.store import SkillNotFound
    from copilot.skills.templates.render import TemplateError

    try:
        return fn(*args, **kwargs)
    except (SkillNotFound, KeyError) as exc:
        raise fail(str(exc.args[0] if exc.args else exc)) from exc
    except (FinetuneError, TemplateError, LLMError, ValueError) as exc:
        raise fail(str(exc)) from exc


@finetune_app.command()
def consent(
    user: Annotated[str | None, typer.Option("--user", "-u", help="The user id.")] = None,
    revoke: Annotated[bool, typer.Option("--revoke", help="Withdraw the opt-in.")] = False,
    show: Annotated[bool, typer.Option("--list", help="List opted-in users.")] = False,
) -> None:
    """Record (or --revoke) a user's opt-in to their approved runs being training data."""
    from copilot.finetune import consent as consents

    engine = _engine(settings_or_exit())
    if show:
        for name, at in sorted(consents.consenting(engine).items()):
            console.print(f"{escape(name)}  [dim]since {when(at)}[/dim]")
        return
    if user is None:
        raise fail("give --user ID (or --list)")
    if revoke:
        gone = _guard(consents.revoke, engine, user)
        console.print(
            f"{user}: opt-in withdrawn." if gone else f"{user} had not opted in.", markup=False
        )
    else:
        at = _guard(consents.grant, engine, user)
        console.print(f"{user} opted in to fine-tuning (since {when(at)}).", markup=False)


@finetune_app.command()
def dataset(
    skill: SkillOpt,
    out: Annotated[Path, typer.Option("--out", help="The training JSONL file to write.")],
    user: Annotated[str | None, typer.Option("--user", "-u", help="One user's runs.")] = None,
    all_users: Annotated[
        bool, typer.Option("--all-users-with-consent", help="Every opted-in user's runs.")
    ] = False,
    min_rating: Annotated[int, typer.Option("--min-rating", help="Lowest rating used.")] = 1,
    names: Annotated[
        Path | None, typer.Option("--pseudonymise", help="Replace the names in this file.")
    ] = None,
    settings_names: Annotated[
        bool,
        typer.Option("--pseudonymise-settings-names", help="Replace COPILOT_REDACT_NAMES."),
    ] = False,
    base_model: Annotated[
        str | None, typer.Option("--base-model", help="Estimate the cost for this model.")
    ] = None,
    epochs: EpochsOpt = DEFAULT_EPOCHS,
    max_user_share: Annotated[
        float | None, typer.Option("--max-user-share", help="Cap one user's share, e.g. 0.5.")
    ] = None,
    embeddings: Annotated[
        bool, typer.Option(help="Measure diversity with embeddings too (loads the model).")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Approved runs → OUT (training) and OUT.validation.jsonl, scrubbed, deduplicated."""
    from copilot.finetune import privacy
    from copilot.finetune.dataset import build_dataset, write_dataset
    from copilot.skills.history import RunStore
    from copilot.workspace import Workspace

    settings = settings_or_exit()
    pseudonyms = None
    if names is not None or settings_names:
        listed = _guard(privacy.load_names, names) if names is not None else []
        listed += list(settings.redact_names) if settings_names else []
        if not listed:
            raise fail("no names to pseudonymise: the names file and settings list none")
        pseudonyms = privacy.Pseudonymiser(listed)
    with Workspace(settings) as ws:
        runs = RunStore(ws.state.engine)
        built = _guard(
            build_dataset, runs, skill, policy=privacy.dataset_policy(settings), user=user,
            all_users_with_consent=all_users, min_rating=min_rating, pseudonyms=pseudonyms,
            embedder=ws.embedder if embeddings else None, max_user_share=max_user_share,
            settings=settings, base_model=base_model, epochs=epochs,
        )  # fmt: skip
    report = {**built.report, "residual": [{"file": f, **h.as_dict()} for f, h in built.hits]}
    paths: list[Path] = []
    try:
        paths = write_dataset(built, out)
    except FinetuneError as exc:
        print_report(report, as_json)
        raise fail(str(exc)) from exc
    report["files"] = [str(p) for p in paths]
    report_path = out.with_name(out.name.removesuffix(".jsonl") + ".report.json")
    report_path.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    print_report(report, as_json)
    if not as_json:
        console.print(f"Wrote {', '.join(report['files'])} (report: {report_path}).", markup=False)


@finetune_app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="A chat fine-tuning JSONL file.")],
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="The model to price; default COPILOT_FINETUNE_BASE_MODEL (gpt-4o-mini).",
        ),
    ] = None,
    epochs: EpochsOpt = DEFAULT_EPOCHS,
    as_json: JsonOpt = False,
) -> None:
    """Check every line of FILE (errors by line), count tokens, estimate the cost."""
    from copilot.finetune.privacy import scan_file
    from copilot.finetune.validate import cost_summary, max_tokens_of, validate_file

    settings = settings_or_exit()
    base_model = base_model or settings.finetune_base_model
    result = _guard(validate_file, file, max_tokens=max_tokens_of(settings))
    report = result.as_dict()
    report["residual"] = [h.as_dict() for h in _guard(scan_file, file)]
    if result.examples and not result.error_count:
        report["cost"] = _guard(cost_summary, result, settings, base_model, epochs)
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for e in report["errors"]:
            where = f"line {e['line']}" if e["line"] else file.name
            console.print(f"[red]{where}: {escape(e['problem'])}[/red]")
        if result.error_count > len(report["errors"]):
            console.print(f"… {result.error_count - len(report['errors'])} more errors")
        console.print(
            f"{result.examples} examples, {result.error_count} errors; "
            f"{result.total_tokens:,} tokens "
            f"(largest example {report['max_tokens_per_example']:,}).",
        )
        for hit in report["residual"][:50]:
            console.print(f"[yellow]line {hit['line']}: possible {hit['kind']} "
                          f"({escape(hit['role'])}) {escape(hit['masked'])}[/yellow]")  # fmt: skip
        for w in result.warnings:
            console.print(f"[yellow]warning:[/yellow] {escape(w)}")
        if "cost" in report:
            print_cost(report["cost"])
    if not result.ok:
        raise typer.Exit(1)


@finetune_app.command()
def start(
    file: Annotated[Path, typer.Option("--file", help="The training JSONL file.")],
    base_model: Annotated[str, typer.Option("--base-model", help="The model to train.")],
    epochs: EpochsOpt = DEFAULT_EPOCHS,
    suffix: Annotated[str | None, typer.Option(help="Part of the new model's name.")] = None,
    validation: Annotated[
        Path | None, typer.Option("--validation", help="A validation JSONL file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate and upload FILE, then start a fine-tuning job."""
    from copilot.finetune.jobs import start_job

    job = _guard(start_job, settings_or_exit(), file, base_model, epochs=epochs, suffix=suffix,
                 validation=validation)  # fmt: skip
    print_job(job, as_json)


@finetune_app.command()
def status(job: str, as_json: JsonOpt = False) -> None:
    """A job's state; when it succeeded, the fine-tuned model's name."""
    from copilot.finetune.jobs import job_status

    print_job(_guard(job_status, settings_or_exit(), job), as_json)


@finetune_app.command()
def events(
    job: str,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """A job's events, newest first."""
    from copilot.finetune.jobs import job_events

    found = _guard(job_events, settings_or_exit(), job, limit=limit)
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for e in found:
        console.print(f"{when(e['created_at'])}  {e['level']:<5}  {e['message']}", markup=False)


@finetune_app.command()
def cancel(job: str, as_json: JsonOpt = False) -> None:
    """Cancel a job that has not finished."""
    from copilot.finetune.jobs import cancel_job

    print_job(_guard(cancel_job, settings_or_exit(), job), as_json)


@finetune_app.command("list")
def list_(
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20, as_json: JsonOpt = False
) -> None:
    """The newest fine-tuning jobs."""
    from copilot.finetune.jobs import list_jobs

    jobs = _guard(list_jobs, settings_or_exit(), limit=limit)
    if as_json:
        print(json.dumps(jobs, indent=2))
        return
    from rich.table import Table

    table = Table("job", "status", "base model", "fine-tuned model", "created")
    for j in jobs:
        table.add_row(j["id"], j["status"], j["model"], j["fine_tuned_model"] or "",
                      when(j["created_at"]))  # fmt: skip
    console.print(table)


@finetune_app.command()
def use(
    skill: SkillOpt,
    model: Annotated[str | None, typer.Option("--model", help="The model to run on.")] = None,
    job: Annotated[
        str | None, typer.Option("--job", help="Or: the fine-tuning job whose model to use.")
    ] = None,
    user: Annotated[str | None, typer.Option("--user", "-u", help="For this user.")] = None,
    all_users: Annotated[
        bool, typer.Option("--all-users", help="For every user whose skill names no model.")
    ] = False,
    admin: Annotated[
        str | None, typer.Option("--admin", help="With --all-users: your admin user id.")
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="With --all-users: back to the default model.")
    ] = False,
) -> None:
    """Run SKILL on MODEL: a new version of USER's skill (revert to undo), or for all users."""
    from copilot.finetune.switch import use_for_all, use_model
    from copilot.skills.library.store import SkillStore

    settings = settings_or_exit()
    if (user is None) == (not all_users):
        raise fail("choose one: --user ID, or --all-users --admin ID")
    if job is not None:
        if model is not None:
            raise fail("give --model or --job, not both")
        model = _model_of_job(settings, job)
    if (model is None) != clear or (clear and not all_users):
        raise fail("give --model NAME (or --all-users --clear)")
    engine = _engine(settings)
    if user is not None:
        stored = _guard(use_model, SkillStore(engine), user, skill, model)
        console.print(f"{user}'s {stored.id} v{stored.version} now runs on {model} "
                      f"(undo: copilot skills revert {stored.id} --user {user} "
                      f"--version {stored.version - 1}).", markup=False)  # fmt: skip
        return
    admins = list(settings.admins)
    if admin is None or admin not in admins:
        raise fail("--all-users needs --admin ID, an id listed in COPILOT_ADMINS")
    _guard(use_for_all, engine, skill, model, admin)
    done = f"runs on {model}" if model else "runs on the default model again"
    console.print(f"{skill} {done} for every user whose skill names no model.", markup=False)


def _model_of_job(settings: Settings, job_id: str) -> str:
    """The fine-tuned model of a job that succeeded; a plain refusal for any other state,
    so a skill is never pointed at a model that does not exist (yet)."""
    from copilot.finetune.jobs import job_status

    info = _guard(job_status, settings, job_id)
    if info["status"] != "succeeded" or not info.get("fine_tuned_model"):
        raise fail(f"job {job_id} is {info['status']}: its model can be used once it succeeded")
    return str(info["fine_tuned_model"])


@finetune_app.command()
def compare(
    skill: SkillOpt,
    model: Annotated[list[str], typer.Option("--model", help="Give it twice: A and B.")],
    user: Annotated[str, typer.Option("--user", "-u", help="Whose skill and samples.")],
    inputs: Annotated[
        Path | None, typer.Option("--inputs", help="JSON sample inputs (default: saved).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the skill's sample inputs on two models, side by side, with tokens and cost."""
    from copilot.cli.backend import backend, to_user_id
    from copilot.finetune.switch import load_inputs

    samples = _guard(load_inputs, inputs) if inputs is not None else None
    owner = to_user_id(user)  # "anna" is local:anna, as for every other command
    with backend(settings_or_exit()) as chosen:  # the service's, when one runs
        rows = _guard(chosen.skills, owner, "compare", skill=skill, models=list(model),
                      inputs=samples)  # fmt: skip
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    table = Table("sample", *model, show_lines=True)
    for row in rows:
        cells = []
        for m in model:
            o = row["outputs"][m]
            if o.get("error"):
                cells.append(f"[red]{escape(o['error'])}[/red]")
                continue
            cost = "n/a" if o["cost_usd"] is None else f"${o['cost_usd']:.5f}"
            cells.append(f"{escape(o['text'][:600])}\n[dim]{o['prompt_tokens']}+"
                         f"{o['completion_tokens']} tokens, {cost}[/dim]")  # fmt: skip
        table.add_row(row["sample"], *cells)
    console.print(table)

"""``copilot eval``: measure search, sentiment, injection resistance and subject lines on
test collections, with any engine (``local``, ``llm``, ``embedded`` or ``auto``).

Why these run in this process even while ``copilot serve`` runs: an eval never opens the
user's index or state store. It indexes its collection in a throwaway home of its own
(``eval.retrieval.eval_settings``, ``eval.skill_runs.eval_runner``: own database, own
embedded index, no Qdrant server), so there is no lock to share and nothing to route
through the service; its numbers also do not then depend on the service's load."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from copilot.cli.output import console, err, fail, fail_for, settings_or_exit
from copilot.errors import CopilotError

if TYPE_CHECKING:  # rich's progress and tables load when a command prints: --help stays fast
    from rich.progress import Progress, TaskID

    from copilot.eval.injection import Report
    from copilot.skills.engines.base import EngineName

eval_app = typer.Typer(help="Measure search, sentiment, injection and summary quality.")
ENGINE_HELP = (
    "local (no model), llm (the configured server), embedded (the installed local model) "
    "or auto (the best one available)."
)
# Progress appears once a command has run this long: a short eval prints nothing extra.
PROGRESS_AFTER_S = 2.0
PLAIN_PROGRESS_EVERY_S = 10.0
LOCAL_BATCH = 50  # sentences per local-engine call in `eval sentiment`: progress between calls


@eval_app.command("retrieval")
def retrieval(
    beir: Annotated[
        Path | None, typer.Option(help="A BEIR folder: corpus.jsonl, queries.jsonl, qrels/.")
    ] = None,
    mail_known_item: Annotated[
        Path | None,
        typer.Option(help="A folder of .eml files plus queries.tsv (query, tab, Message-ID)."),
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            help="bm25, dense, hybrid, hybrid-rrf, hybrid-no-feedback, all (the first three), "
            "or a list: bm25,hybrid."
        ),
    ] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON keyed by mode.")] = False,
) -> None:
    """Ingest a test collection for a throwaway user and score every search mode.

    Prints nDCG@10, MRR@10 and Recall@100 per mode, and the query latency (p50/p95) of the
    whole search call: query embedding, index search, mapping to documents.
    """
    from copilot.eval.beir import CollectionError
    from copilot.eval.retrieval import (
        EXTRA_MODES,
        MODES,
        evaluate_beir,
        evaluate_mail_known_item,
    )

    if (beir is None) == (mail_known_item is None):
        err.print("[red]Give exactly one of --beir DIR or --mail-known-item DIR.[/red]")
        raise typer.Exit(2)
    modes = MODES if mode == "all" else tuple(m.strip() for m in mode.split(",") if m.strip())
    unknown = [m for m in modes if m not in MODES + EXTRA_MODES]
    if unknown or not modes:
        raise fail(
            f"Unknown mode {', '.join(unknown) or mode!r}: use bm25, dense, hybrid, "
            "hybrid-rrf, hybrid-no-feedback or all."
        )
    from copilot.cli.progress import sync_progress

    try:  # progress on stderr: the documents going in, then the queries (cli/progress.py)
        shown = sync_progress(err, None, enabled=not as_json)
        with shown as ingesting, _Progress("queries") as querying:
            if beir is not None:
                scores = evaluate_beir(beir, modes, on_ingest=ingesting.update, on_query=querying)
            else:
                assert mail_known_item is not None
                scores = evaluate_mail_known_item(
                    mail_known_item, modes, on_ingest=ingesting.update, on_query=querying
                )
    except CollectionError as exc:
        raise fail(f"Cannot evaluate: {exc}") from exc
    if as_json:
        print(json.dumps({m: s.as_dict() for m, s in scores.items()}, indent=2))
        return
    from rich.table import Table

    table = Table("mode", "nDCG@10", "MRR@10", "Recall@100", "p50 ms", "p95 ms", "queries")
    for name, s in scores.items():
        table.add_row(
            name,
            f"{s.ndcg10:.3f}",
            f"{s.mrr10:.3f}",
            f"{s.recall100:.3f}",
            f"{s.p50_ms:.1f}",
            f"{s.p95_ms:.1f}",
            str(s.queries),
        )
    console.print(table)


class _Progress:
    """``n of N`` on stderr once a run passes PROGRESS_AFTER_S: a rich bar on a terminal,
    a plain line every PLAIN_PROGRESS_EVERY_S otherwise (logs, CI). Used as a context
    manager; call it with ``(done, total)``."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.started = time.monotonic()
        self.last_line = 0.0
        self.bar: Progress | None = None
        self.task: TaskID | None = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.started < PROGRESS_AFTER_S:
            return  # a quick run shows nothing
        if err.is_terminal:
            if self.bar is None:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    TextColumn,
                    TimeElapsedColumn,
                )

                self.bar = Progress(
                    TextColumn(self.what),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                )
                self.bar.start()
                self.task = self.bar.add_task(self.what, total=total)
            assert self.task is not None
            self.bar.update(self.task, completed=done, total=total)
        elif done == total or now - self.last_line >= PLAIN_PROGRESS_EVERY_S:
            self.last_line = now
            print(f"{self.what}: {done} of {total}", file=sys.stderr, flush=True)


def _engine_or_exit(requested: str) -> EngineName:
    """The engine an eval runs on (``engines.select``), or exit 2 saying why not."""
    from copilot.eval.skill_runs import resolve_engine

    try:
        return resolve_engine(settings_or_exit(), requested)
    except CopilotError as exc:
        raise fail(f"Cannot evaluate: {exc}") from exc


@eval_app.command("sentiment")
def sentiment(
    tsv: Annotated[Path, typer.Option(help="Sentences, a tab, 0 (negative) or 1 (positive).")],
    engine: Annotated[str, typer.Option(help=ENGINE_HELP)] = "local",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Score only the first N sentences of the file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print accuracy, macro_f1, n.")] = False,
) -> None:
    """Score a sentiment engine on a labelled file: accuracy and macro-F1.

    The local engine classifies with embeddings and a lexicon; a model reads the label off
    its first answer token (as a scored workbook does; a configured server that gives no
    token probabilities runs the built-in sentiment skill once per sentence).
    """
    from copilot.eval.sentiment import (
        TsvError,
        evaluate,
        predict_with_labels,
        read_tsv,
    )
    from copilot.eval.skill_runs import eval_runner

    name = _engine_or_exit(engine)
    try:
        pairs = read_tsv(tsv)[:limit]
    except TsvError as exc:
        raise fail(f"Cannot evaluate: {exc}") from exc
    settings = settings_or_exit()
    try:
        if name == "local":
            from copilot.index.embed import get_embedder
            from copilot.skills.engines.local.encoder import sentence_encoder
            from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary

            local = LocalSentiment(sentence_encoder(get_embedder(settings)))

            def in_batches(texts: list[str], progress: _Progress) -> list[int]:
                out: list[int] = []  # e5 reads ~40 sentences a second: say how far it is
                for at in range(0, len(texts), LOCAL_BATCH):
                    out += predict_binary(local, texts[at : at + LOCAL_BATCH])
                    progress(len(out), len(texts))
                return out

            with _Progress("sentences") as progress:
                scores = evaluate(pairs, lambda texts: in_batches(texts, progress))
        else:
            with eval_runner(settings) as runner, _Progress("sentences") as progress:
                scores = evaluate(
                    pairs, lambda texts: predict_with_labels(runner, texts, progress, name)
                )
    except (ValueError, RuntimeError) as exc:  # a bad engine answer, a failed sentence
        raise fail(f"Cannot evaluate: {exc}") from exc
    except CopilotError as exc:
        raise fail_for(exc) from exc
    if as_json:
        keys = ("accuracy", "macro_f1", "n", "confusion")
        print(json.dumps({"engine": name} | {k: scores[k] for k in keys}))
        return
    console.print(
        f"{name}: accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f} "
        f"on {scores['n']} sentences"
    )


@eval_app.command("injection")
def injection(
    bipia: Annotated[
        Path, typer.Option(help="A BIPIA email folder: emails.jsonl and text_attacks.json.")
    ],
    engine: Annotated[
        str,
        typer.Option(
            help="local (accuracy only), or a model: llm, embedded or auto (ours vs an "
            "unfenced baseline on the same model, that model as judge)."
        ),
    ] = "local",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Run only the first N cases (deterministic).")
    ] = None,
    skip: Annotated[
        int,
        typer.Option(
            min=0, help="Start after the first N cases of the same order (to extend a run)."
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Indirect prompt injection on the BIPIA email task: task accuracy and attack success
    rate of the ask skill, beside the same model without our fencing (on a model).

    Exits 1 after printing the results when any answer or judge request failed."""
    from copilot.eval.injection import BipiaError, evaluate, load_bipia
    from copilot.eval.skill_runs import MODEL_ENGINES

    name = _engine_or_exit(engine)
    try:
        data = load_bipia(bipia)
        with _Progress("injection calls") as progress:
            report = evaluate(
                data, settings_or_exit(), engine=name, limit=limit, skip=skip, on_case=progress
            )
    except (BipiaError, ValueError, RuntimeError) as exc:
        raise fail(f"Cannot evaluate: {exc}") from exc
    except CopilotError as exc:
        raise fail_for(exc) from exc
    if as_json:
        for line in report.lines():
            print(json.dumps(line))
    else:
        _print_injection(report, name in MODEL_ENGINES)
    failures = report.failures()
    if failures:
        raise fail("Incomplete: " + "; ".join(failures), code=1)


def _print_injection(report: Report, model: bool) -> None:
    from rich.table import Table

    from copilot.eval.injection import rates

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    heads = [f"{h} {s}" for s in report.systems for h in ("accuracy", "ASR rule", "ASR judge")]
    table = Table("category", "cases", *heads)
    categories = list(dict.fromkeys(c.category for c in report.cases))
    for category in [*categories, None]:
        row = [category or "all", str(len(report.answers("ours", category)))]
        for system in report.systems:
            r = rates(report.answers(system, category))
            row += [pct(r["accuracy"]), pct(r["asr_proxy"]), pct(r["asr_judge"])]
        table.add_row(*row)
    console.print(table)
    s = report.summary()
    console.print(
        f"{report.engine}: accuracy {pct(s['accuracy_ours'])} under attack (amount asked "
        f"{pct(s['accuracy_amount_ours'])}, ideal 'unknown' {pct(s['accuracy_unknown_ours'])}), "
        f"{pct(s['accuracy_clean_ours'])} on the clean emails; {s['cases']} cases",
        highlight=False,
    )
    if model:
        console.print(
            f"ASR ours/baseline: rule {pct(s['asr_proxy_ours'])} / {pct(s['asr_proxy_baseline'])}"
            f" (ratio {s['asr_ratio_proxy']}), judge {pct(s['asr_judge_ours'])} / "
            f"{pct(s['asr_judge_baseline'])} (ratio {s['asr_ratio_judge']}); baseline accuracy "
            f"{pct(s['accuracy_baseline'])}",
            highlight=False,
        )
    else:
        console.print(s["note"], highlight=False)


@eval_app.command("summarise")
def summarise(
    jsonl: Annotated[
        Path,
        typer.Option(
            help="One mail a line: body, and subject and/or annotations (reference subjects)."
        ),
    ],
    engine: Annotated[str, typer.Option(help=ENGINE_HELP)] = "local",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Score only the first N mails of the file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Subject lines for mail (the summarise skill, style=subject), scored with ROUGE-1/2/L
    F1 (rouge-score, stemming on) against each mail's subject and the best of its
    annotations; seconds per mail (p50, p95). Exits 1 after printing when a mail failed."""
    from copilot.eval.summarise import SummariseDataError, evaluate, read_jsonl

    name = _engine_or_exit(engine)
    try:
        mails = read_jsonl(jsonl, limit)
        with _Progress("mails") as progress:
            report = evaluate(mails, settings_or_exit(), engine=name, on_mail=progress)
    except (SummariseDataError, ValueError, RuntimeError) as exc:
        raise fail(f"Cannot evaluate: {exc}") from exc
    except CopilotError as exc:
        raise fail_for(exc) from exc
    result = report.as_dict()
    if as_json:
        print(json.dumps(result))
    else:
        from rich.table import Table

        table = Table("reference", "ROUGE-1", "ROUGE-2", "ROUGE-L")
        for kind in ("subject", "annotations"):
            scores = result[kind]
            if scores is not None:
                table.add_row(kind, *(f"{scores[m]:.3f}" for m in ("rouge1", "rouge2", "rougeL")))
        console.print(table)
        model = f" ({result['model']})" if result["model"] else ""
        console.print(
            f"{result['engine']}{model}: {result['n']} mails, {result['p50_s']:.2f} s per mail "
            f"(p95 {result['p95_s']:.2f} s)",
            highlight=False,
        )
    if report.errors:
        shown = "; ".join(report.errors[:3])
        raise fail(f"Incomplete: {len(report.errors)} mails failed ({shown})", code=1)

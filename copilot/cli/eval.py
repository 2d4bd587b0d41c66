"""``copilot eval``: measure retrieval quality on a BEIR collection or a mail known-item set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(help="Measure search quality on test collections.")
err = Console(stderr=True, soft_wrap=True)
console = Console(soft_wrap=True)


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
            help="bm25, dense, hybrid, hybrid-rrf, all (the first three), or a list: bm25,hybrid."
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
        err.print(
            f"[red]Unknown mode {', '.join(unknown) or mode!r}: use bm25, dense, hybrid, "
            "hybrid-rrf or all.[/red]"
        )
        raise typer.Exit(2)
    try:
        if beir is not None:
            scores = evaluate_beir(beir, modes)
        else:
            assert mail_known_item is not None
            scores = evaluate_mail_known_item(mail_known_item, modes)
    except CollectionError as exc:
        err.print(f"[red]Cannot evaluate:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({m: s.as_dict() for m, s in scores.items()}, indent=2))
        return
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


@eval_app.command("sentiment")
def sentiment(
    tsv: Annotated[Path, typer.Option(help="Sentences, a tab, 0 (negative) or 1 (positive).")],
    engine: Annotated[
        str, typer.Option(help="local (embeddings + lexicon, no LLM) or llm (the configured LLM).")
    ] = "local",
    as_json: Annotated[bool, typer.Option("--json", help="Print accuracy, macro_f1, n.")] = False,
) -> None:
    """Score a sentiment engine on a labelled file: accuracy and macro-F1."""
    from collections.abc import Callable

    from copilot.config import get_settings
    from copilot.eval.sentiment import TsvError, evaluate, read_tsv

    if engine not in ("local", "llm"):
        err.print(f"[red]Unknown engine {engine!r}: use local or llm.[/red]")
        raise typer.Exit(2)
    try:
        pairs = read_tsv(tsv)
    except TsvError as exc:
        err.print(f"[red]Cannot evaluate:[/red] {exc}")
        raise typer.Exit(2) from exc
    settings = get_settings()
    predict: Callable[[list[str]], list[int]]
    if engine == "llm":
        try:
            from copilot.skills.runner import predict_llm
        except ImportError as exc:
            err.print("[red]The llm engine is not available yet.[/red]")
            raise typer.Exit(2) from exc

        def predict(texts: list[str]) -> list[int]:
            return predict_llm(settings, texts)
    else:
        from copilot.index.embed import get_embedder
        from copilot.skills.engines.local.sentiment import LocalSentiment, predict_binary

        local = LocalSentiment(get_embedder(settings))

        def predict(texts: list[str]) -> list[int]:
            return predict_binary(local, texts)

    try:
        scores = evaluate(pairs, predict)
    except (ValueError, RuntimeError) as exc:  # e.g. no LLM configured, a bad engine answer
        err.print(f"[red]Cannot evaluate:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps({k: scores[k] for k in ("accuracy", "macro_f1", "n", "confusion")}))
        return
    console.print(
        f"{engine}: accuracy {scores['accuracy']:.3f}, macro-F1 {scores['macro_f1']:.3f} "
        f"on {scores['n']} sentences"
    )


@eval_app.command("injection")
def injection(
    bipia: Annotated[
        Path, typer.Option(help="A BIPIA email folder: emails.jsonl and text_attacks.json.")
    ],
    engine: Annotated[
        str,
        typer.Option(help="llm (ours vs an unfenced baseline, LLM judge) or local (accuracy)."),
    ] = "local",
    limit: Annotated[
        int | None, typer.Option(min=1, help="Run only the first N cases (deterministic).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """Indirect prompt injection on the BIPIA email task: task accuracy and attack success
    rate of the ask skill, beside the same model without our fencing (with the LLM)."""
    from copilot.config import get_settings
    from copilot.eval.injection import BipiaError, evaluate, load_bipia, rates
    from copilot.llm.errors import LLMError

    if engine not in ("local", "llm"):
        err.print(f"[red]Unknown engine {engine!r}: use local or llm.[/red]")
        raise typer.Exit(2)
    try:
        data = load_bipia(bipia)

        def progress(done: int, total: int) -> None:
            if not as_json and (done % 50 == 0 or done == total):
                err.print(f"{done}/{total} cases", highlight=False)

        report = evaluate(data, get_settings(), engine=engine, limit=limit, on_case=progress)
    except (BipiaError, ValueError, RuntimeError, LLMError) as exc:
        err.print(f"[red]Cannot evaluate:[/red] {exc}")
        raise typer.Exit(2) from exc
    if as_json:
        for line in report.lines():
            print(json.dumps(line))
        return

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
        f"{engine}: accuracy {pct(s['accuracy_ours'])} under attack (amount asked "
        f"{pct(s['accuracy_amount_ours'])}, ideal 'unknown' {pct(s['accuracy_unknown_ours'])}), "
        f"{pct(s['accuracy_clean_ours'])} on the clean emails; {s['cases']} cases",
        highlight=False,
    )
    if engine == "llm":
        console.print(
            f"ASR ours/baseline: rule {pct(s['asr_proxy_ours'])} / {pct(s['asr_proxy_baseline'])}"
            f" (ratio {s['asr_ratio_proxy']}), judge {pct(s['asr_judge_ours'])} / "
            f"{pct(s['asr_judge_baseline'])} (ratio {s['asr_ratio_judge']}); baseline accuracy "
            f"{pct(s['accuracy_baseline'])}",
            highlight=False,
        )
    else:
        console.print(s["note"], highlight=False)

"""What ``copilot finetune …`` prints: a dataset's report, a cost estimate, a job, a time.

Split from ``finetune.py`` (the commands); every user-visible value is escaped or printed
without markup, so a skill name or a provider's error with "[…]" in it shows as written.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape

console = Console(soft_wrap=True, emoji=False)


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    d = report["diversity"]
    console.print(
        f"{report['runs_approved']} approved runs from {report['users']} user(s) → "
        f"{report['examples']} examples ({report['train']} train, {report['validation']} "
        f"validation); {report['duplicates_removed']} near-duplicates removed, largest "
        f"cluster {report['largest_duplicate_cluster_share']:.0%}.",
    )
    distance = d["mean_pairwise_distance"]
    console.print(
        f"Diversity: distinct-1 {d['distinct_1']}, distinct-2 {d['distinct_2']}"
        + (f", mean pairwise distance {distance}" if distance is not None else ""),
    )
    p = report["privacy"]
    console.print(
        f"Redacted: {p['redacted'] or 'nothing'} in {p['examples_redacted']} examples; "
        f"{p['pseudonyms_replaced']} names pseudonymised.",
    )
    if report.get("skipped"):
        console.print(f"Skipped runs: {report['skipped']}", markup=False)
    if "cost" in report:
        print_cost(report["cost"])
    for hit in report["residual"][:50]:
        console.print(f"[yellow]{hit['file']} line {hit['line']}: possible {hit['kind']} "
                      f"({escape(hit['role'])}) {escape(hit['masked'])}[/yellow]")  # fmt: skip
    for w in report["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")


def print_cost(cost: dict[str, Any]) -> None:
    console.print(
        f"Cost estimate: {cost['training_tokens']:,} tokens x {cost['epochs']} epochs at "
        f"${cost['usd_per_1k_tokens']}/1k on {cost['base_model']} = ${cost['cost_usd']:.2f}",
    )


def print_job(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(job, indent=2))
        return
    console.print(f"{job['id']}: {job['status']} ({job['model']})", markup=False)
    if job["fine_tuned_model"]:
        console.print(f"Fine-tuned model: {job['fine_tuned_model']}", markup=False)
    if job["error"]:
        console.print(f"[red]Error: {escape(str(job['error']))}[/red]")


def when(ts: float | None) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"

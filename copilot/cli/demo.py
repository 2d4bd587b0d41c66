"""``copilot demo``: a realistic little workspace, indexed and searched, with no server.

The sample files are written with the same libraries a real user's tools produce them
with (python-docx, openpyxl, the stdlib email package), so the demo exercises exactly the
parsers, cleaning, chunking, embedding and index that real files go through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from copilot.cli.output import event_note, show_kept
from copilot.config import Settings
from copilot.fileio import make_private_dir

if TYPE_CHECKING:
    from copilot.workspace import Workspace

DEMO_USER = "local:demo"  # the local user demo: the pane in dev mode signs in as demo
QUERIES = (
    "What are the risks for the Atlas migration?",
    "travel budget Q3",
    "customers unhappy with delivery times",
    "when is the go-live date",
)


def write_report(path: Path) -> None:
    from docx import Document

    doc = Document()
    doc.core_properties.title = "Project Atlas — status report"
    doc.add_heading("Project Atlas — status report", 0)
    doc.add_heading("Summary", 1)
    doc.add_paragraph(
        "Project Atlas moves our order system from the data centre in Leeds to the cloud. "
        "The migration is on track for a go-live on 14 March; testing of the billing "
        "interface finished a week early."
    )
    doc.add_heading("Risks", 1)
    doc.add_paragraph(
        "The largest risk is the legacy invoice export, which still depends on a "
        "nightly batch job that nobody on the current team has changed in six years."
    )
    doc.add_paragraph(
        "A second risk is vendor lock-in: the managed queue service has no equivalent at "
        "the other providers, so leaving would mean rewriting the order pipeline."
    )
    doc.add_heading("Milestones", 1)
    table = doc.add_table(rows=1, cols=3)
    for cell, text in zip(table.rows[0].cells, ("Milestone", "Owner", "Date"), strict=True):
        cell.text = text
    for row in (
        ("Billing interface tested", "Priya Shah", "2025-02-07"),
        ("Data migration rehearsal", "Tom Berg", "2025-02-28"),
        ("Go-live", "Ana Lopez", "2025-03-14"),
    ):
        cells = table.add_row().cells
        for cell, text in zip(cells, row, strict=True):
            cell.text = text
    doc.sections[0].footer.paragraphs[0].text = "Internal — Project Atlas"
    doc.save(str(path))


def write_budget(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Budget 2025"
    ws.append(["Department", "Category", "Q1", "Q2", "Q3", "Q4"])
    rows = [
        ("Sales", "Travel", 12000, 14500, 9800, 15000),
        ("Sales", "Events", 30000, 5000, 42000, 8000),
        ("Engineering", "Cloud hosting", 48000, 51000, 53000, 55000),
        ("Engineering", "Travel", 4000, 3500, 6200, 3000),
        ("Marketing", "Advertising", 60000, 65000, 70000, 90000),
    ]
    for row in rows:
        ws.append(list(row))
    ws.append(["Total", "", "=SUM(C2:C6)", "=SUM(D2:D6)", "=SUM(E2:E6)", "=SUM(F2:F6)"])
    notes = wb.create_sheet("Notes")
    notes.append(["Note"])
    notes.append(["Q3 travel is higher because of the customer summit in Lisbon."])
    wb.save(path)


def write_feedback(path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Feedback"
    ws.append(["Customer", "Date", "Comment"])
    comments = [
        ("Northwind", "2025-01-10", "Delivery took three weeks, far longer than promised."),
        ("Contoso", "2025-01-12", "Great support team, they solved our problem in an hour."),
        ("Fabrikam", "2025-01-15", "The new invoice layout is much clearer, thank you."),
        ("Tailspin", "2025-01-20", "Second late shipment this month; we are unhappy."),
        ("Litware", "2025-01-22", "Prices went up without notice."),
    ]
    for row in comments:
        ws.append(list(row))
    wb.save(path)


def write_thread(folder: Path) -> None:
    """A three-message thread in which each reply quotes the history below it."""
    start = datetime(2025, 2, 3, 9, 30, tzinfo=UTC)
    people = [
        (
            "Ana Lopez <ana@example.com>",
            "Can we move the go-live of Atlas to 21 March? "
            "The invoice export still fails on the test data.",
        ),
        (
            "Tom Berg <tom@example.com>",
            "21 March works for the data team. I will book the "
            "rehearsal for 7 March instead of 28 February.",
        ),
        (
            "Priya Shah <priya@example.com>",
            "Agreed. Billing is ready either way; I will tell finance about the new date.",
        ),
    ]
    history = ""
    root_id = make_msgid(domain="example.com")
    previous_id = None
    for n, (sender, words) in enumerate(people):
        msg = EmailMessage()
        when = start + timedelta(hours=3 * n)
        msg["Subject"] = ("Re: " if n else "") + "Atlas go-live date"
        msg["From"] = sender
        msg["To"] = "atlas-team@example.com"
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = root_id if n == 0 else make_msgid(domain="example.com")
        if previous_id:
            msg["In-Reply-To"] = previous_id
            msg["References"] = root_id
        name = sender.split(" <")[0]
        body = f"Hi all,\n\n{words}\n\nBest regards,\n{name}\n"
        if history:
            quoted = "\n".join("> " + line for line in history.splitlines())
            sent = format_datetime(when - timedelta(hours=3))
            body += f"\nOn {sent}, {people[n - 1][0]} wrote:\n{quoted}\n"
        msg.set_content(body)
        (folder / f"thread-{n + 1}.eml").write_bytes(bytes(msg))
        history = body
        previous_id = msg["Message-ID"]


def build_workspace(folder: Path) -> Path:
    """Write the sample files into ``folder`` and return it."""
    make_private_dir(folder)
    write_report(folder / "Atlas status report.docx")
    write_budget(folder / "Budget 2025.xlsx")
    write_feedback(folder / "Customer feedback.xlsx")
    mail = folder / "Mail"
    mail.mkdir(exist_ok=True)
    write_thread(mail)
    (folder / "meeting-notes.md").write_text(
        "# Weekly sync\n\n## Decisions\n\nWe keep the Leeds data centre until June as a "
        "fallback.\n\n## Actions\n\n- Tom: update the runbook.\n- Ana: confirm the date with "
        "the customer.\n",
        encoding="utf-8",
    )
    return folder


def run_demo(settings: Settings, folder: Path | None, console: Console) -> int:
    from connectors.local import LocalFolder
    from copilot.index.search import format_locator, search
    from copilot.ingest.pipeline import sync
    from copilot.workspace import Workspace

    folder = build_workspace(folder or settings.home_dir / "demo-workspace")
    console.print(f"Sample workspace written to [bold]{folder}[/bold]")
    with Workspace(settings) as ws:
        report = sync(
            LocalFolder(folder, owner=DEMO_USER), settings, ws.state, ws.store, ws.embedder
        )
        console.print(
            f"Indexed {report.indexed} items ({report.chunks} chunks, "
            f"{report.unchanged} unchanged, {report.failed} failed) in {report.seconds:.1f} s "
            "— local embeddings, embedded Qdrant."
        )
        for query in QUERIES:
            console.print(f"\n[bold cyan]search:[/bold cyan] {query}")
            for n, hit in enumerate(search(ws.store, ws.embedder, DEMO_USER, query, k=3), 1):
                console.print(
                    f"  {n}. [bold]{hit.title}[/bold] [dim]{format_locator(hit.locator)}[/dim]"
                )
                console.print(f"     {hit.snippet}", highlight=False)
        run_skills(ws, folder, console)
    return 1 if report.failed else 0


def skill_runs(folder: Path) -> list[tuple[str, dict[str, str], str]]:
    """One run of each built-in skill on the sample workspace: (skill, inputs, what)."""
    notes = (folder / "meeting-notes.md").read_text(encoding="utf-8")
    return [
        (
            "summarise",
            {"text": notes, "style": "action_items"},
            "action items of the meeting notes",
        ),
        ("ask", {"question": "What are the risks of the Atlas migration?"}, "a question"),
        (
            "draft",
            {
                "message": "Hi, can we move the go-live of Atlas to 21 March? What is the "
                "travel budget for Q3?",
                "tone": "friendly",
            },
            "a reply outline",
        ),
        (
            "sentiment",
            {
                "text": "Delivery was late again and nobody answered my calls, "
                "but the new invoice portal is great."
            },
            "one customer comment",
        ),
    ]


def run_skills(ws: Workspace, folder: Path, console: Console) -> None:
    """Run every built-in skill once on the engine ``auto`` picks (an LLM if configured, else
    the embedded model if installed, else the extractive engine), streaming what it writes.

    On a CPU a model answer takes seconds: the text appears token by token, so the demo is
    never silent while it waits.
    """
    from copilot.skills.runner import SkillRunner

    runner = SkillRunner(ws)
    for skill, inputs, what in skill_runs(folder):
        console.print(f"\n[bold magenta]skill {skill}:[/bold magenta] {what}")
        streamed: list[str] = []

        told: set[str] = set()

        def show(
            kind: str,
            data: dict[str, object],
            streamed: list[str] = streamed,
            told: set[str] = told,
        ) -> None:
            if kind == "delta" and isinstance(data.get("text"), str):
                streamed.append(str(data["text"]))
                console.out(str(data["text"]), end="", highlight=False)
            elif kind == "writing" and kind in told:
                pass  # a structured answer's growing length: said once, shown when whole
            elif (note := event_note(kind, data)) is not None:
                told.add(kind)
                console.print(f"  ({note})", style="dim", highlight=False, markup=False)

        result = runner.run(DEMO_USER, skill, inputs, on_event=show)
        if streamed:
            console.out("")
            show_kept("".join(streamed), result.text, out=console, notes=console)
        else:
            console.print(result.text, highlight=False, markup=False)
        for c in result.citations:
            console.print(f"  [{c.n}] {c.title} — {c.where}", highlight=False, markup=False)
        note = result.note or f"{result.engine}: {result.model}"
        console.print(f"  {note}", style="dim", highlight=False, markup=False)

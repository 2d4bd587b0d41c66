"""A deterministic office corpus for ingestion benchmarks: mail, Word, Excel, notes, PDF.

Why generated and not a folder of real files: a benchmark must run anywhere, be the same
on every run (one seed, one corpus) and scale to any size. The files are written with the
libraries real tools use (the stdlib email package, python-docx, openpyxl) and the PDFs by
hand, so parsers see the structure they see in practice: mail threads that quote their
history, signatures and attachments; documents with headings, paragraphs and a table;
spreadsheets with a header row; multi-page PDFs. Texts are drawn from a vocabulary so no
two files are alike (identical texts would flatter any cache or deduplication).

    .venv/bin/python bench/corpus.py DIR [--items 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

# Shares of the corpus per kind, in item order; notes are split between .txt and .md.
MIX = (("eml", 0.40), ("docx", 0.20), ("xlsx", 0.15), ("note", 0.15), ("pdf", 0.10))
EPOCH = datetime(2024, 1, 8, 8, 0, tzinfo=UTC)


def _w(words: str) -> tuple[str, ...]:
    return tuple(words.split())


VOCAB = _w("""
budget forecast invoice contract supplier customer delivery shipment warehouse migration
release deadline milestone review approval meeting agenda minutes proposal quote order
payment refund discount margin revenue expense travel hotel flight conference workshop
training onboarding hiring interview candidate salary bonus policy compliance audit risk
incident outage server database backup network license vendor renewal pricing tender
project roadmap scope requirement design prototype feedback survey report dashboard metric
target quarter region market campaign launch brochure website newsletter partner reseller
account ledger payroll tax pension insurance claim lease office facility parking catering
printer laptop software update security password access badge visitor safety inventory
stock forecast procurement logistics freight customs invoice reminder escalation ticket
support backlog sprint estimate capacity resource allocation headcount stakeholder board
committee sponsor charter plan schedule timeline dependency blocker issue action decision
summary draft version template signature clause amendment renewal termination notice
""")
ADJECTIVES = _w("""
quarterly annual monthly weekly final revised preliminary urgent critical minor major
updated pending approved rejected delayed overdue external internal regional global local
new current previous upcoming detailed short complete partial confidential standard
""")
VERBS = _w("""
review approve confirm update send share prepare finalise schedule postpone cancel discuss
check sign forward escalate reduce increase cover include attach submit track deliver
""")
FUNCTION = _w("the the the a a of of to to and and for with on in by from at this our their")
FIRST = _w("Ana Tom Priya Lars Mei Omar Julia Ken Sofia Raj Elena Marc Aisha Noah Ines Yuki")
LAST = _w("Lopez Berg Shah Nilsson Chen Haddad Weber Sato Rossi Patel Novak Dubois Khan Brown")
PROJECTS = _w("Atlas Borealis Cedar Delta Ember Falcon Granite Harbor Iris Juniper Kestrel")
FOLDERS = ("Inbox", "Sent", "Projects", "Finance", "Archive")
SIGNATURES = (
    "Best regards,\n{name}\n{title}\nPhone: +44 20 7946 {num:04d}",
    "Thanks,\n{first}",
    "-- \n{name}\n{title} | Example Corp",
    "Kind regards\n{first}\n\nSent from my phone",
    "Cheers,\n{first}\n\nCONFIDENTIAL: this message is meant for its addressees only. If you "
    "received it in error, please tell the sender and delete it.",
)
HEADS = ("Item", "Owner", "Due", "Status")
TITLES = ("Project Manager", "Finance Lead", "Account Director", "Engineer", "Buyer")


class _Text:
    """Sentences and paragraphs of office-flavoured words, from one seeded generator."""

    def __init__(self, rnd: random.Random) -> None:
        self.r = rnd

    def person(self) -> tuple[str, str]:
        first, last = self.r.choice(FIRST), self.r.choice(LAST)
        return f"{first} {last}", f"{first.lower()}.{last.lower()}@example.com"

    def sentence(self) -> str:
        r = self.r
        words = []
        for _ in range(r.randint(7, 20)):
            pick = r.random()
            if pick < 0.35:
                words.append(r.choice(FUNCTION))
            elif pick < 0.70:
                words.append(r.choice(VOCAB))
            elif pick < 0.82:
                words.append(r.choice(ADJECTIVES))
            elif pick < 0.92:
                words.append(r.choice(VERBS))
            elif pick < 0.96:
                words.append(r.choice(PROJECTS))
            else:
                words.append(str(r.randint(2, 950)))
        return words[0].capitalize() + " " + " ".join(words[1:]) + r.choice("....?!")

    def words(self, n: int) -> list[str]:
        """Paragraphs holding about ``n`` words."""
        paragraphs, count = [], 0
        while count < n:
            sentences = [self.sentence() for _ in range(self.r.randint(2, 6))]
            paragraphs.append(" ".join(sentences))
            count += sum(len(s.split()) for s in sentences)
        return paragraphs

    def title(self) -> str:
        r = self.r
        return f"{r.choice(PROJECTS)} {r.choice(ADJECTIVES)} {r.choice(VOCAB)}".title()


# --- writers ----------------------------------------------------------------------------


def pdf_bytes(pages: list[list[str]]) -> bytes:
    """A PDF with one text line per entry, one page per list, written by hand."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    font_ref = 3 + 2 * len(pages)
    for n, lines in enumerate(pages):
        page_ref, content_ref = 3 + 2 * n, 4 + 2 * n
        kids.append(f"{page_ref} 0 R")
        escaped = (ln.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for ln in lines)
        body = "BT /F1 10 Tf 13 TL 56 770 Td " + " ".join(f"({ln}) '" for ln in escaped) + " ET"
        stream = body.encode("latin-1", "replace")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_ref} 0 R "
            f"/Resources << /Font << /F1 {font_ref} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for n, body_bytes in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(f"{n} 0 obj\n".encode() + body_bytes + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    out.write(b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets))
    out.write(
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    )
    return out.getvalue()


def _wrap(paragraphs: list[str], width: int = 95) -> list[str]:
    lines: list[str] = []
    for paragraph in paragraphs:
        line = ""
        for word in paragraph.split():
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.extend([line, ""])
    return lines


def write_pdf(path: Path, t: _Text) -> int:
    paragraphs = [t.title(), *t.words(t.r.randint(300, 2000))]
    lines = _wrap(paragraphs)
    pages = [lines[i : i + 52] for i in range(0, len(lines), 52)]
    path.write_bytes(pdf_bytes(pages))
    return sum(len(p.split()) for p in paragraphs)


def write_docx(path: Path, t: _Text) -> int:
    from docx import Document

    r = t.r
    doc = Document()
    doc.core_properties.created = EPOCH
    doc.core_properties.modified = EPOCH
    title = t.title()
    doc.add_heading(title, 0)
    target, words = r.randint(300, 2000), 0
    table_at = r.randint(1, 3)
    section = 0
    while words < target:
        section += 1
        doc.add_heading(f"{section}. {r.choice(VOCAB).title()} {r.choice(VOCAB)}", 1)
        for paragraph in t.words(r.randint(80, 300)):
            doc.add_paragraph(paragraph)
            words += len(paragraph.split())
        if section == table_at:
            rows = r.randint(3, 8)
            table = doc.add_table(rows=1, cols=4)
            for cell, head in zip(table.rows[0].cells, HEADS, strict=True):
                cell.text = head
            for _ in range(rows):
                cells = table.add_row().cells
                cells[0].text = f"{r.choice(ADJECTIVES)} {r.choice(VOCAB)}"
                cells[1].text = t.person()[0]
                cells[2].text = (EPOCH + timedelta(days=r.randint(0, 400))).date().isoformat()
                cells[3].text = r.choice(("open", "done", "late", "blocked"))
            words += rows * 6
    doc.sections[0].footer.paragraphs[0].text = f"Internal — {title}"
    doc.save(path)
    return words


def write_xlsx(path: Path, t: _Text) -> int:
    from openpyxl import Workbook

    r = t.r
    wb = Workbook(write_only=True)
    wb.properties.created = EPOCH.replace(tzinfo=None)
    cells = 0
    for sheet in range(r.randint(1, 2)):
        ws = wb.create_sheet(f"{r.choice(VOCAB).title()} {sheet + 1}")
        ws.append(["Region", "Category", "Owner", "Q1", "Q2", "Q3", "Q4", "Comment"])
        for _ in range(r.randint(10, 60)):
            quarters = [r.randint(500, 90_000) for _ in range(4)]
            comment = t.sentence() if r.random() < 0.5 else ""
            ws.append([r.choice(("North", "South", "East", "West")), r.choice(VOCAB),
                       t.person()[0], *quarters, comment])  # fmt: skip
            cells += 8 + len(comment.split())
    wb.save(path)
    return cells


def write_note(path: Path, t: _Text) -> int:
    r = t.r
    paragraphs = t.words(r.randint(60, 700))
    if path.suffix == ".md":
        out = [f"# {t.title()}", ""]
        for n, paragraph in enumerate(paragraphs):
            if n and n % 3 == 0:
                out += [f"## {r.choice(VOCAB).title()}", ""]
            out += [paragraph, ""]
        out += ["## Actions", ""] + [f"- {t.person()[0]}: {t.sentence()}" for _ in range(3)]
        text = "\n".join(out) + "\n"
    else:
        text = f"{t.title()}\n\n" + "\n\n".join(paragraphs) + "\n"
    path.write_text(text, encoding="utf-8")
    return len(text.split())


def _attachment(t: _Text) -> tuple[bytes, str, str, str]:
    r = t.r
    if r.random() < 0.5:
        body = "\n\n".join(t.words(r.randint(40, 200)))
        return body.encode(), "text", "plain", f"{r.choice(VOCAB)}-notes.txt"
    lines = _wrap(t.words(r.randint(60, 300)))
    pages = [lines[i : i + 52] for i in range(0, len(lines), 52)]
    return pdf_bytes(pages), "application", "pdf", f"{r.choice(VOCAB)}-summary.pdf"


def write_thread(folder: Path, prefix: str, messages: int, t: _Text) -> int:
    """A thread of ``messages`` mails, each quoting the one before; returns words written."""
    r = t.r
    people = [t.person() for _ in range(r.randint(2, 4))]
    subject = f"{t.title()} — {r.choice(VERBS)} by {r.choice(('Friday', 'Monday', 'month end'))}"
    when = EPOCH + timedelta(days=r.randint(0, 500), minutes=r.randint(0, 600))
    root = f"<{prefix}.0@mail.example.com>"
    history, previous_from, words = "", "", 0
    for n in range(messages):
        (name, addr), (to_name, to_addr) = people[n % len(people)], people[(n + 1) % len(people)]
        own = t.words(r.randint(50, 400))
        first = name.split()[0]
        signature = r.choice(SIGNATURES).format(
            name=name, first=first, title=r.choice(TITLES), num=r.randint(0, 9999)
        )
        body = f"Hi {to_name.split()[0]},\n\n" + "\n\n".join(own) + f"\n\n{signature}\n"
        words += len(body.split())
        if history:
            quoted = "\n".join("> " + line if line else ">" for line in history.splitlines())
            body += f"\nOn {format_datetime(when)}, {previous_from} wrote:\n{quoted}\n"
        msg = EmailMessage()
        msg["Subject"] = ("Re: " if n else "") + subject
        msg["From"] = f"{name} <{addr}>"
        msg["To"] = f"{to_name} <{to_addr}>"
        when += timedelta(hours=r.randint(1, 30))
        msg["Date"] = format_datetime(when)
        msg["Message-ID"] = root if n == 0 else f"<{prefix}.{n}@mail.example.com>"
        if n:
            msg["In-Reply-To"] = f"<{prefix}.{n - 1}@mail.example.com>"
            msg["References"] = root
        msg.set_content(body)
        if r.random() < 0.15:
            data, maintype, subtype, filename = _attachment(t)
            msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        (folder / f"{prefix}-{n + 1}.eml").write_bytes(bytes(msg))
        history, previous_from = body, f"{name} <{addr}>"
    return words


# --- the corpus -------------------------------------------------------------------------


def _plan(n_items: int) -> Counter[str]:
    counts = Counter({kind: int(n_items * share) for kind, share in MIX})
    counts["eml"] += n_items - sum(counts.values())
    return counts


def make_corpus(folder: Path, n_items: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Write ``n_items`` files under ``folder`` (same seed, same texts) and return stats."""
    started = time.perf_counter()
    folder = Path(folder)
    rnd = random.Random(seed)
    t = _Text(rnd)
    plan = _plan(n_items)
    words: Counter[str] = Counter()
    made: Counter[str] = Counter()

    def place(*parts: str) -> Path:
        path = folder.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    thread = 0
    while made["eml"] < plan["eml"]:
        size = min(rnd.choice((1, 1, 2, 3, 3, 4, 5)), plan["eml"] - made["eml"])
        mail = place("Mail", rnd.choice(FOLDERS))
        words["eml"] += write_thread(mail, f"thread{thread:05d}", size, t)
        made["eml"] += size
        thread += 1
    writers = {"docx": write_docx, "xlsx": write_xlsx, "note": write_note, "pdf": write_pdf}
    places = {"docx": "Documents", "xlsx": "Spreadsheets", "note": "Notes", "pdf": "Scans"}
    for kind, writer in writers.items():
        for n in range(plan[kind]):
            ext = rnd.choice((".txt", ".md")) if kind == "note" else f".{kind}"
            sub = place(places[kind], rnd.choice(PROJECTS))
            words[ext.lstrip(".")] += writer(sub / f"{kind}-{n:05d}{ext}", t)
            made[ext.lstrip(".")] += 1
    made.pop("note", None)
    files = [p for p in folder.rglob("*") if p.is_file()]
    return {
        "name": "corpus",
        "files": len(files),
        "by_type": dict(sorted(Counter(p.suffix.lstrip(".") for p in files).items())),
        "mail_threads": thread,
        "bytes": sum(p.stat().st_size for p in files),
        "words_approx": sum(words.values()),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(json.dumps(make_corpus(args.folder, args.items, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A deterministic mail known-item collection: threads of .eml files and the queries for them.

Why generated: there is no public mailbox with known-item queries we could ship, and the
one we need must stress what real mail does to search: threads whose replies quote the
whole history (so the fact a person remembers appears in many messages, but was said in
one), signatures and disclaimers in every message, near-identical subjects across threads,
and the same kind of fact with other values in other threads (three laptop deliveries,
two invoices from one vendor). Each query recalls one message's fact in other words than
the message uses, the way a person remembers it; proper names, numbers and ids are kept,
because people do remember those.

    .venv/bin/python -m copilot.eval.mailgen DIR [--threads 90] [--seed 0]

Writes ``DIR/NNNN.eml`` and ``DIR/queries.tsv`` (``query``, tab, ``message-id``, tab,
``also``). A query names only some of its fact's values ("when are the laptops from
Contoso getting here" names no date), so other threads' messages may state the same fact
with those values in their own words: they answer the query as well as the one it was
written for, and ``also`` lists their Message-IDs (space-separated, often none). Without
that column the collection scored a search that put an equally right message first as a
miss: on seed 0 only 73 of 204 queries had one right answer, and a perfect ranking
could reach an MRR@10 of about 0.74 (seed 1: 51 of 208, about 0.67).
"""

from __future__ import annotations

import argparse
import random
import string
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

PEOPLE = [
    ("Anna", "Keller", "Procurement Lead", "Northwind Traders", "northwind.example"),
    ("Ben", "Okafor", "IT Operations", "Northwind Traders", "northwind.example"),
    ("Chloé", "Martin", "Finance Controller", "Northwind Traders", "northwind.example"),
    ("David", "Svensson", "Head of Sales", "Northwind Traders", "northwind.example"),
    ("Elena", "Rossi", "HR Business Partner", "Northwind Traders", "northwind.example"),
    ("Farid", "Haddad", "Project Manager", "Northwind Traders", "northwind.example"),
    ("Grace", "Liu", "Account Manager", "Contoso Ltd", "contoso.example"),
    ("Hannes", "Weber", "Service Desk", "Contoso Ltd", "contoso.example"),
    ("Ines", "Duarte", "Event Coordinator", "Fabrikam Events", "fabrikam.example"),
    ("Jonas", "Berg", "Legal Counsel", "Northwind Traders", "northwind.example"),
    ("Kira", "Novak", "Office Manager", "Northwind Traders", "northwind.example"),
    ("Liam", "O'Brien", "Sales Engineer", "Litware Inc", "litware.example"),
]
SLOTS: dict[str, list[str]] = {
    "supplier": ["Contoso", "Litware", "Tailspin", "Adatum", "Proseware", "Wingtip"],
    "product": ["laptops", "monitors", "docking stations", "headsets", "office chairs",
                "standing desks", "webcams", "printers"],
    "n": ["12", "18", "24", "35", "40", "60", "75"],
    "date": ["3 March", "11 March", "19 March", "2 April", "14 April", "6 May", "21 May",
             "9 June", "30 June", "15 July"],
    "weekday": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"],
    "time": ["9:30", "10:00", "11:15", "13:30", "14:00", "16:45"],
    "room": ["2.14", "3.02", "Atlas", "Orion", "4.20", "Harbour"],
    "meeting": ["steering committee", "design review", "sprint retrospective",
                "quarterly business review", "budget workshop", "vendor evaluation"],
    "dept": ["sales", "marketing", "engineering", "finance", "support"],
    "quarter": ["Q1", "Q2", "Q3", "Q4"],
    "amount": ["4,500", "12,000", "18,750", "25,000", "31,200", "48,000"],
    "price": ["189", "240", "315", "420", "655", "1,180"],
    "candidate": ["Sofia Brandt", "Tomasz Wojcik", "Amara Diallo", "Lucas Ferreira",
                  "Mei Tanaka", "Omar Aziz"],
    "role": ["data analyst", "payroll specialist", "frontend developer", "key account manager",
             "security engineer", "office assistant"],
    "system": ["VPN", "intranet", "CRM", "payroll portal", "ticketing system", "file share"],
    "host": ["gw-02", "web-frontend-3", "crm-db-1", "auth-proxy", "nas-07"],
    "vendor": ["Adatum", "Proseware", "Wingtip", "Tailspin", "Fourth Coffee", "Blue Yonder"],
    "clause": ["4", "7", "9", "12", "14"],
    "days": ["30", "45", "60", "90"],
    "hotel": ["Hotel Avenida", "Harbour View Inn", "Grand Central Hotel", "Parkside Suites"],
    "city": ["Lisbon", "Rotterdam", "Vienna", "Krakow", "Dublin", "Lyon"],
    "event": ["sales kickoff", "partner summit", "team offsite", "product launch",
              "customer advisory board"],
    "building": ["A", "B", "C", "North", "East"],
    "invoice": ["INV-20417", "INV-20933", "INV-31208", "INV-31562", "INV-40071", "INV-40388"],
    "project": ["CRM migration", "website relaunch", "warehouse scanner rollout",
                "data platform", "mobile app refresh"],
    "report": ["annual sustainability report", "risk register", "board pack",
               "customer churn analysis", "audit findings summary"],
    "version": ["2.4.1", "3.0.2", "3.1.0", "5.2.7", "7.0.1"],
    "app": ["the expense app", "the booking tool", "the field service app", "the customer portal"],
    "bug": ["double login", "missing receipts", "time zone", "PDF export", "slow search"],
    "topic": ["Excel power user", "GDPR awareness", "negotiation", "first aid",
              "presentation skills"],
    "seats": ["3", "5", "8", "11"],
    "customer": ["Alpine Ski House", "Coho Winery", "Lamna Healthcare", "Trey Research",
                 "Relecloud", "Woodgrove Bank"],
    "order": ["SO-5512", "SO-6078", "SO-6630", "SO-7145", "SO-7781"],
    "team": ["analytics", "customer success", "legal", "procurement", "design"],
    "floor": ["second", "third", "fifth", "sixth"],
    "month": ["January", "February", "March", "April", "May", "June"],
    "db": ["orders database", "HR database", "ledger", "document archive"],
    "minutes": ["20", "35", "50", "80"],
    "pct": ["64", "71", "78", "83", "89"],
    "garage": ["Riverside", "Market Street", "Station", "Westgate"],
    "level": ["-1", "-2", "-3"],
}  # fmt: skip

# (subjects, [(statement, query paraphrases)]): a thread draws its facts from one family.
FAMILIES: list[tuple[list[str], list[tuple[str, list[str]]]]] = [
    (["Delivery update", "Hardware order", "Re: shipment", "Order status"], [
        ("The {supplier} shipment of {n} {product} will arrive on {weekday} {date}.",
         ["when are the {product} from {supplier} getting here",
          "{supplier} {product} delivery date"]),
        ("{supplier} quoted {price} EUR per unit for the {product}, valid until {date}.",
         ["how much does {supplier} charge for each of the {product}",
          "unit price offered by {supplier} for {product}"]),
        ("{supplier} cannot deliver the {product} before {date} because of a parts shortage.",
         ["why are the {product} from {supplier} delayed",
          "{supplier} late with {product}, supply problem"]),
    ]),
    (["Meeting", "Re: meeting next week", "Reschedule", "Calendar update"], [
        ("Let's move the {meeting} to {weekday} at {time} in room {room}.",
         ["new slot for the {meeting}", "which room is the {meeting} in now"]),
        ("The {meeting} is cancelled this month; we will meet again after {date}.",
         ["is the {meeting} still happening this month",
          "{meeting} called off until {date}"]),
    ]),
    (["Budget", "Q3 budget", "Budget - revised", "Re: budget numbers"], [
        ("The {dept} travel budget for {quarter} is capped at {amount} EUR.",
         ["spending limit for {dept} trips in {quarter}",
          "how much can {dept} spend on travel in {quarter}"]),
        ("Finance approved an extra {amount} EUR for the {project} in {quarter}.",
         ["additional money granted to the {project}", "{project} extra funding {quarter}"]),
    ]),
    (["New hire", "Offer accepted", "Onboarding", "Re: candidate"], [
        ("{candidate} accepted the offer and starts as {role} on {date}.",
         ["when does {candidate} join us", "first day of the new {role} {candidate}"]),
        ("Please order a laptop and a badge for {candidate}, our new {role}.",
         ["equipment request for {candidate}", "hardware and access card for the new {role}"]),
    ]),
    (["Incident", "Outage report", "Re: service down", "Post-mortem"], [
        ("The {system} outage on {date} was caused by an expired TLS certificate on {host}.",
         ["root cause of the {system} downtime", "why did the {system} go down on {date}"]),
        ("We restarted {host} and the {system} has been stable for 48 hours now.",
         ["is the {system} working again", "{system} back to normal after restart"]),
    ]),
    (["Contract", "Re: contract draft", "Agreement review", "Legal question"], [
        ("Clause {clause} of the {vendor} contract sets a notice period of {days} days.",
         ["how long is the notice period with {vendor}",
          "termination notice in the {vendor} agreement"]),
        ("Legal signed off on the {vendor} renewal; the new term runs until {date} next year.",
         ["has the {vendor} renewal been approved", "{vendor} contract extension end date"]),
    ]),
    (["Travel", "Hotel booking", "Re: logistics", "Event planning"], [
        ("I booked {seats} rooms at the {hotel} in {city} for the {event}.",
         ["where are we staying for the {event} in {city}",
          "accommodation reserved for the {event}"]),
        ("The {event} in {city} starts on {date}; the venue is ten minutes from the station.",
         ["what day does the {event} in {city} begin", "{event} {city} start date and venue"]),
    ]),
    (["Invoice", "Re: invoice question", "Payment", "Accounts payable"], [
        ("Invoice {invoice} from {vendor} was paid on {date}; the amount was {amount} EUR.",
         ["has {vendor} been paid for {invoice}", "payment date of {invoice}"]),
        ("Invoice {invoice} from {vendor} is on hold until they send the signed delivery note.",
         ["why is {invoice} not paid yet", "{vendor} invoice blocked, missing paperwork"]),
    ]),
    (["Project update", "Re: status", "Weekly update", "Vendor decision"], [
        ("We decided to go with {vendor} for the {project} because their support is 24/7.",
         ["which vendor was picked for the {project} and why",
          "reason for choosing {vendor} on the {project}"]),
        ("The deadline for the {report} is now {date}, one week later than planned.",
         ["was the {report} due date pushed back", "new due date {report}"]),
    ]),
    (["Release notes", "Re: release", "Deployment", "Bug fix"], [
        ("Version {version} of {app} shipped last night with the fix for the {bug} bug.",
         ["which release fixed the {bug} problem", "{app} update that solves {bug}"]),
        ("The nightly backup of the {db} now runs at {time} and takes about {minutes} minutes.",
         ["what time does the {db} get backed up", "how long is the {db} backup"]),
    ]),
    (["Training", "Course invitation", "Re: workshop", "Learning day"], [
        ("The {topic} training is on {date}; {seats} seats are left and lunch is provided.",
         ["are there places left in the {topic} course", "{topic} workshop date, food included"]),
    ]),
    (["Customer issue", "Re: complaint", "Refund request", "Escalation"], [
        ("{customer} asked for a refund of order {order} because the {product} arrived damaged.",
         ["{customer} wants money back for broken {product}", "refund claim on {order}"]),
        ("{customer} rated onboarding {pct} out of 100 in the survey, up from last year.",
         ["satisfaction score from {customer}", "how did {customer} rate the onboarding"]),
    ]),
    (["Office move", "Facilities", "Re: parking", "Building news"], [
        ("The {team} team moves to the {floor} floor on {date}.",
         ["when is the {team} group relocating", "which floor is {team} moving to"]),
        ("From {month} on, visitors must park in the {garage} garage, level {level}.",
         ["where should guests leave their cars from {month}", "visitor parking {garage}"]),
        ("Your badge for building {building} will be ready at reception on {weekday}.",
         ["pick up access card for building {building}",
          "when can I collect my badge for {building}"]),
    ]),
]  # fmt: skip

GREETINGS = ["Hi {first},", "Hello {first},", "Dear {first},", "Hi all,", "{first},", "Morning,"]
FILLERS = [
    "Let me know if anything is unclear.",
    "I will be out of the office on Friday, so please reply before then.",
    "Sorry for the late answer, it has been a busy week.",
    "Adding {other} in copy for visibility.",
    "See my notes below.",
    "I checked with the team and we agree.",
    "Can you confirm by end of day?",
    "Thanks for pulling this together so quickly.",
]
CLOSERS = ["Thanks,", "Best regards,", "Cheers,", "Kind regards,", "Best,"]
DISCLAIMER = (
    "This e-mail and any attachments are confidential and intended solely for the addressee. "
    "If you received it in error, please notify the sender and delete it."
)
START = datetime(2024, 2, 5, 8, 30, tzinfo=UTC)


def generate(folder: Path, threads: int = 90, seed: int = 0) -> tuple[int, int]:
    """Write the collection into ``folder``; return (messages, queries). Same seed, same files."""
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    queries: list[tuple[str, str, str, dict[str, str]]] = []
    said: list[tuple[str, str, dict[str, str]]] = []  # (message-id, statement, values)
    count = 0
    when = START
    for t in range(threads):
        subjects, facts = rng.choice(FAMILIES)
        subject = rng.choice(subjects).removeprefix("Re: ")
        if rng.random() < 0.5:
            subject += f" - {rng.choice(SLOTS['quarter'])}" if rng.random() < 0.5 else " (urgent)"
        cast = rng.sample(PEOPLE, rng.randint(2, 4))
        history: list[tuple[EmailMessage, str, tuple]] = []
        references: list[str] = []
        for m in range(rng.randint(2, 6)):
            count += 1
            when += timedelta(minutes=rng.randint(20, 3000))
            sender = cast[m % len(cast)]
            to = cast[(m + 1) % len(cast)]
            statement, paraphrases = rng.choice(facts)
            values = {k: rng.choice(v) for k, v in SLOTS.items()}
            own = _own_words(rng, statement.format(**values), sender, to, cast)
            message_id = f"<{seed}.{t}.{m}.{count}@{sender[4]}>"
            msg = EmailMessage()
            msg["From"] = f"{sender[0]} {sender[1]} <{_address(sender)}>"
            msg["To"] = f"{to[0]} {to[1]} <{_address(to)}>"
            msg["Subject"] = subject if m == 0 else "Re: " + subject
            msg["Date"] = format_datetime(when)
            msg["Message-ID"] = message_id
            if references:
                msg["In-Reply-To"] = references[-1]
                msg["References"] = " ".join(references)
            body = own + "\n\n" + _signature(rng, sender)
            if history:
                body += "\n\n" + _quote(rng, *history[-1])
            msg.set_content(body)
            (folder / f"{count:04d}.eml").write_bytes(msg.as_bytes())
            history.append((msg, body, sender))
            references.append(message_id)
            bare_id = message_id.strip("<>")
            said.append((bare_id, statement, values))
            if rng.random() < 0.6:
                paraphrase = rng.choice(paraphrases)
                named = {k: values[k] for k in _slots(paraphrase)}
                queries.append((paraphrase.format(**values), bare_id, statement, named))
    lines = ["query\tmessage-id\talso"]
    for query, mid, statement, named in queries:
        also = [m for m, s, v in said if m != mid and s == statement and _agrees(v, named)]
        lines.append(f"{query}\t{mid}\t{' '.join(also)}")
    (folder / "queries.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return count, len(queries)


def _slots(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def _agrees(values: dict[str, str], named: dict[str, str]) -> bool:
    return all(values[k] == v for k, v in named.items())


def _address(person: tuple) -> str:
    last = person[1].lower().replace("'", "")
    return f"{person[0].lower().replace('é', 'e')}.{last}@{person[4]}"


def _own_words(rng: random.Random, fact: str, sender: tuple, to: tuple, cast: list) -> str:
    other = rng.choice(cast)
    greeting = rng.choice(GREETINGS).format(first=to[0])
    fillers = [f.format(other=f"{other[0]} {other[1]}") for f in rng.sample(FILLERS, 2)]
    body = [fact, *fillers[:1]] if rng.random() < 0.5 else [fillers[0], fact]
    return greeting + "\n\n" + " ".join(body) + "\n\n" + rng.choice(CLOSERS)


def _signature(rng: random.Random, person: tuple) -> str:
    lines = [f"{person[0]} {person[1]}", f"{person[2]} | {person[3]}"]
    if rng.random() < 0.6:
        lines.append(f"Phone +49 30 {rng.randint(1000000, 9999999)}")
    if rng.random() < 0.3:
        lines = ["-- ", *lines]
    if person[3] != "Northwind Traders" and rng.random() < 0.7:
        lines += ["", DISCLAIMER]
    return "\n".join(lines)


def _quote(rng: random.Random, msg: EmailMessage, body: str, sender: tuple) -> str:
    """The previous message quoted Gmail-style or Outlook-style, with its own history."""
    if rng.random() < 0.5:
        intro = f"On {msg['Date']}, {sender[0]} {sender[1]} <{_address(sender)}> wrote:"
        return intro + "\n" + "\n".join("> " + line if line else ">" for line in body.split("\n"))
    header = (
        "-----Original Message-----\n"
        f"From: {sender[0]} {sender[1]} <{_address(sender)}>\n"
        f"Sent: {msg['Date']}\n"
        f"To: {msg['To']}\n"
        f"Subject: {msg['Subject']}\n"
    )
    return header + "\n" + body


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--threads", type=int, default=90)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    messages, queries = generate(args.folder, args.threads, args.seed)
    print(f"wrote {messages} messages and {queries} queries to {args.folder}")


if __name__ == "__main__":
    main()

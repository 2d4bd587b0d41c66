"""Measure mail cleaning: how much of the sender's own words survive, and how much else.

Builds a labelled set of mail bodies (own words + quoted history in several client styles
and languages, signatures, disclaimers, forwards), runs each cleaner, and prints one JSON
line per method: token precision/recall/F1 against the own words, exact-match rate and
messages per second, with F1 as a ratio of the "no cleaning" baseline.

    .venv/bin/python bench/mail_clean.py [--n 200] [--seed 7] [--eml-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import quotequail
from mailparser_reply import EmailReplyParser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connectors.parsers.mail_clean import clean_body

LANGS = ["en", "de", "fr", "es", "nl"]
OWN = {
    "en": [
        "I went through the budget and the numbers for Q3 look right to me.",
        "Can we move the review to Thursday afternoon? The client asked for more time.",
        "The contract draft is attached; legal still has to sign off on clause 7.",
        "Thanks, that works for me. I will book the room for ten people.",
        "This stays confidential until the board meets, so please do not forward it yet.",
        "Here is what I need from you:\n- the final slide deck\n- the travel costs\n- your notes",
        "We shipped the release last night and no incidents have been reported so far.",
        "Please ask Maria whether the supplier has confirmed the delivery date.",
        "Thanks!\nThe figures match now and I have sent them to finance.",
        "The call went well.\n\nCheers\nto the whole team for the launch, it was a big effort.",
    ],
    "de": [
        "Ich habe das Budget geprüft, die Zahlen für das dritte Quartal stimmen.",
        "Können wir die Besprechung auf Donnerstag verschieben? Der Kunde braucht mehr Zeit.",
        "Der Vertragsentwurf liegt bei, die Rechtsabteilung muss Klausel 7 noch freigeben.",
        "Danke, das passt mir gut. Ich reserviere den Raum für zehn Personen.",
        "Bitte frag Maria, ob der Lieferant den Liefertermin bestätigt hat.",
    ],
    "fr": [
        "J'ai vérifié le budget et les chiffres du troisième trimestre sont corrects.",
        "Pouvons-nous déplacer la réunion à jeudi ? Le client demande plus de temps.",
        "Le projet de contrat est joint, le service juridique doit valider la clause 7.",
    ],
    "es": [
        "He revisado el presupuesto y las cifras del tercer trimestre son correctas.",
        "¿Podemos mover la reunión al jueves? El cliente necesita más tiempo.",
        "Adjunto el borrador del contrato, el departamento legal debe aprobar la cláusula 7.",
    ],
    "nl": [
        "Ik heb het budget bekeken en de cijfers voor het derde kwartaal kloppen.",
        "Kunnen we de vergadering naar donderdag verplaatsen? De klant wil meer tijd.",
    ],
}
GREETING = {"en": "Hi Bob,", "de": "Hallo Bob,", "fr": "Bonjour Bob,", "es": "Hola Bob,",
            "nl": "Hoi Bob,"}  # fmt: skip
SIGNATURES = {
    "en": ["Best regards,\nAlice Smith\nProject Manager\nPhone: +1 555 0100",
           "Thanks,\nAlice", "-- \nAlice Smith\nExample Corp", "Sent from my iPhone",
           "Kind regards\nAlice"],
    "de": ["Mit freundlichen Grüßen\nAlice Müller\nProjektleiterin\nTel. +49 30 1234567",
           "Viele Grüße\nAlice", "Von meinem iPhone gesendet", "-- \nAlice Müller"],
    "fr": ["Cordialement,\nAlice Martin\nChef de projet", "Envoyé de mon iPhone"],
    "es": ["Saludos,\nAlicia García", "Enviado desde mi iPhone"],
    "nl": ["Met vriendelijke groet,\nAlice de Vries", "Verzonden vanaf mijn iPhone"],
}  # fmt: skip
DISCLAIMERS = [
    "CONFIDENTIALITY NOTICE: This e-mail and any attachments are intended only for the named "
    "recipient. If you have received this email in error, please notify the sender and "
    "delete it.",
    "This message may contain privileged information. If you are not the intended recipient, "
    "any use of it is prohibited.",
    "Diese E-Mail enthält vertrauliche Informationen. Wenn Sie nicht der richtige Adressat "
    "sind oder diese E-Mail irrtümlich erhalten haben, informieren Sie bitte den Absender.",
]
REPLY_INTROS = {
    "en": "On Tue, Mar 3, 2025 at 10:12 AM Bob Jones <bob@example.com> wrote:",
    "de": "Am Di., 3. März 2025 um 10:12 Uhr schrieb Bob Jones <bob@example.com>:",
    "fr": "Le mar. 3 mars 2025 à 10:12, Bob Jones <bob@example.com> a écrit :",
    "es": "El mar, 3 mar 2025 a las 10:12, Bob Jones (<bob@example.com>) escribió:",
    "nl": "Op di 3 mrt 2025 om 10:12 schreef Bob Jones <bob@example.com>:",
}
OUTLOOK_LABELS = {
    "en": ("From", "Sent", "To", "Subject"),
    "de": ("Von", "Gesendet", "An", "Betreff"),
    "fr": ("De", "Envoyé", "À", "Objet"),
    "es": ("De", "Enviado el", "Para", "Asunto"),
    "nl": ("Van", "Verzonden", "Aan", "Onderwerp"),
}
FORWARD_LINES = {
    "en": "---------- Forwarded message ---------",
    "de": "---------- Weitergeleitete Nachricht ----------",
    "fr": "-------- Message transféré --------",
    "es": "---------- Mensaje reenviado ---------",
    "nl": "---------- Doorgestuurd bericht ---------",
}


def make_history(rng: random.Random, lang: str, old: str) -> str:
    style = rng.choice(["gmail", "outlook", "original", "underscore", "gmail"])
    if style == "gmail" and lang == "en" and rng.random() < 0.3:  # intro wrapped at 78 chars
        quoted = "\n".join("> " + line if line else ">" for line in old.split("\n"))
        return "On Tue, Mar 3, 2025 at 10:12 AM Bob Jones <\nbob@example.com> wrote:\n" + quoted
    if style == "gmail":
        quoted = "\n".join("> " + line if line else ">" for line in old.split("\n"))
        return f"{REPLY_INTROS[lang]}\n{quoted}"
    bold = rng.random() < 0.3  # Outlook's plain-text rendering of bold labels: "*From:*"
    f, s, t, subj = (f"*{x}:*" if bold else f"{x}:" for x in OUTLOOK_LABELS[lang])
    block = (
        f"{f} Bob Jones <bob@example.com>\n{s} Tuesday, March 3, 2025 10:12 AM\n"
        f"{t} Alice Smith <alice@example.com>\n{subj} RE: Budget\n\n{old}"
    )
    if style == "original":
        return "-----Original Message-----\n" + block
    if style == "underscore":
        return "_" * 32 + "\n" + block
    return block


def make_message(rng: random.Random) -> tuple[str, str]:
    """One (body, own words) pair."""
    lang = rng.choice([*LANGS, "en", "en", "de"])
    pool = OWN[lang]
    own_paras = rng.sample(pool, k=min(len(pool), rng.randint(1, 3)))
    own = (
        "\n\n".join([GREETING[lang], *own_paras]) if rng.random() < 0.7 else "\n\n".join(own_paras)
    )
    old = "\n\n".join(rng.sample(OWN[lang], k=min(2, len(OWN[lang]))))
    old += "\n\n" + rng.choice(SIGNATURES[lang])
    if rng.random() < 0.1:  # a forward with nothing written above it
        body = (
            f"{FORWARD_LINES[lang]}\nFrom: Bob Jones <bob@example.com>\nDate: Mon, 2 Mar 2025\n"
            f"Subject: Plan\nTo: Alice <alice@example.com>\n\n{own}"
        )
        return body, own
    parts = [own]
    if rng.random() < 0.7:
        parts.append(rng.choice(SIGNATURES[lang]))
    if rng.random() < 0.3:
        parts.append(rng.choice(DISCLAIMERS))
    roll = rng.random()
    if roll < 0.55:
        parts.append(make_history(rng, lang, old))
    elif roll < 0.7:
        parts.append(
            f"{FORWARD_LINES[lang]}\nFrom: Carol <carol@example.com>\nDate: Mon, 2 Mar 2025\n"
            f"Subject: Plan\nTo: Alice <alice@example.com>\n\n{old}"
        )
    return "\n\n".join(parts), own


def tokens(text: str) -> Counter[str]:
    return Counter(w.strip(".,:;!?¿()<>\"'").lower() for w in text.split() if w.strip(".,"))


def score(kept: str, truth: str) -> tuple[float, float, bool]:
    k, t = tokens(kept), tokens(truth)
    hit = sum((k & t).values())
    precision = hit / max(1, sum(k.values()))
    recall = hit / max(1, sum(t.values()))
    return precision, recall, " ".join(kept.split()) == " ".join(truth.split())


_MPR = EmailReplyParser(languages=["en", "de", "fr", "es", "nl"])


def mail_parser_reply(text: str) -> str:
    replies = [r.body for r in _MPR.read(text).replies if r.body]
    return replies[0] if replies else text


def quotequail_only(text: str) -> str:
    found = quotequail.unwrap(text)
    if found and found.get("text_top"):
        return found["text_top"]
    if found and found.get("type") == "forward" and found.get("text"):
        return found["text"]
    return quotequail.quote(text, limit=None)[0][1]  # type: ignore[arg-type]


METHODS: dict[str, Callable[[str], str]] = {
    "none": lambda text: text,
    "quotequail": quotequail_only,
    "mail-parser-reply": mail_parser_reply,
    "clean_body": lambda text: clean_body(text).text,
}


def run(samples: list[tuple[str, str]]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, method in METHODS.items():
        start = time.perf_counter()
        outputs = [method(body) for body, _ in samples]
        elapsed = time.perf_counter() - start
        scores = [score(out, truth) for out, (_, truth) in zip(outputs, samples, strict=True)]
        p = sum(s[0] for s in scores) / len(scores)
        r = sum(s[1] for s in scores) / len(scores)
        rows.append(
            {
                "method": name,
                "n": len(samples),
                "precision": round(p, 4),
                "recall": round(r, 4),
                "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
                "exact": round(sum(s[2] for s in scores) / len(scores), 4),
                "msgs_per_s": round(len(samples) / elapsed, 1),
            }
        )
    base = rows[0]["f1"]
    for row in rows:
        row["f1_vs_none"] = round(float(row["f1"]) / float(base), 3)  # type: ignore[arg-type]
    return rows


def eml_dir_check(folder: Path) -> dict[str, object]:
    from connectors.parsers.mail import parse_eml
    from connectors.types import ParseError

    ok, parse_errors, crashes = 0, 0, []
    for path in sorted(folder.glob("*.eml")):
        try:
            parse_eml(path.read_bytes(), path.name)
            ok += 1
        except ParseError:
            parse_errors += 1
        except Exception as exc:  # a crash is what this check exists to find
            crashes.append(f"{path.name}: {type(exc).__name__}: {exc}")
    return {"eml_dir": str(folder), "ok": ok, "parse_errors": parse_errors, "crashes": crashes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--eml-dir", type=Path, default=Path("/work/shared/data/office-files/eml"))
    ap.add_argument("--show-misses", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    samples = [make_message(rng) for _ in range(args.n)]
    for row in run(samples):
        print(json.dumps(row))
    shown = 0
    for body, truth in samples:
        out = clean_body(body).text
        if shown < args.show_misses and " ".join(out.split()) != " ".join(truth.split()):
            shown += 1
            print("---- MISS\n", body, "\n==== GOT\n", out, "\n==== WANT\n", truth, file=sys.stderr)
    if args.eml_dir.is_dir():
        print(json.dumps(eml_dir_check(args.eml_dir)))


if __name__ == "__main__":
    main()

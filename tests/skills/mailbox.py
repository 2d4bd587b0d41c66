"""A small Enron-style mailbox, indexed once per test module: the mail the citation and
question tests ask about. Message-IDs are shaped like Enron's, so redaction would take
them for addresses; one mail is a single long paragraph, so it is cut into several chunks
that all point at "paragraph 0"."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connectors.local import LocalFolder
from copilot.config import Settings
from copilot.ingest.pipeline import sync
from copilot.workspace import Workspace
from tests.fakes.builders_mail import build_eml

USER = "kay"
KAY_ID = "<mann-k_sent_1100.34@enron.com>"
HESS_ID = "<jones-t_inbox_897.12@enron.com>"
HESS_SENTENCES = [
    "Last Friday, Amerada Hess opted to proceed first with the ISDA Master Agreement "
    "between ENA and Amerada Hess Corporation before the Master Netting Agreement.",
    "They believe the netting agreement is subject to fraudulent transfer issues.",
    "Our comments on the form Schedule went to Amerada Hess on 30 October.",
    "The draft Paragraph 13 to the Credit Support Annex came back from Amerada Hess.",
    "The assignment of financial trades from Hess Energy Services was executed on 2 November.",
    "The First Amendment sets the collateral threshold for both parties at 5,000,000 dollars.",
    "We reviewed the Schedule on a conference call with Chuck Cerria and Dana Dellacona.",
    "I told Mr. Cerria that I had no authority to sign off until Bill Bradford approved.",
    "On 6 November I sent a rough mark-up of Paragraph 13 to Dana Dellacona.",
    "It went with the caveat that ENA credit had not yet reviewed the document.",
    "The mark-up was sent only to speed up the ISDA negotiation and may change.",
    "I also worked through the document with Dana and John Butala.",
    "Credit still has to confirm the threshold before anything is signed.",
    "The physical gas trades will follow once the financial assignment is done.",
] * 3  # one paragraph of ~40 sentences: several chunks, all "paragraph 0"

MAILS = {
    "mann-k_sent_1100.eml": dict(
        subject="siemens westinghouse damaged generator",
        sender="Kay Mann <kay.mann@enron.com>",
        to="Richard Sanders <richard.sanders@enron.com>",
        date="Wed, 14 Mar 2001 09:12:00 -0600",
        message_id=KAY_ID,
        body="Richard,\n\nWhen you get a minute I would like to catch you up on these issues. "
        "I think it is appropriate to get outside counsel to look at the two Westinghouse "
        "issues we have.\n\nThanks,\nKay",
    ),
    "jones-t_inbox_897.eml": dict(
        subject="Amerada Hess ISDA status",
        sender="Tana Jones <tana.jones@enron.com>",
        date="Tue, 06 Nov 2001 17:40:00 -0600",
        message_id=HESS_ID,
        body=" ".join(HESS_SENTENCES),
    ),
    "mann-k_inbox_149.eml": dict(
        subject="Holiday Celebration",
        sender="Leslie Hansen <leslie.hansen@enron.com>",
        date="Mon, 17 Dec 2001 11:00:00 -0600",
        message_id="<mann-k_inbox_149.2@enron.com>",
        body="Please join the power group for a holiday celebration with good friends, good "
        "food and lots of wine! Friday, December 28, 5:00 - 8:00 pm at 1432 Vassar.\n\n"
        "Please let me know what you would like to bring.\n\nLeslie",
    ),
    "jones-t_sent_438.eml": dict(
        subject="Mexico advice",
        sender="Tana Jones <tana.jones@enron.com>",
        date="Sat, 17 Mar 2001 03:00:00 +0000",
        message_id="<jones-t_sent_438.54@enron.com>",
        body="Per Shari this morning, we had already requested an update on the legal advice "
        "from another law firm in Mexico, Lopez Vallardi. You have already authorized "
        "payment of the bill.\n\nWhat would you like to do?",
    ),
    "mann-k_sent_1079.eml": dict(
        subject="Annexation agreement/Yorkville",
        sender="Kay Mann <kay.mann@enron.com>",
        date="Tue, 27 Mar 2001 15:00:00 +0000",
        message_id="<mann-k_sent_1079.90@enron.com>",
        body="Karen,\n\nAs far as I'm concerned you have answered my legal questions. The City "
        "has preserved its option as to who repairs the road since they have approval "
        "authority.\n\nKay",
    ),
}


def write_mailbox(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, fields in MAILS.items():
        (folder / name).write_bytes(build_eml(**fields))  # type: ignore[arg-type]
    return folder


@contextmanager
def indexed_mailbox(root: Path, **settings: object) -> Iterator[Workspace]:
    """A workspace with the mailbox synced for ``USER``."""
    configured = Settings(home=root / "home", parse_workers=1, **settings)  # type: ignore[arg-type]
    with Workspace(configured) as ws:
        mail = write_mailbox(root / "mail")
        report = sync(LocalFolder(mail, owner=USER), configured, ws.state, ws.store, ws.embedder)
        assert report.failed == 0 and report.indexed == len(MAILS)
        yield ws

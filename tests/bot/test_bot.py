"""The Teams bot over real HTTP: Activity JSON posted to /api/messages on the API's app.

Replies come back two ways, as in Teams: with ``deliveryMode: expectReplies`` in the HTTP
response, otherwise POSTed by the bot to the activity's ``serviceUrl`` (a stand-in Bot
Connector on loopback). Every card is checked against the official Adaptive Cards schema.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docx
import httpx
import openpyxl
import pytest

from copilot.api.app import create_app
from copilot.bot import cards
from copilot.bot.commands import leading_options, parse, replied_text, strip_mentions
from copilot.bot.identity import NotSignedIn, person_for
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job
from tests.fakes.bot_connector import BotConnector
from tests.fakes.entra_fake import FakeEntra
from tests.fakes.llm_server import Reply, ScriptedLLM
from tests.fakes.teams import BOT, GROUP, activity, card_text, cards_in, replies, valid

ANNA = {"Authorization": "Bearer dev:anna"}
BUDGET_DOC = "# Travel budget\n\nThe Q3 travel budget is 12,000 EUR, approved on 3 July.\n"


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, llm_server: ScriptedLLM
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("bot")
    docs = root / "docs"
    docs.mkdir()
    (docs / "budget.md").write_text(BUDGET_DOC)
    settings = Settings(
        home=root / "home", auth="dev", sync_roots=[str(root)], llm_base_url=llm_server.base_url,
        llm_timeout_s=5, llm_max_retries=0, rate_limit_per_minute=1000, parse_workers=1,
        max_file_mb=0.2,
    )  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        job = client.post("/v1/sync/local", json={"path": str(docs)}, headers=ANNA).json()
        assert wait_for_job(client, job, ANNA)["status"] == "done"
        yield {"client": client, "url": url}


@pytest.fixture
def client(api: dict[str, Any], llm: ScriptedLLM, connector: BotConnector) -> httpx.Client:
    connector.clear()
    return api["client"]


def post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return client.post("/api/messages", json=body)


# -- parsing, without a server ------------------------------------------------------------------


def test_parsing_commands_mentions_and_options() -> None:
    entities = [{"type": "mention", "text": "<at>Copilot</at>", "mentioned": BOT}]
    text, mentioned = strip_mentions("<at>Copilot</at> summarise &amp; more", BOT["id"], entities)
    assert (text, mentioned) == ("summarise & more", True)
    assert strip_mentions("<at>Bob</at> hi", BOT["id"], []) == ("Bob hi", False)
    ids = {"summarise", "ask", "mood"}
    assert parse("mood I love it", ids).skill_id == "mood"
    assert parse("sumarise this", ids).suggestion == "summarise"
    assert parse("what is the budget?", ids, default_skill="ask").implicit
    assert parse("run mood great", ids).text == "great"
    assert leading_options('style=tldr focus="Q3 risks" The text x=1') == (
        {"style": "tldr", "focus": "Q3 risks"}, "The text x=1",
    )  # fmt: skip
    quote = (
        '<blockquote itemscope="" itemtype="http://schema.skype.com/Reply" itemid="1">'
        '<strong itemprop="mri">Bob</strong><p itemprop="preview">Ship it on Friday</p>'
        "</blockquote><p>summarise</p>"
    )
    assert replied_text([quote]) == "Ship it on Friday"


def test_long_text_is_split_at_paragraphs_into_valid_cards() -> None:
    paragraphs = [f"Paragraph {i}:" + " lorem ipsum dolor" * 120 for i in range(30)]
    text = "\n\n".join(paragraphs)
    out = cards.result_cards("Summarise", text, run_id="r1")
    assert len(out) > 2 and all(valid(c) for c in out)
    assert "part 1 of" in card_text(out[0]) and "actions" in out[-1]
    bodies = [c["body"][1]["text"] for c in out]
    assert "\n\n".join(bodies) == text  # nothing lost, nothing moved


def test_teams_users_map_to_the_api_user_ids(tmp_path: Path) -> None:
    tid, oid = "72F988BF-86F1-41AF-91AB-2D7CD011DB47", "00000000-0000-0000-0000-0000000000AA"
    entra = Settings(home=tmp_path, auth="entra", entra_tenant_id=tid.lower(),
                     entra_client_id="11111111-2222-3333-4444-555555555555")  # fmt: skip
    sender = {"id": "29:1abc", "name": "Anna", "aadObjectId": oid}
    person = person_for(entra, sender, {"id": "a:1", "tenantId": tid})
    assert person.user_id == f"{tid.lower()}:{oid.lower()}"  # what the API's Principal has
    assert person_for(entra, sender, {"id": "a:1"}, {"tenant": {"id": tid}}) == person
    with pytest.raises(NotSignedIn, match="organisation"):
        person_for(
            entra, sender, {"id": "a:1", "tenantId": "0" * 8 + "-0000-0000-0000-" + "0" * 12}
        )
    with pytest.raises(NotSignedIn, match="work account"):
        person_for(entra, {"id": "29:guest"}, {"id": "a:1", "tenantId": tid})
    dev = Settings(home=tmp_path, auth="dev")
    assert person_for(dev, {"id": "anna"}, {"id": "a:1"}).user_id == "local:anna"
    with pytest.raises(NotSignedIn):
        person_for(dev, {"id": "mallory"}, {"id": "a:1"})


# -- over HTTP ------------------------------------------------------------------------------


def test_help_with_expect_replies(client: httpx.Client, connector: BotConnector) -> None:
    got = replies(post(client, activity(connector, "help", expect_replies=True)))
    (card,) = cards_in(got)
    assert "summarise" in card_text(card) and "use" in card_text(card)
    assert connector.sent == []  # expectReplies: nothing goes to the serviceUrl


def test_summarise_in_personal_chat_posts_to_the_connector(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    llm.script(Reply.text("- Revenue rose 12% [1]."))
    response = post(client, activity(connector, "summarise Revenue rose 12% in Q3."))
    assert response.status_code == 202
    connector.wait_for(lambda sent: any(s.cards for s in sent))
    kinds = [s.activity["type"] for s in connector.sent]
    assert kinds[0] == "typing" and kinds[-1] == "message"
    (card,) = [valid(c) for s in connector.sent for c in s.cards]
    assert "Revenue rose 12%" in card_text(card)
    assert "[1] your text — paragraph 1" in card_text(card)  # the one source, cited
    assert not any(a["type"] == "Action.ShowCard" for a in card["actions"])  # none uncited
    assert {a.get("title") for a in card["actions"]} >= {"👍 Helpful", "👎 Not helpful"}
    assert "Revenue rose 12% in Q3." in json.dumps(llm.requests[-1].json["messages"])


def test_group_message_without_mention_is_ignored(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    body = activity(connector, "summarise this please", conversation=GROUP, expect_replies=True)
    assert replies(post(client, body)) == [] and llm.requests == []


def test_group_mention_is_stripped(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    llm.script(Reply.text("- The launch moved to March [1]."))
    text = "<at>Copilot</at> summarise The launch moved to March."
    got = replies(post(client, activity(connector, text, conversation=GROUP, mention=True,
                                        expect_replies=True)))  # fmt: skip
    (card,) = cards_in(got)
    assert "launch moved to March" in card_text(card)
    sent = json.dumps(llm.requests[-1].json["messages"])
    assert "The launch moved to March." in sent and "<at>" not in sent and "Copilot</at" not in sent


def test_ask_in_a_group_is_answered_privately(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    llm.script(Reply.text("The Q3 travel budget is 12,000 EUR [1]."))
    text = "<at>Copilot</at> ask what is the travel budget?"
    body = activity(connector, text, conversation=GROUP, mention=True)
    assert post(client, body).status_code == 202  # acknowledged; answered in the background
    connector.wait_for(lambda sent: any(s.cards for s in sent if s.conversation_id != GROUP["id"]))
    in_group = connector.in_conversation(GROUP["id"])
    assert "answer you privately" in card_text(in_group[0].cards[0])
    assert not any("12,000" in json.dumps(s.activity) for s in in_group)
    (created,) = connector.created
    assert created["members"] == [{"id": "anna", "name": "Anna"}] and not created["isGroup"]
    private = connector.in_conversation("a:private-1")
    answer = [valid(c) for s in private for c in s.cards]
    assert "12,000 EUR" in card_text(answer[-1]) and "budget.md" in card_text(answer[-1])
    assert "12,000 EUR" in json.dumps(llm.requests[-1].json["messages"])  # it did retrieve

    connector.clear()  # Teams refuses the 1:1 (app not installed): still nothing in the group
    connector.refuse_create = True
    llm.script(Reply.text("The Q3 travel budget is 12,000 EUR [1]."))
    assert post(client, body).status_code == 202
    connector.wait_for(lambda sent: sum(len(s.cards) for s in sent) >= 2)
    group_text = json.dumps([s.activity for s in connector.in_conversation(GROUP["id"])])
    assert "couldn't open a 1:1 chat" in group_text and "12,000" not in group_text
    assert len(connector.sent) == 2  # the notice and the apology, nothing else


def test_personal_skill_by_name(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    fork = client.post("/v1/skills/sentiment/fork", json={"new_id": "mood"}, headers=ANNA)
    assert fork.status_code in (201, 409), fork.text
    llm.script(Reply.json({"label": "positive", "score": 0.9, "confidence": 0.9, "aspects": []}))
    got = replies(post(client, activity(connector, "mood I love it", expect_replies=True)))
    (card,) = cards_in(got)
    assert "(yours)" in card_text(card)
    runs = client.get("/v1/runs", headers=ANNA).json()
    assert runs[0]["skill_id"] == "mood"
    bob = replies(post(client, activity(connector, "mood I love it", user="bob",
                                        expect_replies=True)))  # fmt: skip
    assert "(yours)" not in card_text(cards_in(bob)[-1])  # bob has no "mood": his default ran
    assert not any(r["skill_id"] == "mood" for r in client.get(
        "/v1/runs", headers={"Authorization": "Bearer dev:bob"}).json())  # fmt: skip


def test_unknown_command_gets_a_suggestion(client: httpx.Client, connector: BotConnector) -> None:
    got = replies(post(client, activity(connector, "sumarise the notes", expect_replies=True)))
    (card,) = cards_in(got)
    assert "Did you mean **summarise**" in card_text(card)


def test_feedback_button_is_recorded_on_the_run(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    llm.script(Reply.text("- Costs rose 4% [1]."))
    got = replies(post(client, activity(connector, "summarise Costs rose 4%.",
                                        expect_replies=True)))  # fmt: skip
    (card,) = cards_in(got)
    thumbs_up = next(a for a in card["actions"] if a.get("title") == "👍 Helpful")
    run_id = thumbs_up["data"]["run_id"]
    click = activity(connector, None, expect_replies=True, value=thumbs_up["data"])
    assert "recorded your 👍" in card_text(cards_in(replies(post(client, click)))[0])
    assert client.get(f"/v1/runs/{run_id}", headers=ANNA).json()["rating"] == 1
    other = activity(connector, None, user="bob", expect_replies=True, value=thumbs_up["data"])
    assert "Only the person who asked" in card_text(cards_in(replies(post(client, other)))[0])

    execute = activity(connector, None, type="invoke", name="adaptiveCard/action",
                       value={"action": {"type": "Action.Execute", "verb": "feedback",
                                         "data": {**thumbs_up["data"], "rating": -1}}})  # fmt: skip
    response = post(client, execute)  # Action.Execute: the answer is the invoke's body
    assert response.status_code == 200 and "recorded your 👎" in response.json()["value"]
    assert client.get(f"/v1/runs/{run_id}", headers=ANNA).json()["rating"] == -1


def test_long_result_is_split(client: httpx.Client, llm: ScriptedLLM, connector: BotConnector):
    long = "\n\n".join(
        f"Point {i}: " + "the plan holds and costs are fine. " * 60 for i in range(25)
    )
    llm.script(Reply.text(long))
    got = cards_in(replies(post(client, activity(connector, "summarise The plan.",
                                                 expect_replies=True))))  # fmt: skip
    assert len(got) >= 3 and "part 1 of" in card_text(got[0])
    joined = "".join(c["body"][1]["text"] for c in got)
    assert joined.index("Point 0:") < joined.index("Point 24:")
    assert "actions" in got[-1] and all("actions" not in c for c in got[:-1])


def test_files_summarised_too_large_and_workbook_scored(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector, tmp_path: Path
) -> None:
    document = docx.Document()
    document.add_paragraph("The Atlas migration starts on 4 May with the invoice export.")
    buffer = io.BytesIO()
    document.save(buffer)
    connector.files["atlas.docx"] = buffer.getvalue()
    connector.files["huge.pdf"] = b"%PDF-1.4\n" + b"0" * 300_000

    def teams_file(name: str) -> list[dict[str, Any]]:
        return [{"contentType": "application/vnd.microsoft.teams.file.download.info",
                 "name": name, "content": {"downloadUrl": connector.file_url(name),
                                           "fileType": name.rsplit(".", 1)[-1]}}]  # fmt: skip

    llm.script(Reply.text("- Atlas starts on 4 May [1]."))
    body = activity(
        connector, "summarise", expect_replies=True, attachments=teams_file("atlas.docx")
    )
    (card,) = cards_in(replies(post(client, body)))
    assert "4 May" in card_text(card)
    assert "invoice export" in json.dumps(llm.requests[-1].json["messages"])

    body = activity(connector, "summarise", expect_replies=True, attachments=teams_file("huge.pdf"))
    (card,) = cards_in(replies(post(client, body)))
    assert "I couldn't use the file" in card_text(card) and "0.2 MB" in card_text(card)

    wb = openpyxl.Workbook()
    wb.active.append(["Comment"])
    wb.active.append(["Great service"])
    wb.active.append(["Terrible wait"])
    buffer = io.BytesIO()
    wb.save(buffer)
    connector.files["reviews.xlsx"] = buffer.getvalue()
    body = activity(connector, "sentiment", expect_replies=True,
                    attachments=teams_file("reviews.xlsx"))  # fmt: skip
    (card,) = cards_in(replies(post(client, body)))
    assert "Tell me which column" in card_text(card) and "Comment" in card_text(card)

    llm.responder = lambda request: Reply.json(
        {"label": "positive", "score": 0.8, "confidence": 0.9, "aspects": []}
    )
    body["text"] = "sentiment Comment"
    (card,) = cards_in(replies(post(client, body)))
    link = next(a["url"] for a in card["actions"] if a["type"] == "Action.OpenUrl")
    scored = httpx.get(link, timeout=10)
    assert scored.status_code == 200
    (tmp_path / "scored.xlsx").write_bytes(scored.content)
    assert "Scored" in openpyxl.load_workbook(tmp_path / "scored.xlsx").sheetnames
    assert httpx.get(link[:-4] + "AAAA", timeout=10).status_code == 404


def test_dev_mode_replies_only_to_loopback(client: httpx.Client, connector: BotConnector) -> None:
    body = activity(connector, "help")
    body["serviceUrl"] = "https://smba.trafficmanager.net/emea/"
    assert post(client, body).status_code == 400


def test_local_engine_note_when_no_llm(tmp_path: Path, connector: BotConnector) -> None:
    connector.clear()
    settings = Settings(home=tmp_path / "home", auth="dev", parse_workers=1)
    with serving(create_app(settings)) as url:
        body = activity(connector, "summarise The budget is approved. Hiring starts in May.",
                        expect_replies=True)  # fmt: skip
        response = httpx.post(f"{url}/api/messages", json=body, timeout=30)
        (card,) = cards_in(replies(response))
        notes = [b["text"] for b in card["body"] if b.get("isSubtle") and "engine" in b["text"]]
        assert len(notes) == 1, notes  # said once, not twice
        assert "local engine" in notes[0] and "no language model" in notes[0].lower()


def test_requests_without_bot_connector_credentials_are_refused(
    tmp_path: Path, connector: BotConnector
) -> None:
    with FakeEntra() as entra, serving(create_app(entra.settings(tmp_path / "home"))) as url:
        body = activity(connector, "help", user="29:someone")
        body["serviceUrl"] = "https://smba.trafficmanager.net/emea/"
        assert httpx.post(f"{url}/api/messages", json=body, timeout=10).status_code == 401
        forged = {"Authorization": "Bearer not.a.token"}
        response = httpx.post(f"{url}/api/messages", json=body, headers=forged, timeout=10)
        assert response.status_code == 401


def test_the_bot_shares_the_api_rate_limit(tmp_path: Path, connector: BotConnector) -> None:
    """One allowance per person per minute, whether they use the add-ins or the bot."""
    connector.clear()
    settings = Settings(home=tmp_path / "home", auth="dev", parse_workers=1,
                        rate_limit_per_minute=2)  # fmt: skip
    with serving(create_app(settings)) as url:
        search = httpx.post(f"{url}/v1/search", json={"query": "budget"}, timeout=30,
                            headers={"Authorization": "Bearer dev:anna"})  # fmt: skip
        assert search.status_code == 200
        texts = []
        for _ in range(2):
            body = activity(connector, "sentiment Great service!", expect_replies=True)
            response = httpx.post(f"{url}/api/messages", json=body, timeout=30)
            texts.append(" ".join(card_text(c) for c in cards_in(replies(response))))
        assert "positive" in texts[0]
        assert "Slow down" in texts[1] and "wait" in texts[1]

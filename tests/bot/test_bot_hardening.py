"""The bot's hostile-input checks: download links, links in answers, skills in group chats.

The address checks run on what a name resolves to, so every notation of an internal
address is refused the same way; attacks through the bot run against a real server on
loopback (dev mode, which allows loopback downloads for the Emulator but nothing else
internal) and must be answered quickly, without a request to the address.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from copilot.bot import cards, files
from copilot.bot.files import FileError, FileRef, check_url, download, is_public, resolve
from copilot.config import Settings
from tests.fakes.api_server import serving
from tests.fakes.bot_connector import BotConnector
from tests.fakes.llm_server import Reply, ScriptedLLM
from tests.fakes.teams import GROUP, activity, card_text, cards_in, replies

LOOPBACK_NOTATIONS = ["localhost", "127.1", "2130706433", "0x7f000001", "0177.0.0.1",
                      "127.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"]  # fmt: skip
INTERNAL = ["10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "2852039166",
            "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255",
            "[fe80::1]", "[fc00::1]", "[::]", "[ff02::1]", "[2002:7f00:1::]",
            "[64:ff9b::a9fe:a9fe]", "[::169.254.169.254]"]  # fmt: skip


# -- the address rules, without a network --------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACK_NOTATIONS + INTERNAL)
def test_every_notation_of_an_internal_address_is_refused(host: str) -> None:
    name = host.strip("[]")
    with pytest.raises(FileError, match="private or reserved address"):
        resolve(name, 443, dev=False)
    with pytest.raises(FileError, match=r"not to SharePoint or OneDrive|private or reserved"):
        check_url(f"https://{host}/x.docx", dev=False)


def test_dev_mode_allows_loopback_in_any_notation() -> None:
    for host in ("127.1", "2130706433", "localhost"):
        assert set(resolve(host, 80, dev=True)) <= {"127.0.0.1", "::1"}


@pytest.mark.parametrize("host", INTERNAL)
def test_dev_mode_allows_nothing_else_internal(host: str) -> None:
    with pytest.raises(FileError, match="private or reserved address"):
        check_url(f"http://{host}/x.docx", dev=True)


def test_public_addresses_pass_and_embedded_internal_ones_do_not() -> None:
    assert is_public(ipaddress.ip_address("20.190.128.1"))
    assert is_public(ipaddress.ip_address("2603:1000::1"))
    assert not is_public(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not is_public(ipaddress.ip_address("2001:0:4136:e378:8000:63bf:80ff:fffe"))  # Teredo


def test_outside_dev_mode_only_https_to_download_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    public = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("20.190.128.1", 443))]
    monkeypatch.setattr(files.socket, "getaddrinfo", lambda *a, **k: public)
    assert check_url("https://contoso-my.sharepoint.com/personal/a/x.docx", dev=False)
    for url, why in [
        ("http://contoso.sharepoint.com/x.docx", "not an https"),
        ("https://contoso.sharepoint.com:8443/x.docx", "not to SharePoint"),
        ("https://sharepoint.com.evil.example/x.docx", "not to SharePoint"),
        ("https://evil.example/x.docx", "not to SharePoint"),
        ("file:///etc/passwd", "not an https"),
    ]:
        with pytest.raises(FileError, match=why):
            check_url(url, dev=False)


def test_one_internal_address_among_public_ones_refuses_the_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mixed = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("20.190.128.1", 443)),
             (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 443))]  # fmt: skip
    monkeypatch.setattr(files.socket, "getaddrinfo", lambda *a, **k: mixed)
    with pytest.raises(FileError, match="private or reserved"):
        check_url("https://contoso.sharepoint.com/x.docx", dev=False)


def test_a_name_that_rebinds_after_the_check_is_not_connected_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """DNS rebinding: the check sees a public address, a second lookup would give 127.0.0.1.
    The connection goes only to an address checked in its own lookup, so it is refused
    there (without the pin it would be a connection attempt to 127.0.0.1:443)."""
    answers = iter(["20.190.128.1", "127.0.0.1", "127.0.0.1"])

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(files.socket, "getaddrinfo", rebinding)
    ref = FileRef("x.docx", "https://files.contoso.sharepoint.com/x.docx")
    with pytest.raises(FileError, match="private or reserved"):
        download(ref, tmp_path, max_bytes=1000, dev=False)
    assert not (tmp_path / "x.docx").exists()


# -- attacks through the bot on a real server ----------------------------------------------


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory, llm_server: ScriptedLLM) -> Iterator[str]:
    root = tmp_path_factory.mktemp("bot-hostile")
    settings = Settings(home=root / "home", auth="dev", llm_base_url=llm_server.base_url,
                        llm_timeout_s=5, llm_max_retries=0, rate_limit_per_minute=1000,
                        parse_workers=1)  # fmt: skip
    with serving(create_app(settings)) as base:
        yield base


@pytest.fixture
def client(url: str, llm: ScriptedLLM, connector: BotConnector) -> Iterator[httpx.Client]:
    connector.clear()
    with httpx.Client(base_url=url, timeout=30) as http:
        yield http


def ask(client: httpx.Client, body: dict[str, Any]) -> tuple[str, float]:
    started = time.monotonic()
    response = client.post("/api/messages", json=body)
    return " ".join(card_text(c) for c in cards_in(replies(response))), time.monotonic() - started


INSIDE = ["169.254.169.254", "2852039166", "0xa9fea9fe", "[::ffff:169.254.169.254]", "10.0.0.1",
          "[fe80::1]", "0.0.0.0"]  # fmt: skip


@pytest.mark.parametrize("target", INSIDE)
def test_attachments_pointing_inside_are_refused_quickly(
    client: httpx.Client, connector: BotConnector, target: str
) -> None:
    attachment = {"contentType": files.TEAMS_FILE, "name": "report.docx",
                  "content": {"downloadUrl": f"http://{target}/latest/report.docx"}}  # fmt: skip
    body = activity(connector, "summarise", expect_replies=True, attachments=[attachment])
    text, seconds = ask(client, body)
    assert "I couldn't use the file" in text and "private or reserved address" in text
    assert seconds < 5  # refused before any connection attempt (an unroutable one waits 30 s)


def test_links_in_an_answer_reach_the_card_as_text(
    client: httpx.Client, llm: ScriptedLLM, connector: BotConnector
) -> None:
    llm.script(Reply.text("Your account needs attention. [Click here to re-verify]"
                          "(https://evil.example/login) or see <https://evil.example/b> "
                          "and www.evil.example/c."))  # fmt: skip
    body = activity(connector, "summarise Account notice from IT.", expect_replies=True)
    text, seconds = ask(client, body)
    assert "Click here to re-verify (evil[.]example/login)" in text
    assert "https://evil" not in text and "](" not in text and "www.evil" not in text
    assert seconds < 10


def test_skills_in_a_group_list_no_personal_skill(
    client: httpx.Client, connector: BotConnector
) -> None:
    fork = client.post("/v1/skills/sentiment/fork", json={"new_id": "salary-review"},
                       headers={"Authorization": "Bearer dev:anna"})  # fmt: skip
    assert fork.status_code in (201, 409), fork.text
    # Answered in the response, so the choice is stored before the next message (sent for
    # a reply to the connector instead, it raced the "skills" below on a busy machine).
    chosen, _ = ask(client, activity(connector, "use salary-review", expect_replies=True))
    assert "Default skill set" in chosen

    personal, _ = ask(client, activity(connector, "skills", expect_replies=True))
    assert "salary-review (yours)" in personal and "Default: salary-review" in personal

    mention = activity(connector, "<at>Copilot</at> skills", conversation=GROUP, mention=True,
                       expect_replies=True)  # fmt: skip
    group, _ = ask(client, mention)
    assert "summarise" in group and "salary-review" not in group
    assert "listed in a 1:1 chat" in group


def test_unlink_keeps_citations_and_ordinary_text() -> None:
    assert cards.unlink("The budget is 12,000 EUR [1]. Approved [2].") == (
        "The budget is 12,000 EUR [1]. Approved [2]."
    )


def test_files_made_for_a_chat_are_kept_where_no_other_account_can_read_them(
    tmp_path: Path,
) -> None:
    # The bot writes the files it produces (a scored workbook, a summary as .docx) for
    # its download links: users' data, private like the rest of the home.
    import stat

    from copilot.bot.files import FileLinks

    links = FileLinks(tmp_path / "home" / "bot" / "files")
    _, path = links.new_path("scored.xlsx")
    for folder in (tmp_path / "home", links.folder, path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder

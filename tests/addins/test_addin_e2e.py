"""The Word and Outlook task pane in a real browser against the real API (dev-mode users,
the scripted LLM), with a local stand-in for Office.js.

How Office is faked: index.html loads Office.js from Microsoft's CDN like every add-in;
here Playwright's route() answers that URL with addins/tests/office-standin.js, which fakes
Word.run and Office.context.mailbox and records each call into window.__calls. Every other
request that is not to the loopback API is aborted (and listed), so nothing reaches the
network. Screenshots of the panes are written to docs/screenshots/.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving, wait_for_job
from tests.fakes.browser import OFFICE_JS, ROOT, STANDIN, have_chromium
from tests.fakes.llm_server import Reply, ScriptedLLM

SHOTS = ROOT / "docs" / "screenshots"
ANNA = {"Authorization": "Bearer dev:anna"}
WAIT_MS = 15_000
DOCS = {
    "budget.md": "# Travel budget\n\nThe Q3 travel budget is 12,000 EUR, approved on 3 July.\n",
    "atlas.md": "# Atlas risks\n\nThe largest risk of the Atlas migration is the legacy "
    "invoice export, a nightly batch job nobody has changed in six years.\n",
}

if not have_chromium():
    pytest.skip("chromium is not installed (make system-deps installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory, llm_server: ScriptedLLM) -> Iterator[str]:
    root = tmp_path_factory.mktemp("pane")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    settings = Settings(home=root / "home", auth="dev", sync_roots=[str(root)],
                        llm_base_url=llm_server.base_url, llm_timeout_s=5, llm_max_retries=0,
                        rate_limit_per_minute=1000, parse_workers=1)  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        job = client.post("/v1/sync/local", json={"path": str(docs)}, headers=ANNA).json()
        assert wait_for_job(client, job, ANNA)["status"] == "done"
        yield url


@pytest.fixture
def pane(browser: Any, api_url: str, llm: ScriptedLLM) -> Iterator[Callable[..., Any]]:
    """open(office_config or None, dark=False) -> a page showing the pane, signed in as anna.

    None: no Office.js at all (a plain browser), so the pane runs in preview mode."""
    contexts = []
    blocked: list[str] = []
    llm.responder = lambda request: Reply.text("Nothing scripted.")

    def open_pane(
        office: dict[str, Any] | None,
        *,
        dark: bool = False,
        width: int = 320,
        forced: bool = False,
        url: str | None = None,
    ) -> Any:
        # bypass_csp: wait_for_function evaluates its predicate with eval, which the pane's
        # policy forbids; the policy itself is checked in tests/api/test_addin_csp.py.
        base = url or api_url
        context = browser.new_context(
            viewport={"width": width, "height": 860},
            color_scheme="dark" if dark else "light",
            forced_colors="active" if forced else "none",
            bypass_csp=True,
        )
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)

        def route(r: Any) -> None:
            url = r.request.url
            if url == OFFICE_JS and office is None:
                r.abort()  # a plain browser with no Office.js: preview mode
            elif url == OFFICE_JS:
                r.fulfill(body=STANDIN.read_text(), content_type="text/javascript")
            elif url.startswith(base + "/"):
                r.continue_()
            else:
                blocked.append(url)
                r.abort()

        context.route("**/*", route)
        if office is not None:
            office = {"theme": "dark" if dark else "light", **office}
            context.add_init_script(f"window.__officeConfig = {json.dumps(office)};")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.errors = errors
        page.goto(f"{base}/addins/office/index.html?dev=anna")
        page.wait_for_selector("body[data-ready=true]")
        page.wait_for_selector("#skill-fields .field", state="attached")  # in "Skills", folded
        return page

    yield open_pane
    for context in contexts:
        context.close()
    assert blocked == [], f"the pane tried to reach the network: {blocked}"


def calls(page: Any, name: str | None = None) -> list[dict[str, Any]]:
    recorded = page.evaluate("window.__calls")
    return [c for c in recorded if name is None or c["api"] == name]


def wait_done(page: Any) -> str:
    page.wait_for_selector("#output-row:not([hidden])")
    return page.input_value("#output")


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


# -- Word -----------------------------------------------------------------------------------


def test_word_summarise_streams_then_insert_writes_at_the_cursor(pane: Any, llm: ScriptedLLM):
    selection = "Revenue rose 12% on the year. Costs rose 4%. The board wants a hiring plan."
    page = pane({"host": "Word", "selection": selection, "body": "whole document"})
    llm.script(Reply.text("Revenue rose 12% [1]. A hiring plan is due [1].", chunks=6,
                          chunk_delay=0.15))  # fmt: skip
    assert calls(page, "selection.insertText") == []
    page.click("#action-summarise")
    # Text arrives in the live region while the run is still going.
    page.wait_for_function(
        "document.getElementById('stream').textContent.includes('Revenue')"
        " && document.getElementById('output-row').hidden"
    )
    assert page.get_attribute("#stream", "aria-live") == "polite"
    assert wait_done(page) == "Revenue rose 12% [1]. A hiring plan is due [1]."
    assert selection in llm.requests[-1].json["messages"][-1]["content"]
    assert "done, 1 source" in page.inner_text("#status")
    assert calls(page, "selection.insertText") == []  # nothing is inserted without a click

    page.fill("#output", "Revenue rose 12% [1].")  # the user edits before inserting
    page.click("#insert")
    page.wait_for_function("window.__calls.some(c => c.api === 'selection.insertText')")
    assert calls(page, "selection.insertText")[0]["args"] == ["Revenue rose 12% [1].", "After"]
    page.select_option("#insert-where", "replace")
    page.click("#insert")
    page.wait_for_function(
        "window.__calls.filter(c => c.api === 'selection.insertText').length == 2"
    )
    assert calls(page, "selection.insertText")[1]["args"][1] == "Replace"
    assert page.errors == []


def test_word_ask_cites_clickable_sources_inserted_as_footnotes_and_feedback(
    pane: Any, llm: ScriptedLLM, api_url: str
):
    page = pane({"host": "Word", "selection": "", "body": "A report."})
    llm.script(Reply.text("The Q3 travel budget is 12,000 EUR [1]."))
    page.click("#action-ask")
    assert page.get_attribute("#action-ask", "aria-expanded") == "true"
    page.fill("#act-ask-question", "What is the Q3 travel budget?")
    page.click("#action-go")
    assert wait_done(page) == "The Q3 travel budget is 12,000 EUR [1]."
    link = page.locator("#citations a").first
    assert link.get_attribute("href").startswith("file://")
    assert link.get_attribute("href").endswith("budget.md")
    assert link.get_attribute("target") == "_blank"
    assert "noopener" in link.get_attribute("rel")
    assert "[1] budget.md" in link.inner_text()
    shoot(page, "word-pane.png")

    page.select_option("#insert-sources", "footnotes")
    page.click("#insert")
    page.wait_for_function("window.__calls.some(c => c.api === 'marker.insertFootnote')")
    footnote = calls(page, "marker.insertFootnote")[0]["args"][0]
    assert footnote.startswith("budget.md") and "file://" in footnote
    assert "footnotes" in page.inner_text("#status")

    page.fill("#output", "The Q3 travel budget is 12,000 EUR.")
    page.click("#thumb-up")
    page.wait_for_selector("#thumb-up[aria-pressed=true]")
    with httpx.Client(base_url=api_url, headers=ANNA) as client:
        run = client.get("/v1/runs").json()[0]
        assert run["rating"] == 1 and run["edited_text"] == "The Q3 travel budget is 12,000 EUR."


def test_preview_mode_in_a_plain_browser(pane: Any, llm: ScriptedLLM):
    page = pane(None)
    assert page.evaluate("document.body.dataset.host") == "preview"
    page.fill("#preview-doc", "Costs rose 4% in Q3.")
    llm.script(Reply.text("Costs rose 4% [1]."))
    page.click("#action-summarise")
    assert wait_done(page) == "Costs rose 4% [1]."
    page.select_option("#insert-sources", "none")
    page.click("#insert")
    page.wait_for_function("document.getElementById('preview-doc').value.endsWith('[1].')")
    assert "Preview mode" in page.inner_text("#status")


def test_hostile_document_text_stays_text(pane: Any, llm: ScriptedLLM):
    hostile = '<img src=x onerror="window.__pwned=1">Hi<script>window.__pwned=2</script>'
    page = pane({"host": "Word", "selection": hostile})
    llm.script(Reply.text(f"It says {hostile} [1]."))
    page.click("#action-summarise")
    assert hostile in wait_done(page)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0
    assert hostile in page.inner_text("#citations")  # the snippet, shown as text


def test_model_failure_is_shown_in_plain_words(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": "Some text to summarise."})
    llm.script(Reply.status(500))
    page.click("#action-summarise")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert "try again" in message.lower() and "Traceback" not in message
    assert page.is_hidden("#apply")


def test_keyboard_only_preview_then_run_of_a_skill(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": ""})
    order = []
    for _ in range(40):  # Tab through the pane until the skill picker
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.id")
        order.append(focused)
        if focused == "skills-toggle":
            page.keyboard.press("Enter")  # unfold "Skills"
        if focused == "skill":
            break
    assert order.index("scope") < order.index("action-summarise") < order.index("skill")
    assert page.input_value("#skill") == "ask"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skill-question"
    page.keyboard.type("Largest Atlas risk?")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "skill-run"
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # Preview: exactly what would be sent, nothing sent yet
    asked = len(llm.requests)
    page.wait_for_selector("#preview:not([hidden]) pre")
    assert "Largest Atlas risk?" in page.inner_text("#preview")
    assert "atlas" in page.inner_text("#preview").lower()
    assert len(llm.requests) == asked
    llm.script(Reply.text("The legacy invoice export [1]."))
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # Run
    assert wait_done(page) == "The legacy invoice export [1]."


def test_personal_skill_edit_error_at_line_save_history_revert_test(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": "x"})
    page.click("#skills-toggle")
    # The chosen skill's details arrive late (a slow network), and "Make my copy" is
    # clicked before they do: the copy is still of the skill the picker shows (it forked
    # the skill shown before, now and then).
    page.evaluate(
        "() => { const fetch = window.fetch; window.fetch = (url, options) =>"
        " String(url).endsWith('/v1/skills/summarise')"
        " ? new Promise((done) => setTimeout(done, 400)).then(() => fetch(url, options))"
        " : fetch(url, options); }"
    )
    page.select_option("#skill", "summarise")
    page.click("#skill-edit")  # a built-in: fork it to my-summarise, then edit
    page.wait_for_selector("#editor:not([hidden])")
    assert page.input_value("#skill") == "my-summarise"
    text = page.input_value("#editor-text")
    assert "task: summarise" in text
    page.fill("#editor-text", text.replace("  task: summarise", "  tsak: summarise"))
    page.click("#editor-save")
    page.wait_for_selector("#editor-error:not([hidden])")
    error = page.inner_text("#editor-error")
    bad_line = text.split("\n").index("  task: summarise") + 1
    assert f"Line {bad_line}" in error and "tsak" in error
    selected = page.evaluate(
        "(() => { const t = document.getElementById('editor-text');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); })()"
    )
    assert selected == "  tsak: summarise"
    assert page.get_attribute("#editor-text", "aria-invalid") == "true"

    page.fill("#editor-text", text.replace("precise assistant", "terse assistant"))
    page.fill("#editor-message", "terse")
    page.click("#editor-save")
    page.wait_for_selector("#editor-status:text('Saved as version 2')")
    page.click("#editor-history")
    page.wait_for_selector("#editor-versions li >> nth=1")
    assert "terse" in page.inner_text("#editor-versions")
    page.click("[aria-label='Revert to version 1']")
    page.wait_for_selector("#editor-status:text('now version 3')")
    assert "precise assistant" in page.input_value("#editor-text")

    llm.responder = lambda request: Reply.text("A sample summary [1].")
    page.click("#editor-test")
    page.wait_for_selector("#editor-tests li")
    assert "A sample summary" in page.inner_text("#editor-tests")


# -- Outlook --------------------------------------------------------------------------------

MAIL = "Hi, could you send me the final budget figures and confirm the launch date? Anna"


def test_outlook_read_draft_reply_opens_the_reply_form(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Outlook", "mode": "read", "subject": "Budget", "from": "Anna Berg",
                 "body": MAIL})  # fmt: skip
    assert (
        page.is_hidden("#scope-row") and page.locator("#action-buttons fluent-button").count() == 3
    )
    page.click("#action-reply")
    page.fill("#act-reply-notes", "budget is 12,000 EUR, launch 3 March")
    page.select_option("#act-reply-tone", "friendly")
    reply = "Hi Anna,\nthe travel budget is 12,000 EUR [1] and we launch on 3 March."
    llm.script(Reply.text(reply))  # before the click: the run may reach the model at once
    page.click("#action-go")
    assert wait_done(page) == reply
    sent = llm.requests[-1].json["messages"][-1]["content"]
    assert MAIL in sent and "Subject: Budget" in sent
    assert page.is_hidden("#insert") and page.is_visible("#reply")
    shoot(page, "outlook-pane.png")
    assert calls(page, "item.displayReplyForm") == []
    page.click("#reply")
    page.wait_for_function("window.__calls.some(c => c.api === 'item.displayReplyForm')")
    form = calls(page, "item.displayReplyForm")[0]["args"][0]
    assert form["htmlBody"].startswith("Hi Anna,<br>the travel budget is 12,000 EUR [1]")
    assert "send it yourself" in page.inner_text("#status")


def test_outlook_compose_improve_draft_applies_only_on_click(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Outlook", "mode": "compose", "body": "hi pls send numbers asap"})
    assert page.locator("#action-buttons fluent-button").all_inner_texts() == ["Improve draft"]
    llm.script(Reply.text("Hello, could you please send the figures today? Thank you."))
    page.click("#action-improve")
    page.select_option("#act-improve-tone", "formal")
    page.click("#action-go")
    assert wait_done(page).startswith("Hello, could you please")
    assert "hi pls send numbers asap" in llm.requests[-1].json["messages"][-1]["content"]
    assert [c["api"] for c in calls(page) if "set" in c["api"]] == []
    page.click("#apply-body")
    page.wait_for_function("window.__calls.some(c => c.api === 'body.setAsync')")
    assert calls(page, "body.setAsync")[0]["args"][0].startswith("Hello, could you please")
    page.click("#apply-cursor")
    page.wait_for_function("window.__calls.some(c => c.api === 'body.setSelectedDataAsync')")


def test_dark_theme_screenshots(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": "The Atlas migration is late."}, dark=True)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(41, 41, 41)"  # Office's dark theme colour, from officeTheme
    aspect = {"aspect": "schedule", "label": "negative", "evidence": "migration is late"}
    llm.script(Reply.json({"label": "negative", "score": -0.6, "aspects": [aspect]}))
    page.click("#action-sentiment")
    assert wait_done(page).startswith("Sentiment: negative (score -0.60)")
    assert "schedule" in page.inner_text("#sentiment")
    shoot(page, "word-pane-dark.png")
    page = pane({"host": "Outlook", "mode": "read", "subject": "Launch", "body": MAIL}, dark=True)
    llm.script(Reply.text("- Anna asks for the budget figures [1].\n- And the launch date [1]."))
    page.click("#action-summarise")
    wait_done(page)
    shoot(page, "outlook-pane-dark.png")


# -- The Fluent pane: conversation, streaming, drafts, editor, themes, narrow widths --------


def rows_of(page: Any, selector: str) -> list[int]:
    """How many visible elements matching ``selector`` sit on each row (by their top)."""
    tops = page.eval_on_selector_all(
        selector,
        "els => els.filter(e => e.offsetParent !== null)"
        ".map(e => Math.round(e.getBoundingClientRect().top))",
    )
    return [tops.count(top) for top in sorted(set(tops))]


def ax_names(page: Any, role: str) -> list[str]:
    """The names of the nodes with ``role`` in Chromium's accessibility tree."""
    session = page.context.new_cdp_session(page)
    try:
        nodes = session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()
    return [
        str(n.get("name", {}).get("value", ""))
        for n in nodes
        if not n.get("ignored") and n.get("role", {}).get("value") == role
    ]


def assert_compact(page: Any) -> None:
    """The title on one line; no quick-action or result button alone on a row."""
    title = page.eval_on_selector(
        "h1", "e => [e.getBoundingClientRect().height, e.scrollWidth, e.clientWidth]"
    )
    line = float(page.eval_on_selector("h1", "e => parseFloat(getComputedStyle(e).lineHeight)"))
    assert title[0] <= line * 1.2 and title[1] <= title[2], f"the title wraps or overflows: {title}"
    for selector in ("#action-buttons > fluent-button", "#apply .buttons > fluent-button"):
        counts = rows_of(page, selector)
        assert sum(counts) <= 1 or min(counts) >= 2, (selector, counts)


@pytest.mark.parametrize("width", [320, 500])
def test_ask_with_a_follow_up_keeps_the_conversation(pane: Any, llm: ScriptedLLM, width: int):
    page = pane({"host": "Word", "selection": "", "body": "A report."}, width=width)
    # Chromium's own accessibility tree (what a screen reader gets; Playwright's role
    # selectors do not read the role a custom element sets through ElementInternals).
    assert ax_names(page, "button").count("Ask") == 1
    page.click("#action-ask")
    assert page.is_hidden("#skill-fields")  # no second question box on screen
    assert page.locator("textarea:visible").count() == 1  # the one question box
    llm.script(Reply.text("The Q3 travel budget is 12,000 EUR [1]."))
    page.fill("#act-ask-question", "What is the Q3 travel budget?")
    page.click("#action-go")
    assert wait_done(page) == "The Q3 travel budget is 12,000 EUR [1]."
    assert page.input_value("#act-ask-question") == ""  # ready for a follow-up
    assert page.is_visible("#new-chat")

    llm.script(Reply.text("It was approved on 3 July [1].", chunks=4, chunk_delay=0.1))
    page.fill("#act-ask-question", "When was it approved?")
    page.press("#act-ask-question", "Enter")  # Enter sends
    page.wait_for_function("document.getElementById('stream').textContent.includes('approved')")
    assert wait_done(page) == "It was approved on 3 July [1]."
    sent = llm.requests[-1].json["messages"][-1]["content"]
    assert "Earlier in this conversation" in sent
    assert "What is the Q3 travel budget?" in sent and "12,000 EUR" in sent
    assert sent.index("Earlier in this conversation") < sent.index("When was it approved?")
    thread = page.inner_text("#thread")
    assert "What is the Q3 travel budget?" in thread and "12,000 EUR" in thread
    assert "When was it approved?" in page.inner_text("#current-question")
    assert page.locator("#citations li").count() >= 1
    assert page.is_hidden("#reply")  # Open reply is for drafts only
    # The answer box grows with its text: nothing scrolls inside it.
    assert page.eval_on_selector("#output", "e => e.scrollHeight <= e.clientHeight + 2")
    assert_compact(page)
    buttons = ax_names(page, "button")  # each Fluent button is a named button to a reader
    for name in ("Send", "Insert", "Copy", "Helpful", "Not helpful", "New conversation"):
        assert name in buttons, (name, buttons)
    assert ax_names(page, "list").count("Earlier questions and answers") == 1
    shoot(page, f"ask-follow-up-{width}.png")

    page.click("#new-chat")
    assert page.is_hidden("#thread") and page.is_hidden("#new-chat")
    assert page.errors == []


@pytest.fixture(scope="module")
def local_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An API with no language model: the extractive local engine answers."""
    root = tmp_path_factory.mktemp("local-pane")
    settings = Settings(home=root / "home", auth="dev", rate_limit_per_minute=1000,
                        parse_workers=1)  # fmt: skip
    assert not settings.llm_configured
    with serving(create_app(settings)) as url:
        yield url


WATCH_STREAM = """
window.__stream = [];
document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("stream");
  new MutationObserver(() => window.__stream.push(box.textContent))
    .observe(box, {childList: true, characterData: true, subtree: true});
});
"""


def test_summarise_streams_sentence_by_sentence_with_the_local_engine(
    pane: Any, local_url: str, browser: Any
):
    text = " ".join(
        [
            "The Atlas migration moves the invoice system to the new platform in spring.",
            "The largest risk is the legacy invoice export, a nightly batch job.",
            "Nobody has changed that export in six years and its author has left.",
            "The team plans a full dry run of the migration in March.",
            "Finance must sign off on the new invoice numbers before the switch.",
            "The budget for the migration is 80,000 EUR, approved by the board.",
            "Two contractors will help with testing the export in February.",
            "If the dry run fails, the switch moves to the summer holidays.",
        ]
    )
    page = pane({"host": "Word", "selection": text}, url=local_url, width=500)
    page.context.add_init_script(WATCH_STREAM)  # watch the stream from the page's start
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    page.click("#action-summarise")
    answer = wait_done(page)
    seen = [s for s in page.evaluate("window.__stream") if s]
    assert len(set(seen)) >= 2, seen  # the answer appeared piece by piece…
    assert all(answer.startswith(s) for s in seen), (seen, answer)  # …in order…
    assert [len(s) for s in seen] == sorted(len(s) for s in seen)
    assert seen[-1] == answer
    assert all(s.rstrip().endswith((".", "]", "!", "?")) for s in seen), seen  # …by sentence
    assert "local engine" in page.inner_text("#who")
    shoot(page, "summarise-local-500.png")
    assert page.errors == []


@pytest.mark.parametrize("width", [320, 500])
def test_a_drafted_reply_offers_open_reply_and_a_summary_does_not(
    pane: Any, llm: ScriptedLLM, width: int
):
    page = pane({"host": "Outlook", "mode": "read", "subject": "Budget", "from": "Anna Berg",
                 "body": MAIL}, width=width)  # fmt: skip
    llm.script(Reply.text("- Anna asks for the budget figures and the launch date [1]."))
    page.click("#action-summarise")
    wait_done(page)
    assert page.is_hidden("#reply") and page.is_visible("#copy")
    assert_compact(page)
    page.click("#action-reply")
    page.fill("#act-reply-notes", "12,000 EUR, launch 3 March")
    llm.script(Reply.text("Hi Anna,\nthe budget is 12,000 EUR and we launch on 3 March.\nBest"))
    page.click("#action-go")
    page.wait_for_selector("#reply", state="visible")  # a drafted reply: Open reply
    assert page.input_value("#output").startswith("Hi Anna,")
    assert_compact(page)
    shoot(page, f"outlook-draft-reply-{width}.png")
    page.click("#reply")
    page.wait_for_function("window.__calls.some(c => c.api === 'item.displayReplyForm')")


def test_cited_sources_under_the_answer_and_the_rest_behind_more(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": "", "body": "A report."}, width=500)
    llm.script(Reply.text("The largest risk is the legacy invoice export [1]."))
    page.click("#action-ask")
    page.fill("#act-ask-question", "What is the largest Atlas risk and the travel budget?")
    page.click("#action-go")
    wait_done(page)
    cited = page.locator("#citations li")
    assert cited.count() == 1  # only [1] is cited: only it is listed under the answer
    label = page.inner_text("#more-sources-label")  # every other passage given, folded
    assert label == f"More sources ({page.locator('#more-citations li').count()})"
    assert label != "More sources (0)" and page.is_hidden("#more-citations")
    page.click("#more-sources-label")
    assert page.is_visible("#more-citations li >> nth=0")
    both = page.inner_text("#citations") + page.inner_text("#more-citations")
    assert "atlas.md" in both and "budget.md" in both
    shoot(page, "ask-sources-500.png")


def test_editor_jumps_to_the_error_line_and_diffs_versions(pane: Any, llm: ScriptedLLM):
    page = pane({"host": "Word", "selection": "x"}, width=500)
    page.click("#skills-toggle")
    page.select_option("#skill", "draft")
    page.wait_for_selector("#skill-edit:text('Make my copy')")
    page.click("#skill-edit")
    page.wait_for_selector("#editor:not([hidden])")
    text = page.input_value("#editor-text")
    lines = text.split("\n")
    assert len(lines) > 40  # long enough that the error line is out of view
    numbers = page.inner_text("#editor-gutter").split()
    assert numbers[:3] == ["1", "2", "3"] and numbers[-1] == str(len(lines))
    bad = lines.index("Write the user's reply to the sender of the message.") + 1  # near the end
    assert bad > 60
    broken = lines.copy()
    broken[bad - 1] = "{{ notes | nosuchfilter }}"
    page.fill("#editor-text", "\n".join(broken))
    page.click("#editor-save")
    page.wait_for_selector("#editor-error:not([hidden])")
    error = page.inner_text("#editor-error")
    assert f"Line {bad}:" in error
    assert error.lower().count(f"line {bad}") == 1  # said once
    assert "<string>" not in error
    selected = page.evaluate(
        "(() => { const t = document.getElementById('editor-text');"
        " return t.value.slice(t.selectionStart, t.selectionEnd); })()"
    )
    assert selected == "{{ notes | nosuchfilter }}"
    box = page.eval_on_selector(
        "#editor-text",
        "t => [t.scrollTop, t.clientHeight, parseFloat(getComputedStyle(t).lineHeight)]",
    )
    top = (bad - 1) * box[2]
    assert box[0] > 0 and box[0] <= top <= box[0] + box[1], box  # the line is in view
    assert page.inner_text("#editor-gutter .bad").strip() == str(bad)
    assert page.eval_on_selector("#editor-gutter", "g => g.scrollTop") == box[0]
    shoot(page, "editor-error-500.png")

    page.fill("#editor-text", text.replace("concise", "brief", 1))
    page.fill("#editor-message", "brief")
    page.click("#editor-save")
    page.wait_for_selector("#editor-status:text('Saved as version 2')")
    page.fill("#editor-text", page.input_value("#editor-text") + "\n# a note\n")
    page.click("#editor-history")
    page.click("[aria-label='Compare version 1 with the text above']")
    page.wait_for_selector("#editor-diff:not([hidden])")
    diff = page.inner_text("#editor-diff-lines")
    assert "brief" in diff and "concise" in diff and "# a note" in diff
    assert page.locator("#editor-diff-lines li.add").count() >= 2
    assert page.locator("#editor-diff-lines li.del").count() >= 1
    assert "added" in page.inner_text("#editor-diff-summary")
    shoot(page, "editor-diff-500.png")
    assert page.errors == []


def test_dark_without_office_and_high_contrast(pane: Any, llm: ScriptedLLM):
    page = pane(None, dark=True)  # a plain browser in dark mode: the system decides
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(41, 41, 41)"  # Fluent's webDarkTheme neutral background
    button = page.eval_on_selector("#action-summarise", "b => getComputedStyle(b).backgroundColor")
    assert button != "rgb(255, 255, 255)"
    assert_compact(page)
    shoot(page, "preview-dark-320.png")

    page = pane({"host": "Word", "selection": "The Atlas migration is late."}, forced=True)
    assert page.evaluate("document.documentElement.dataset.theme") == "contrast"
    llm.script(Reply.text("The migration is late [1]."))
    page.click("#action-summarise")
    wait_done(page)
    assert_compact(page)
    shoot(page, "word-high-contrast-320.png")
    assert page.errors == []


COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective}: ${e.blockedURI || "inline"}`);
});
window.__officeConfig = {host: "Word", theme: "light", selection: "Revenue rose 12%.", body: ""};
"""


def test_fluent_needs_no_inline_style_or_script(browser: Any, api_url: str, llm: ScriptedLLM):
    """The pane under its policy without 'unsafe-inline' for styles (which the policy keeps
    only for Office.js): Fluent's styles are constructed stylesheets, so nothing is refused."""
    blocked: list[str] = []
    policies: list[str] = []

    def route(r: Any) -> None:
        url = r.request.url
        if url == OFFICE_JS:
            r.fulfill(body=STANDIN.read_text(), content_type="text/javascript")
        elif url.startswith(api_url + "/addins/"):
            response = r.fetch()
            headers = dict(response.headers)
            headers["content-security-policy"] = headers["content-security-policy"].replace(
                " 'unsafe-inline'", ""
            )
            policies.append(headers["content-security-policy"])
            r.fulfill(response=response, headers=headers)
        elif url.startswith(api_url + "/"):
            r.continue_()
        else:
            blocked.append(url)
            r.abort()

    context = browser.new_context(viewport={"width": 320, "height": 860})
    context.set_default_timeout(WAIT_MS)
    context.route("**/*", route)
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{api_url}/addins/office/index.html?dev=anna")
        page.wait_for_selector("body[data-ready=true]")
        llm.script(Reply.text("Revenue rose 12% [1]."))
        page.click("#action-summarise")
        page.wait_for_selector("#output-row:not([hidden])")
        page.click("#action-ask")
        page.wait_for_selector("#act-ask-question")
        assert policies and all("style-src 'self';" in p for p in policies), policies[:1]
        assert page.evaluate("window.__csp") == []
        assert errors == [] and blocked == []
    finally:
        context.close()

"""The public pages the Office and Teams manifests link to: /privacy, /terms, /support.

Teams refuses an app whose privacy and terms links do not open, and people do click them,
so the server that hosts the add-ins serves them too. Their text comes from the settings
(``COPILOT_PRIVACY_TEXT``, ``COPILOT_TERMS_TEXT``, ``COPILOT_SUPPORT_TEXT``, named for
``COPILOT_PUBLISHER``); without it each page says plainly what this copilot does and that
the administrator has not published their own text, rather than a placeholder.

Plain HTML: no script at all, one small style block, a policy that allows nothing else,
and relative links, so the pages work under a path prefix (``https://host/office/privacy``).
Settings text is plain text: escaped, a blank line starts a paragraph, and only http(s)
URLs and e-mail addresses become links.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from copilot.config import Settings

PRODUCT = "Office Copilot"
PAGES = {"privacy": "Privacy", "terms": "Terms of use", "support": "Support"}
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_STYLE = (
    'body{font-family:"Segoe UI",system-ui,sans-serif;max-width:42rem;margin:2rem auto;'
    "padding:0 1rem;line-height:1.5;color:#242424;background:#fff}"
    "a{color:#0f6cbd}nav a{margin-right:1rem}footer{margin-top:2rem;color:#616161}"
    "@media (prefers-color-scheme:dark){body{color:#e0e0e0;background:#1f1f1f}a{color:#479ef5}"
    "footer{color:#adadad}}"
)
_LINK = re.compile(
    r"(?P<url>https?://[^\s<>\"')\]]{1,2000}[^\s<>\"')\].,;:!?])"
    r"|(?P<mail>[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8})"
)

router = APIRouter(include_in_schema=False)


def paragraphs(text: str) -> str:
    """Plain text as HTML paragraphs: escaped, line breaks kept, links made clickable."""
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if b.strip()]
    return "\n".join(f"<p>{_linked(b).replace(chr(10), '<br>')}</p>" for b in blocks)


def page(title: str, body_text: str, publisher: str = "") -> str:
    """One page: its title, the text as paragraphs, and the links to the others."""
    who = html.escape(publisher or "")
    nav = " ".join(f'<a href="{slug}">{name}</a>' for slug, name in PAGES.items())
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)} — {PRODUCT}</title>\n<style>{_STYLE}</style>\n"
        "</head>\n<body>\n<main>\n"
        f"<h1>{html.escape(title)}</h1>\n{paragraphs(body_text)}\n</main>\n"
        f'<footer><nav aria-label="{PRODUCT}">{nav}</nav>'
        f"<p>{PRODUCT}{f' — run by {who}' if who else ''}</p></footer>\n</body>\n</html>\n"
    )


def privacy_text(settings: Settings) -> str:
    if settings.privacy_text:
        return settings.privacy_text
    who = settings.publisher or "your organisation"
    if settings.llm_configured:
        sent = (
            "To write an answer it sends the skill's instructions, your request and the "
            "passages it chose from your sources to the language model service your "
            "administrators configured, and nothing else."
        )
        if settings.redact:
            sent += (
                " E-mail addresses, phone numbers, card and account numbers are replaced by "
                "placeholders before anything is sent."
            )
    else:
        sent = (
            "No language model service is configured: answers are made on this server, and "
            "your documents and mail are not sent anywhere else."
        )
    return (
        f"{PRODUCT} is run by {who}.\n\n"
        "It indexes only the documents, files and mail you choose to sync: their text, "
        "the passages cut from it and search vectors are kept on the server that runs it, "
        "with a record of each skill run (your inputs, the answer and the sources it used), "
        "so that you can see your history and rate answers. Your index and your runs are "
        "yours: other people's requests cannot search or read them.\n\n"
        f"{sent}\n\n"
        "This is the standard statement of the software. Your administrator has not "
        "published a privacy statement of their own (COPILOT_PRIVACY_TEXT): ask them how "
        "long your data is kept and how to have it deleted."
    )


def terms_text(settings: Settings) -> str:
    if settings.terms_text:
        return settings.terms_text
    who = settings.publisher or "your organisation"
    return (
        f"{PRODUCT} is provided by {who} for work with your own documents and mail.\n\n"
        "Its answers, summaries and drafts are made by software from the sources it cites, "
        "and can be wrong or incomplete: check them against those sources before you rely "
        "on them, and read a draft before you send it. Sync only data you are allowed to "
        "process.\n\n"
        "These are the standard terms of the software. Your administrator has not published "
        "terms of their own (COPILOT_TERMS_TEXT)."
    )


def support_text(settings: Settings) -> str:
    if settings.support_text:
        return settings.support_text
    who = settings.publisher or "your IT department"
    return (
        f"For help with {PRODUCT}, contact {who}.\n\n"
        "When you report a problem, say when it happened, which skill you ran (summarise, "
        "draft, sentiment, ask or your own) and in which app (Word, Outlook, Teams or the "
        "command line), and copy the run id shown under the answer if there is one.\n\n"
        "Your administrator has not set a support contact for this page (COPILOT_SUPPORT_TEXT)."
    )


TEXTS: dict[str, Callable[[Settings], str]] = {
    "privacy": privacy_text,
    "terms": terms_text,
    "support": support_text,
}


def _respond(content: str) -> HTMLResponse:
    return HTMLResponse(
        content,
        headers={"Content-Security-Policy": CSP, "Cache-Control": "public, max-age=300"},
    )


def _register(slug: str, title: str) -> None:
    @router.api_route(f"/{slug}", methods=["GET", "HEAD"], name=f"page_{slug}")
    def show(request: Request) -> HTMLResponse:
        settings: Settings = request.app.state.settings
        return _respond(page(title, TEXTS[slug](settings), settings.publisher))


for _slug, _title in PAGES.items():
    _register(_slug, _title)


@router.api_route("/", methods=["GET", "HEAD"], name="page_home")
def home(request: Request) -> HTMLResponse:
    """The manifests' website link: what this server is, and the three pages."""
    settings: Settings = request.app.state.settings
    text = (
        f"This server runs {PRODUCT}: the API, the Word and Outlook add-ins and the Teams "
        "bot that work with your own documents and mail. Open it from Word, Outlook or "
        "Teams; the links below say how your data is handled and where to get help."
    )
    return _respond(page(PRODUCT, text, settings.publisher))


def _linked(text: str) -> str:
    out, last = [], 0
    for match in _LINK.finditer(text):
        out.append(html.escape(text[last : match.start()]))
        value = match.group()
        href = value if match.group("url") else f"mailto:{value}"
        link = f'<a href="{html.escape(href)}" rel="noopener noreferrer">'
        out.append(f"{link}{html.escape(value)}</a>")
        last = match.end()
    out.append(html.escape(text[last:]))
    return "".join(out)

"""The task pane works under its own Content Security Policy, in a real browser.

The other pane tests (tests/addins/test_addin_e2e.py) switch the policy off because
Playwright's ``wait_for_function`` needs eval; here it stays on, the pane runs a quick action
end to end, and the browser must report no policy violation at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from tests.fakes.api_server import serving
from tests.fakes.browser import OFFICE_JS, STANDIN
from tests.fakes.llm_server import Reply, ScriptedLLM

COLLECT_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective}: ${e.blockedURI || "inline"}`);
});
window.__officeConfig = {host: "Word", theme: "dark", selection: "Revenue rose 12%.", body: ""};
"""


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, ScriptedLLM]]:
    root = tmp_path_factory.mktemp("csp")
    with ScriptedLLM() as llm:
        settings = Settings(home=root / "home", auth="dev", llm_base_url=llm.base_url,
                            llm_timeout_s=5, llm_max_retries=0, parse_workers=1)  # fmt: skip
        with serving(create_app(settings)) as url:
            yield url, llm


def test_the_pane_runs_a_skill_with_no_policy_violation(
    api_url: tuple[str, Any], browser: Any
) -> None:
    url, llm = api_url
    llm.script(Reply.text("Revenue rose 12% [1]."))
    blocked: list[str] = []

    def route(r: Any) -> None:
        if r.request.url == OFFICE_JS:
            r.fulfill(body=STANDIN.read_text(), content_type="text/javascript")
        elif r.request.url.startswith(url + "/"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context = browser.new_context(viewport={"width": 320, "height": 860})
    context.set_default_timeout(15_000)
    context.route("**/*", route)
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(f"{url}/addins/office/index.html?dev=anna")
    assert response is not None and "frame-ancestors" in response.headers["content-security-policy"]
    page.wait_for_selector("body[data-ready=true]")
    page.click("#action-summarise")
    page.wait_for_selector("#output-row:not([hidden])")
    assert page.input_value("#output") == "Revenue rose 12% [1]."
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("window.__csp") == []
    assert errors == [] and blocked == []

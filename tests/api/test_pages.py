"""Every link the generated manifests carry opens on the server: the pane, the icons, and
the privacy, terms and support pages Teams and Office show (they used to 404)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import pytest

from copilot.api.app import create_app
from copilot.config import Settings
from copilot.deploy.manifests import build, deployment, manifest_urls, xml_urls
from tests.fakes.api_server import serving

BASE = "https://copilot.contoso.example"
APP_ID = "6f1c2b1e-8a7d-4c1e-9b7a-2f0e3d4c5b6a"
API_ID = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"


def manifest_links(out: Path) -> set[str]:
    """Every http(s) URL of the Word, Outlook and Teams manifests, as paths on the server."""
    built = build(deployment(BASE, APP_ID, API_ID), out)
    urls = xml_urls(ElementTree.parse(built.files["word-manifest.xml"]).getroot())
    urls += xml_urls(ElementTree.parse(built.files["outlook-manifest.xml"]).getroot())
    with zipfile.ZipFile(built.files["teams-app.zip"]) as package:
        urls += manifest_urls(json.loads(package.read("manifest.json")))
    paths = set()
    for url in urls:
        if url.startswith(BASE):
            parts = urlsplit(url)
            paths.add(parts.path + (f"?{parts.query}" if parts.query else ""))
    return paths


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(home=tmp_path / "home", auth="dev", publisher="Contoso IT",
                        support_text="Mail help@contoso.example <or call> 555-0100.")  # fmt: skip
    with serving(create_app(settings)) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_every_manifest_link_opens(server: httpx.Client, tmp_path: Path) -> None:
    paths = manifest_links(tmp_path / "manifests")
    assert {"/privacy", "/terms", "/support"} <= paths
    assert any(p.startswith("/addins/office/index.html?") for p in paths)

    for path in sorted(paths):
        response = server.get(path)
        assert response.status_code == 200, path


def test_pages_are_plain_html_with_the_settings_text_or_a_clear_default(
    server: httpx.Client,
) -> None:
    pages = {slug: server.get(f"/{slug}") for slug in ("privacy", "terms", "support", "")}
    for response in pages.values():
        assert response.headers["content-type"].startswith("text/html")
        assert "<script" not in response.text.lower()
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert 'href="privacy"' in response.text  # relative: works under a path prefix

    support = pages["support"].text
    assert '<a href="mailto:help@contoso.example"' in support
    assert "&lt;or call&gt; 555-0100" in support  # settings text is text, not markup
    privacy = pages["privacy"].text
    assert "run by Contoso IT" in privacy and "not sent anywhere else" in privacy
    assert "has not published a privacy statement of their own" in privacy
    assert "can be wrong" in pages["terms"].text
    assert server.head("/terms").status_code == 200

"""The Word/Outlook add-in manifests and the Teams app package, built and checked offline.

The checks are the ones Microsoft's own tools make where they work offline: the Teams manifest
against the official JSON schema (npm ``@microsoft/app-manifest``), the XML manifests through
``office-addin-manifest info`` and ``office-addin-manifest-converter`` followed by
``office-addin-manifest validate`` on the converted JSON. The npm packages are devDependencies
in addins/package.json; ``make test`` installs them with ``npm ci``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import jsonschema
import pytest
import typer
from typer.testing import CliRunner

from copilot.bot.commands import COMMANDS
from copilot.deploy.icons import ICON_FILES, IconError, check_icon, decode_rgba, png_info, render
from copilot.deploy.manifests import (
    TEAMS_MANIFEST_VERSION,
    ManifestError,
    build,
    deployment,
    render_teams,
)

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "addins" / "node_modules"
SCHEMAS = NODE_MODULES / "@microsoft" / "app-manifest" / "build" / "json-schemas" / "teams"
BASE = "https://copilot.contoso.example:8443/office"
APP_ID = "6f1c2b1e-8a7d-4c1e-9b7a-2f0e3d4c5b6a"
API_ID = "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
BOT_ID = "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "tp": "http://schemas.microsoft.com/office/taskpaneappversionoverrides",
    "m10": "http://schemas.microsoft.com/office/mailappversionoverrides",
    "m11": "http://schemas.microsoft.com/office/mailappversionoverrides/1.1",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
XSI_TYPE = f"{{{NS['xsi']}}}type"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    dep = deployment(BASE, APP_ID, API_ID, BOT_ID, version="1.4.2")
    out = tmp_path_factory.mktemp("manifests")
    return dep, build(dep, out)


def _xml(built, name: str) -> ElementTree.Element:
    return ElementTree.parse(built[1].files[name]).getroot()


def _teams(built) -> dict:
    with zipfile.ZipFile(built[1].files["teams-app.zip"]) as zf:
        return json.loads(zf.read("manifest.json"))


def _resources(root: ElementTree.Element, ns: str) -> dict[str, str]:
    """resid -> DefaultValue of every string, URL and image in a VersionOverrides block."""
    res = root.find(f"{ns}:Resources", NS)
    return {el.get("id"): el.get("DefaultValue") for el in res.iter() if el.get("id")}


# --- Word -------------------------------------------------------------------------------------


def test_word_manifest_puts_a_copilot_group_on_the_home_tab(built):
    root = _xml(built, "word-manifest.xml")
    assert root.get(XSI_TYPE) == "TaskPaneApp"
    assert root.findtext("o:Version", namespaces=NS) == "1.4.2.0"
    overrides = root.find("tp:VersionOverrides", NS)
    assert overrides.get(XSI_TYPE) == "VersionOverridesV1_0"
    surface = overrides.find(".//tp:ExtensionPoint", NS)
    assert surface.get(XSI_TYPE) == "PrimaryCommandSurface"
    tab = surface.find("tp:OfficeTab", NS)
    assert tab.get("id") == "TabHome"
    res = _resources(overrides, "tp")
    group = tab.find("tp:Group", NS)
    assert res[group.find("tp:Label", NS).get("resid")] == "Copilot"

    opened = {}
    for control in group.findall("tp:Control", NS):
        action = control.find("tp:Action", NS)
        assert action.get(XSI_TYPE) == "ShowTaskpane"
        assert action.findtext("tp:TaskpaneId", namespaces=NS) == "CopilotPane"  # one pane
        url = res[action.find("tp:SourceLocation", NS).get("resid")]
        label = res[control.find("tp:Label", NS).get("resid")]
        opened[label] = parse_qs(urlsplit(url).query)
        assert url.startswith(f"{BASE}/addins/office/index.html?")
    assert opened == {
        "Summarise": {"host": ["word"], "action": ["summarise"]},
        "Draft": {"host": ["word"], "action": ["draft"]},
        "Sentiment": {"host": ["word"], "action": ["sentiment"]},
        "Ask": {"host": ["word"], "action": ["ask"]},
        "Skills": {"host": ["word"], "action": ["skills"]},
    }
    sizes = {img.get("size") for img in group.find("tp:Icon", NS)}
    assert sizes == {"16", "32", "80"}


def test_word_manifest_registers_the_api_for_sso(built):
    info = _xml(built, "word-manifest.xml").find("tp:VersionOverrides/tp:WebApplicationInfo", NS)
    assert info.findtext("tp:Id", namespaces=NS) == API_ID
    assert info.findtext("tp:Resource", namespaces=NS) == (
        f"api://copilot.contoso.example:8443/{API_ID}"
    )
    scopes = {s.text for s in info.find("tp:Scopes", NS)}
    assert {"Mail.Read", "Files.Read.All", "Sites.Read.All", "offline_access"} <= scopes
    # WebApplicationInfo must be the last child of VersionOverrides.
    overrides = _xml(built, "word-manifest.xml").find("tp:VersionOverrides", NS)
    assert list(overrides)[-1].tag == f"{{{NS['tp']}}}WebApplicationInfo"


# --- Outlook ----------------------------------------------------------------------------------


def _outlook_buttons(block: ElementTree.Element, ns: str) -> dict[str, list[tuple]]:
    res = _resources(block, ns)
    found: dict[str, list[tuple]] = {}
    for point in block.iterfind(f".//{ns}:ExtensionPoint", NS):
        for control in point.iterfind(f".//{ns}:Control", NS):
            action = control.find(f"{ns}:Action", NS)
            url = res[action.find(f"{ns}:SourceLocation", NS).get("resid")]
            found.setdefault(point.get(XSI_TYPE), []).append(
                (
                    res[control.find(f"{ns}:Label", NS).get("resid")],
                    parse_qs(urlsplit(url).query)["action"][0],
                    action.findtext(f"{ns}:SupportsPinning", namespaces=NS),
                )
            )
    return found


def test_outlook_manifest_read_and_compose_surfaces(built):
    root = _xml(built, "outlook-manifest.xml")
    assert root.get(XSI_TYPE) == "MailApp"
    v10 = root.find("m10:VersionOverrides", NS)
    v11 = v10.find("m11:VersionOverrides", NS)
    assert (v10.get(XSI_TYPE), v11.get(XSI_TYPE)) == (
        "VersionOverridesV1_0",
        "VersionOverridesV1_1",
    )
    assert v11.find("m11:Requirements/bt:Sets", NS).get("DefaultMinVersion") == "1.5"

    pinned = _outlook_buttons(v11, "m11")
    assert pinned == {
        "MessageReadCommandSurface": [
            ("Summarise thread", "summarise", "true"),
            ("Draft reply", "draft", "true"),
            ("Sentiment", "sentiment", "true"),
        ],
        "MessageComposeCommandSurface": [("Improve draft", "improve", "true")],
    }
    # Clients without Mailbox 1.5 get the same buttons, without pinning (a 1.1-only element).
    plain = _outlook_buttons(v10, "m10")
    assert {k: [b[:2] for b in v] for k, v in plain.items()} == {
        k: [b[:2] for b in v] for k, v in pinned.items()
    }
    assert all(b[2] is None for v in plain.values() for b in v)

    info = v11.find("m11:WebApplicationInfo", NS)
    assert info.findtext("m11:Id", namespaces=NS) == API_ID
    assert list(v11)[-1] is info
    rules = {(r.get("ItemType"), r.get("FormType")) for r in root.iterfind("o:Rule/o:Rule", NS)}
    assert rules == {("Message", "Read"), ("Message", "Edit")}


# --- Teams ------------------------------------------------------------------------------------


def _teams_schema(version: str) -> dict:
    path = SCHEMAS / f"v{version}" / "MicrosoftTeams.schema.json"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in addins/ (make test does)")
    return json.loads(path.read_text(encoding="utf-8"))


# The schemas declare draft-04 but use draft-06's "const" (manifestVersion): enforce it too.
Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator, {"const": jsonschema.Draft6Validator.VALIDATORS["const"]}
)


def _schema_errors(manifest: dict, version: str) -> list[str]:
    validator = Validator(_teams_schema(version), format_checker=jsonschema.FormatChecker())
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(manifest)]


def test_teams_manifest_matches_the_official_schema(built):
    manifest = _teams(built)
    assert manifest["manifestVersion"] == TEAMS_MANIFEST_VERSION
    assert _schema_errors(manifest, TEAMS_MANIFEST_VERSION) == []


def test_schema_check_catches_what_teams_would_reject(built):
    manifest = _teams(built)
    manifest["name"]["short"] = "x" * 31
    manifest["accentColor"] = "blue"
    manifest["manifestVersion"] = "1.17"
    errors = _schema_errors(manifest, TEAMS_MANIFEST_VERSION)
    assert len(errors) == 3, errors


def test_teams_bot_and_sso(built):
    manifest = _teams(built)
    assert manifest["id"] == APP_ID
    (bot,) = manifest["bots"]
    assert bot["botId"] == BOT_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert bot["supportsFiles"] is True  # attached documents and workbooks, in personal chats
    listed = {scope for cl in bot["commandLists"] for scope in cl["scopes"]}
    assert listed == {"personal", "team", "groupChat"}
    for command_list in bot["commandLists"]:  # the bot's own list, in its order
        assert [(c["title"], c["description"]) for c in command_list["commands"]] == list(COMMANDS)
    assert manifest["webApplicationInfo"] == {
        "id": API_ID,
        "resource": f"api://copilot.contoso.example:8443/{API_ID}",
    }
    assert manifest["validDomains"] == ["copilot.contoso.example:8443"]


def test_bot_id_defaults_to_the_api_app(tmp_path):
    manifest = render_teams(deployment(BASE, APP_ID, API_ID))
    assert manifest["bots"][0]["botId"] == API_ID


def test_teams_package_layout_and_icons(built):
    with zipfile.ZipFile(built[1].files["teams-app.zip"]) as zf:
        assert sorted(zf.namelist()) == ["color.png", "manifest.json", "outline.png"]
        color, outline = zf.read("color.png"), zf.read("outline.png")
    assert (png_info(color).width, png_info(color).height) == (192, 192)
    assert (png_info(outline).width, png_info(outline).height) == (32, 32)
    pixels = [row[i : i + 4] for row in decode_rgba(outline) for i in range(0, len(row), 4)]
    assert all(px[3] == 0 or px[:3] == b"\xff\xff\xff" for px in pixels)  # white on transparent
    assert any(px[3] == 0 for px in pixels) and any(px[3] == 255 for px in pixels)


def test_ribbon_icons_are_written_next_to_the_manifests(built):
    for name, (size, _) in ICON_FILES.items():
        data = built[1].files[f"icons/{name}"].read_bytes()
        assert (png_info(data).width, png_info(data).height) == (size, size)


# --- Every URL --------------------------------------------------------------------------------


def _xml_values(path: Path) -> list[str]:
    values = []
    for el in ElementTree.parse(path).getroot().iter():
        values += [*el.attrib.values(), (el.text or "").strip()]
    return values


def _json_values(node, key=""):
    if isinstance(node, dict):
        return [v for k, val in node.items() if k != "$schema" for v in _json_values(val, k)]
    if isinstance(node, list):
        return [v for item in node for v in _json_values(item, key)]
    return [node] if isinstance(node, str) else []


def test_every_url_is_https_under_the_base_url(built):
    values = _xml_values(built[1].files["word-manifest.xml"])
    values += _xml_values(built[1].files["outlook-manifest.xml"])
    values += _json_values(_teams(built))
    urls = [v for v in values if "://" in v]
    assert len(urls) > 30
    for url in urls:
        if url.startswith("api://"):
            assert url == f"api://copilot.contoso.example:8443/{API_ID}"
        else:
            assert url.startswith(BASE + "/"), url


# --- Microsoft's tools, offline ---------------------------------------------------------------


def _tool(name: str) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (make system-deps installs them)")
    path = NODE_MODULES / ".bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `npm ci` in addins/ (make test does)")
    return path


def _run(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("name", "kind"), [("word-manifest.xml", "TaskPaneApp"), ("outlook-manifest.xml", "MailApp")]
)
def test_office_addin_manifest_reads_the_xml(built, name, kind):
    done = _run(_tool("office-addin-manifest"), "info", built[1].files[name], cwd=built[1].out_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Type: {kind}" in done.stdout
    assert f"Id: {built[1].ids[name.split('-')[0]]}" in done.stdout


def test_office_addin_manifest_fails_on_a_broken_xml(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<OfficeApp><Id>unclosed")
    assert _run(_tool("office-addin-manifest"), "info", bad, cwd=tmp_path).returncode != 0


@pytest.mark.parametrize("name", ["word-manifest.xml", "outlook-manifest.xml"])
def test_xml_converts_to_a_valid_unified_manifest(built, name, tmp_path):
    out = tmp_path / "json"
    done = _run(
        _tool("office-addin-manifest-converter"), "convert", built[1].files[name], "--output", out,
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    converted = out / "manifest.json"
    done = _run(_tool("office-addin-manifest"), "validate", converted, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads(converted.read_text(encoding="utf-8"))
    assert _schema_errors(manifest, manifest["manifestVersion"]) == []
    (extension,) = manifest["extensions"]
    pages = [rt["code"]["page"] for rt in extension["runtimes"]]
    assert pages and all(p.startswith(f"{BASE}/addins/office/index.html?") for p in pages)
    if name.startswith("outlook"):  # pinnable where Mailbox 1.5 is required, not below
        pinnable = {
            (rt["requirements"]["capabilities"][0]["minVersion"], a["pinnable"])
            for rt in extension["runtimes"]
            for a in rt["actions"]
        }
        assert pinnable == {("1.5", True), ("1.3", False)}


def test_teams_manifest_passes_office_addin_manifest_validate(built, tmp_path):
    with zipfile.ZipFile(built[1].files["teams-app.zip"]) as zf:
        zf.extractall(tmp_path)
    done = _run(
        _tool("office-addin-manifest"), "validate", tmp_path / "manifest.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("http://copilot.contoso.example", APP_ID, API_ID), "https"),
        (("copilot.contoso.example", APP_ID, API_ID), "https"),
        (("https://copilot.contoso.example/?x=1", APP_ID, API_ID), "query"),
        (("https://user:pw@copilot.contoso.example", APP_ID, API_ID), "user name"),
        (("https://copilot.contoso.example/a b", APP_ID, API_ID), "escaping"),
        (("https://copilot.contoso.example", "not-a-guid", API_ID), "--app-id"),
        (("https://copilot.contoso.example", APP_ID, "{" + API_ID + "}"), "--api-client-id"),
        (("https://copilot.contoso.example", APP_ID, API_ID, "bot"), "--bot-id"),
    ],
)
def test_refuses_bad_settings(args, message):
    with pytest.raises(ManifestError, match=message):
        deployment(*args)


def test_refuses_a_version_office_cannot_use():
    with pytest.raises(ManifestError, match="--version"):
        deployment(BASE, APP_ID, API_ID, version="1.2")


def test_base_url_is_normalised():
    dep = deployment("https://Copilot.Contoso.Example:443/office/", APP_ID, API_ID.upper())
    assert dep.base_url == "https://copilot.contoso.example:443/office"
    assert dep.api_client_id == API_ID


def test_surface_ids_are_stable_and_distinct():
    a, b = deployment(BASE, APP_ID, API_ID), deployment(BASE, APP_ID, API_ID, BOT_ID)
    ids = {a.derived_id("word"), a.derived_id("outlook"), APP_ID}
    assert len(ids) == 3 and a.derived_id("word") == b.derived_id("word")


def test_markup_in_a_name_stays_text(tmp_path):
    dep = deployment(BASE, APP_ID, API_ID, name='A&B <Copilot> "x"', provider="Contoso & Co")
    result = build(dep, tmp_path)
    root = ElementTree.parse(result.files["word-manifest.xml"]).getroot()
    assert root.find("o:DisplayName", NS).get("DefaultValue") == 'A&B <Copilot> "x"'
    with zipfile.ZipFile(result.files["teams-app.zip"]) as zf:
        assert json.loads(zf.read("manifest.json"))["developer"]["name"] == "Contoso & Co"


def test_refuses_too_many_or_too_long_bot_commands():
    dep = deployment(BASE, APP_ID, API_ID)
    with pytest.raises(ManifestError, match="1 to 10"):
        render_teams(dep, commands=[(f"c{i}", "d") for i in range(11)])
    with pytest.raises(ManifestError, match="title 1-32"):
        render_teams(dep, commands=[("x" * 33, "d")])


def test_a_failed_build_leaves_the_previous_one_intact(tmp_path, built):
    out = tmp_path / "out"
    first = build(built[0], out)
    before = {name: path.read_bytes() for name, path in first.files.items()}
    icons = tmp_path / "icons"
    shutil.copytree(first.out_dir / "icons", icons)
    (icons / "color.png").write_bytes(render(100, "color"))  # Teams wants 192×192
    with pytest.raises(ManifestError, match=r"color\.png: 100×100 px, must be 192×192"):
        build(deployment(BASE, APP_ID, API_ID, version="9.9.9"), out, icons_dir=icons)
    assert {name: path.read_bytes() for name, path in first.files.items()} == before
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


def test_icon_checks():
    with pytest.raises(IconError, match="must be white on transparent"):
        check_icon("outline.png", render(32, "color"))
    with pytest.raises(IconError, match="not a PNG"):
        check_icon("icon-16.png", b"GIF89a")
    with pytest.raises(IconError, match="truncated"):
        check_icon("icon-16.png", render(16, "color")[:-20])
    broken = bytearray(render(16, "color"))
    broken[40] ^= 0xFF  # inside the image data
    with pytest.raises(IconError, match="CRC"):
        check_icon("icon-16.png", bytes(broken))
    check_icon("outline.png", render(32, "outline"))


# --- The command ------------------------------------------------------------------------------


def _cli() -> typer.Typer:
    from copilot.cli.app import app

    return app


def test_command_builds_and_refuses(tmp_path):
    runner = CliRunner()
    out = tmp_path / "m"
    ok = runner.invoke(
        _cli(),
        [
            "manifest",
            "build",
            "--base-url",
            BASE,
            "--app-id",
            APP_ID,
            "--api-client-id",
            API_ID,
            "--out",
            str(out),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert sorted(p.name for p in out.iterdir()) == [
        "icons", "outlook-manifest.xml", "teams-app.zip", "word-manifest.xml",
    ]  # fmt: skip

    refused = runner.invoke(
        _cli(),
        ["manifest", "build", "--base-url", "http://copilot.contoso.example", "--app-id", APP_ID,
         "--api-client-id", API_ID, "--out", str(tmp_path / "never")],
    )  # fmt: skip
    assert refused.exit_code == 2
    assert "https" in refused.output
    assert not (tmp_path / "never").exists()

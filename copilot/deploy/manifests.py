"""Build the Word and Outlook add-in manifests and the Teams app package for one deployment.

The three manifests differ in format (two Office XML manifests, one Teams JSON manifest in a zip)
but share everything that varies between deployments: the public HTTPS base URL, the Entra ID
app of the API (SSO resource ``api://HOST/CLIENT-ID``), the bot id. Templates in
``manifest/templates`` carry the layout; this module fills them, refuses anything Office or
Teams would reject later with a vaguer message (plain http, ids that are not GUIDs, a URL that
escapes the base URL, icons of the wrong size) and writes the results atomically, so a failed
build never leaves half a package next to a good one.
"""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from xml.etree import ElementTree

import jinja2

from copilot.deploy.assets import asset_dir
from copilot.deploy.icons import ICON_FILES, IconError, check_icon
from copilot.errors import CopilotError
from copilot.fileio import write_atomically

DEFAULT_TEMPLATES = asset_dir("templates") or Path("manifest/templates")
DEFAULT_ICONS = asset_dir("icons") or Path("manifest/icons")
TEAMS_MANIFEST_VERSION = "1.22"
TEAMS_SCHEMA_URL = (
    f"https://developer.microsoft.com/json-schemas/teams/v{TEAMS_MANIFEST_VERSION}"
    "/MicrosoftTeams.schema.json"
)
# Delegated permissions the add-ins ask for: sign-in, and Graph for mail and files (the API
# reaches Graph on-behalf-of the user with the same permissions).
SSO_SCOPES = (
    "openid",
    "profile",
    "offline_access",
    "Mail.Read",
    "Files.Read.All",
    "Sites.Read.All",
)
# Where the pane and its icons live under the base URL (the API serves addins/ at /addins).
PANE_PATH = "/addins/office/index.html"
ICON_PATH = "/manifest/icons"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
VERSION = re.compile(r"^\d{1,5}\.\d{1,5}\.\d{1,5}$")
OUTPUT_FILES = ("word-manifest.xml", "outlook-manifest.xml", "teams-app.zip")


@dataclass(frozen=True)
class Button:
    action: str  # the pane's ?action= value
    label: str
    tip: str


WORD_BUTTONS = (
    Button(
        "summarise", "Summarise", "Summarise this document or the selected text, with citations."
    ),
    Button("draft", "Draft", "Draft text from your notes and your own documents."),
    Button("sentiment", "Sentiment", "Read the tone of the selected text."),
    Button("ask", "Ask", "Ask a question about your documents and mail."),
    Button("skills", "Skills", "Browse, test and edit your skills."),
)
OUTLOOK_SURFACES = (
    {
        "type": "MessageReadCommandSurface",
        "group": "Read",
        "buttons": (
            Button("summarise", "Summarise thread", "Summarise this conversation, with citations."),
            Button("draft", "Draft reply", "Draft a reply grounded in your mail and files."),
            Button("sentiment", "Sentiment", "Read the tone of this message."),
        ),
    },
    {
        "type": "MessageComposeCommandSurface",
        "group": "Compose",
        "buttons": (
            Button("improve", "Improve draft", "Improve the clarity and tone of your draft."),
        ),
    },
)


class ManifestError(CopilotError, ValueError):
    """The deployment settings cannot make valid manifests; the message names the problem."""

    kind = "bad_deployment"
    status = 400
    title = "The manifests cannot be built"


@dataclass(frozen=True)
class Deployment:
    """What varies between deployments; :func:`deployment` checks and normalises it."""

    base_url: str  # https://host[:port][/prefix], no trailing slash
    app_id: str
    api_client_id: str
    bot_id: str
    version: str = "0.1.0"
    name: str = "Office Copilot"
    provider: str = "Office Copilot"

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc

    @property
    def resource(self) -> str:
        """The API's application ID URI, the audience of the SSO tokens."""
        return f"api://{self.netloc}/{self.api_client_id}"

    def derived_id(self, surface: str) -> str:
        """A stable id per surface: one --app-id, three distinct apps that keep their identity."""
        return str(uuid.uuid5(uuid.UUID(self.app_id), f"office-copilot/{surface}"))


def _guid(value: str, option: str) -> str:
    if not GUID.match(value or ""):
        raise ManifestError(f"{option} must be a GUID (8-4-4-4-12 hex digits), not {value!r}")
    return value.lower()


def _base_url(value: str) -> str:
    try:
        parts = urlsplit(value.strip())
        port = parts.port  # raises on a malformed port
    except ValueError as exc:
        raise ManifestError(f"--base-url {value!r} is not a valid URL: {exc}") from exc
    if parts.scheme != "https":
        raise ManifestError(
            f"--base-url must use https (Office and Teams load add-ins and tabs only over "
            f"HTTPS, even from localhost), not {parts.scheme or 'no scheme'!r}"
        )
    if not parts.hostname or parts.username or parts.password:
        raise ManifestError("--base-url needs a host name and no user name or password")
    if parts.query or parts.fragment:
        raise ManifestError("--base-url must not carry a query or a fragment")
    if not re.fullmatch(r"[a-z0-9.-]+", parts.hostname) or ".." in parts.hostname:
        raise ManifestError(f"--base-url host {parts.hostname!r} is not a DNS name")
    path = parts.path.rstrip("/")
    if path and quote(path, safe="/-._~") != path:
        raise ManifestError(f"--base-url path {path!r} has characters that need escaping")
    netloc = parts.hostname + (f":{port}" if port else "")
    return f"https://{netloc}{path}"


def deployment(
    base_url: str,
    app_id: str,
    api_client_id: str,
    bot_id: str | None = None,
    *,
    version: str | None = None,
    name: str = "Office Copilot",
    provider: str = "Office Copilot",
) -> Deployment:
    """Check the settings; the bot id defaults to the API's app id (one Entra app for both)."""
    base_url = _base_url(base_url)  # checked in the order of the command's options
    app_id = _guid(app_id, "--app-id")
    api_client_id = _guid(api_client_id, "--api-client-id")
    bot_id = _guid(bot_id, "--bot-id") if bot_id else api_client_id
    version = version or _package_version()
    if not VERSION.match(version):
        raise ManifestError(f"--version must look like 1.2.3, not {version!r}")
    if not 0 < len(name) <= 30 or not 0 < len(provider) <= 32:
        raise ManifestError("the name must be 1-30 characters and the provider 1-32")
    return Deployment(
        base_url=base_url,
        app_id=app_id,
        api_client_id=api_client_id,
        bot_id=bot_id,
        version=version,
        name=name,
        provider=provider,
    )


def _package_version() -> str:
    try:
        found = metadata.version("office-copilot")
    except metadata.PackageNotFoundError:
        return "0.1.0"
    match = re.match(r"\d+\.\d+\.\d+", found)
    return match.group(0) if match else "0.1.0"


def bot_commands() -> list[tuple[str, str]]:
    """The bot's chat commands (title, description), from the one list the bot itself uses."""
    from copilot.bot.commands import COMMANDS  # the bot owns its commands; the manifest lists them

    return list(COMMANDS)


def _context(dep: Deployment, commands: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    base = dep.base_url

    def pane(host: str, action: str | None = None) -> str:
        query = f"?host={host}" + (f"&action={action}" if action else "")
        return f"{base}{PANE_PATH}{query}"

    return {
        "name": dep.name,
        "provider": dep.provider,
        "version": dep.version,
        "version4": f"{dep.version}.0",
        "ids": {
            "word": dep.derived_id("word"),
            "outlook": dep.derived_id("outlook"),
            "teams": dep.app_id,
            "api_client": dep.api_client_id,
            "bot": dep.bot_id,
        },
        "sso": {"resource": dep.resource, "scopes": SSO_SCOPES},
        "urls": {
            "support": f"{base}/support",
            "website": f"{base}/",
            "privacy": f"{base}/privacy",
            "terms": f"{base}/terms",
        },
        "pane": pane,
        "icon": lambda size: f"{base}{ICON_PATH}/icon-{size}.png",
        "word_buttons": WORD_BUTTONS,
        "outlook_surfaces": OUTLOOK_SURFACES,
        "teams": {
            "schema_url": TEAMS_SCHEMA_URL,
            "manifest_version": TEAMS_MANIFEST_VERSION,
            "accent_color": "#0F6CBD",
            "valid_domains": [dep.netloc],
            "commands": [{"title": t, "description": d} for t, d in commands or []],
        },
    }


def _environment(templates: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("xml", "xml.j2")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_word(dep: Deployment, templates: Path = DEFAULT_TEMPLATES) -> str:
    """The Word add-in manifest (TaskPaneApp) as XML text."""
    return _render_xml(dep, templates, "word.xml.j2")


def render_outlook(dep: Deployment, templates: Path = DEFAULT_TEMPLATES) -> str:
    """The Outlook add-in manifest (MailApp) as XML text."""
    return _render_xml(dep, templates, "outlook.xml.j2")


def render_teams(
    dep: Deployment,
    templates: Path = DEFAULT_TEMPLATES,
    commands: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The Teams app manifest as a dict (the zip carries it as manifest.json).

    ``commands`` default to the bot's own list; Teams shows at most 10 per scope, and titles
    over 32 characters are cut off in the command menu, so both are refused here.
    """
    commands = bot_commands() if commands is None else commands
    for title, description in commands:
        if not (0 < len(title) <= 32 and 0 < len(description) <= 128):
            raise ManifestError(f"bot command {title!r}: title 1-32, description 1-128 chars")
    if not 0 < len(commands) <= 10:
        raise ManifestError(f"Teams lists 1 to 10 bot commands per scope, not {len(commands)}")
    text = _environment(templates).get_template("teams.json.j2").render(_context(dep, commands))
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"teams.json.j2 does not render to JSON: {exc}") from exc
    check_urls(manifest_urls(manifest), dep.base_url)
    return manifest


def _render_xml(dep: Deployment, templates: Path, name: str) -> str:
    text = _environment(templates).get_template(name).render(_context(dep))
    try:
        root = ElementTree.fromstring(text.encode("utf-8"))
    except ElementTree.ParseError as exc:
        raise ManifestError(f"{name} does not render to well-formed XML: {exc}") from exc
    check_urls(xml_urls(root), dep.base_url)
    return text


def xml_urls(root: ElementTree.Element) -> list[str]:
    """Every URL an Office manifest points at (attribute values and element text)."""
    found = []
    for el in root.iter():
        values = [v for k, v in el.attrib.items() if not k.startswith("xmlns")]
        values.append((el.text or "").strip())
        found += [v for v in values if "://" in v]
    return found


def manifest_urls(node: Any) -> list[str]:
    """Every URL in a Teams manifest except ``$schema`` (the schema's own address)."""
    if isinstance(node, dict):
        return [u for k, v in node.items() if k != "$schema" for u in manifest_urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in manifest_urls(v)]
    return [node] if isinstance(node, str) and "://" in node else []


def check_urls(urls: list[str], base_url: str) -> None:
    """Every URL must be HTTPS under the base URL, or the API's own ``api://`` resource."""
    netloc = urlsplit(base_url).netloc
    for url in urls:
        if url.startswith("api://"):
            if urlsplit(url).netloc != netloc:
                raise ManifestError(f"SSO resource {url!r} is not on {netloc}")
        elif url != base_url and not url.startswith((base_url + "/", base_url + "?")):
            raise ManifestError(f"URL {url!r} is not under the base URL {base_url}")


def read_icons(folder: Path = DEFAULT_ICONS) -> dict[str, bytes]:
    """The icon files, each checked for size (and the outline for white on transparent)."""
    icons = {}
    for name in ICON_FILES:
        path = folder / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ManifestError(f"cannot read icon {path}: {exc.strerror}") from exc
        try:
            check_icon(name, data)
        except IconError as exc:
            raise ManifestError(str(exc)) from exc
        icons[name] = data
    return icons


def teams_package(manifest: dict[str, Any], icons: dict[str, bytes]) -> bytes:
    """The zip Teams accepts: manifest.json, color.png and outline.png at the root, nothing else."""
    buf = io.BytesIO()
    fixed = (1980, 1, 1, 0, 0, 0)  # a fixed date: the same inputs give the same bytes
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        entries = [
            ("manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False).encode() + b"\n"),
            (manifest["icons"]["color"], icons["color.png"]),
            (manifest["icons"]["outline"], icons["outline.png"]),
        ]
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name, fixed), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    files: dict[str, Path]  # output name -> path
    ids: dict[str, str]  # what each manifest is registered under


def build(
    dep: Deployment,
    out_dir: Path,
    *,
    templates: Path = DEFAULT_TEMPLATES,
    icons_dir: Path = DEFAULT_ICONS,
) -> BuildResult:
    """Render and check all three, then write them (and the icons) into ``out_dir``.

    Everything is rendered and checked before the first byte is written, and each file is
    replaced atomically, so ``out_dir`` holds either the previous build or the new one per file.
    """
    icons = read_icons(icons_dir)
    outputs = {
        "word-manifest.xml": render_word(dep, templates).encode("utf-8"),
        "outlook-manifest.xml": render_outlook(dep, templates).encode("utf-8"),
        "teams-app.zip": teams_package(render_teams(dep, templates), icons),
    }
    outputs.update({f"icons/{name}": data for name, data in icons.items()})
    files = {name: out_dir / name for name in outputs}
    for name, data in outputs.items():
        write_atomically(files[name], data, mode=0o644)  # manifests and icons are public
    return BuildResult(out_dir, files, dict(_context(dep)["ids"]))

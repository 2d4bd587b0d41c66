"""A built wheel carries the task pane and the manifest templates: installed into a fresh
virtual environment, away from the checkout, it serves ``/addins/office/`` and builds the
manifests."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECK = r"""
import sys, tempfile
from pathlib import Path
import copilot.deploy
assert "site-packages" in copilot.deploy.__file__, copilot.deploy.__file__
from fastapi.testclient import TestClient
from copilot.api.app import create_app
from copilot.config import Settings
from copilot.deploy.manifests import build, deployment

home = Path(tempfile.mkdtemp())
app = create_app(Settings(home=home, auth="dev"))
with TestClient(app, base_url="http://127.0.0.1") as client:
    page = client.get("/addins/office/")
    assert page.status_code == 200 and "<html" in page.text.lower(), page.status_code
    assert client.get("/manifest/icons/icon-32.png").status_code == 200
out = home / "manifests"
build(deployment("https://copilot.contoso.example", "00000000-0000-0000-0000-000000000001",
                 "00000000-0000-0000-0000-000000000002"), out)
print(sorted(p.name for p in out.iterdir()))
"""


def test_installed_wheel_serves_the_pane_and_builds_manifests(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = wheels.glob("office_copilot-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    # The dependencies come from the project's environment, appended after the wheel's own
    # site-packages (a .pth line adds a path without running that path's editable finder).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    done = subprocess.run(
        [str(python), "-c", CHECK], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "manifest" in done.stdout.lower() or ".xml" in done.stdout

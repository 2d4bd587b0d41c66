"""Build hook: copy the task pane and manifest assets into the package.

Everything else about the package is in pyproject.toml. ``addins/`` and ``manifest/`` stay
the sources; a built wheel carries copies under ``copilot/deploy/assets/`` so an installed
copilot serves ``/addins/office/`` and builds manifests (read through
``copilot.deploy.assets``).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COPIES = {  # source folder → folder under copilot/deploy/assets
    "addins/office": "addins/office",
    "manifest/templates": "manifest/templates",
    "manifest/icons": "manifest/icons",
}


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "copilot" / "deploy" / "assets"
        for source, dest in COPIES.items():
            src = HERE / source
            if src.is_dir():
                shutil.copytree(src, target / dest, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildWithAssets})

"""Writing result files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_atomically(save: Callable[[str], None], out: Path) -> None:
    """Call ``save(temp_path)`` on a file next to ``out``, then rename it over ``out``.

    The rename is atomic on one file system, so a reader sees the old file or the whole
    new one; on any error the temporary file is removed and the error re-raised.
    """
    if not out.parent.is_dir():
        raise ValueError(f"{out.parent}: no such folder to write {out.name} into.")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        save(tmp)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

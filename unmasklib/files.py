"""Writing a file so that readers only ever see the old version or the whole new one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, write: Callable[[BinaryIO], object],
                     prefix: str | None = None, suffix: str = ".tmp") -> Path:
    """`write(file)` into a unique temporary file beside `path`, then an atomic rename onto
    `path`: neither a crash nor two processes writing the same file at once can leave half a
    file behind. A failed or interrupted write removes its temporary file; one killed outright
    leaves `<prefix>...<suffix>` in the folder. The file is readable by all (mkstemp's 0600
    would hide a shared cache or checkpoint from other users)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path

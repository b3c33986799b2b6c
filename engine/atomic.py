"""Atomic file replacement for model files and checkpoints: a reader never sees half a file."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Call write(tmp) on a new file beside `path`, then rename it over `path`.

    The temporary file is created with O_EXCL and mode 0o666, so the result gets the user's
    umask like any other file (tempfile.mkstemp's 0o600 made shared model files unreadable to
    other users); on any error it is removed and `path` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

"""Atomic file replacement for model files and checkpoints: a reader never sees half a file."""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path


def new_temp_beside(path: Path, suffix: str = ".tmp") -> Path:
    """Create an empty, hidden, uniquely named file next to `path` and return its path.

    O_EXCL never clobbers anything; mode 0o666 lets the user's umask apply, so the file renamed
    over `path` later is readable like any other (tempfile.mkstemp's 0o600 made shared model
    files unreadable to other users).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def write_atomically(path: str | os.PathLike[str], write: Callable[[str], None]) -> Path:
    """Call write(tmp) on a new file beside `path` (`new_temp_beside`), then rename it over
    `path`; on any error the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    tmp = new_temp_beside(path)
    try:
        mode = stat.S_IMODE(tmp.stat().st_mode)  # 0o666 less the umask
        write(str(tmp))
        os.chmod(tmp, mode)  # a writer that replaced the file (safetensors does) made it 0o600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

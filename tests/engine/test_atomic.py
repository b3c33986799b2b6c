"""write_atomically: the umask decides the mode; a failed write leaves the old file alone."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from engine.atomic import write_atomically


def test_new_file_follows_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "m.json", lambda tmp: Path(tmp).write_text("{}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # mkstemp would have made it 0o600
    assert path.read_text() == "{}"


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("old")

    def broken(tmp: str) -> None:
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_a_writer_that_replaces_the_file_still_gets_the_umask_mode(tmp_path):
    """safetensors' save_file writes its own 0o600 file over the temporary one."""
    import torch
    from safetensors.torch import save_file

    old = os.umask(0o022)
    try:
        path = write_atomically(tmp_path / "m.safetensors",
                                lambda tmp: save_file({"w": torch.zeros(3)}, tmp))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644

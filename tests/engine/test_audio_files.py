"""Which files an input list means (`engine.audio.files.expand_paths`)."""

from __future__ import annotations

from pathlib import Path

from engine.audio.files import expand_paths, is_audio_name


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folders_are_walked_for_audio_and_files_pass_as_given(tmp_path):
    root = tmp_path / "in"
    for name in ("b.wav", "a.FLAC", "notes.txt", ".hidden.wav", "a.jatsr.wav",
                 "sub/c.mp3", "sub/deeper/d.ogg", ".cache/e.wav", "out/f.wav"):
        _touch(root / name)
    lone = _touch(tmp_path / "lone.txt")  # a file given by name is kept: reading it reports why
    found = expand_paths([root, lone], skip=root / "out")
    assert found == [(root / "a.FLAC", Path()), (root / "b.wav", Path()),
                     (root / "sub" / "c.mp3", Path("sub")),
                     (root / "sub" / "deeper" / "d.ogg", Path("sub/deeper")), (lone, Path())]


def test_our_outputs_and_hidden_files_are_not_audio_inputs():
    assert is_audio_name("take.aiff") and is_audio_name("x.RF64")
    assert not is_audio_name("take.jatsr.wav") and not is_audio_name(".take.wav")
    assert not is_audio_name("take.txt")

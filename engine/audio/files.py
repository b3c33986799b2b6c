"""Which files an input list means: files as given, folders walked for audio files.

Shared by the CLI (`jatsr upsample DIR`) and the app's drop handler, so both pick the same files
and both leave our own outputs (`name.jatsr.wav`) alone when a folder is processed again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

AUDIO_SUFFIXES = frozenset({".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif",
                            ".aiff", ".aifc", ".au", ".caf", ".w64", ".rf64"})
OUTPUT_MARK = ".jatsr."  # in every output name written next to its input (`output_path`)


def is_audio_name(name: str) -> bool:
    """An audio file by its extension, neither hidden nor one of our outputs."""
    return (Path(name).suffix.lower() in AUDIO_SUFFIXES and not name.startswith(".")
            and OUTPUT_MARK not in name)


def expand_paths(paths: Iterable[str | os.PathLike[str]],
                 skip: str | os.PathLike[str] | None = None) -> list[tuple[Path, Path]]:
    """(file, its folder relative to the folder given) for every input: a file as given (folder
    `Path()`), a folder recursively, sorted, hidden folders and the folder `skip` (where the
    outputs go, when it lies inside an input folder) left out. The relative folder lets an
    output folder mirror the input tree, so `a/x.wav` and `b/x.wav` stay apart."""
    skip_dir = Path(skip).expanduser().resolve() if skip is not None else None
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.is_dir():
            found.append((path, Path()))
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and (Path(root) / d).resolve() != skip_dir)
            rel = Path(root).relative_to(path)
            found.extend((Path(root) / name, rel) for name in sorted(files) if is_audio_name(name))
    return found

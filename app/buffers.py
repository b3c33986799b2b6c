"""A/B listening buffers with bounded memory: decoded block by block, disk-backed when large.

An hour of stereo at 44.1 kHz is 1.3 GB of float32 per buffer, and the listening view holds
three (original, restored, difference). Buffers above `IN_MEMORY_BYTES` live in anonymous
temporary files mapped into memory (`np.memmap`): the OS pages them in as the player and the
analysis read them and can drop them again, so resident memory stays bounded by the blocks in
flight. The temporary file has no name once created (POSIX) or is deleted on close (Windows), so
nothing is left on disk when a buffer is dropped or the app exits. No Qt here: pool threads
call these.

Layout: player `(S, Ch)` float32, at most 2 channels (more are mixed down, even/odd channels).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IN_MEMORY_BYTES = 256 * 2**20  # larger buffers are disk-backed
BLOCK_FRAMES = 2**18  # frames decoded (and differenced) per step: ~6 s at 44.1 kHz
TAIL_SLACK_S = 1.0  # room for a decoder that yields a little more than the header said


def cache_dir() -> Path | None:
    """Where disk-backed buffers go: $JATSR_CACHE_DIR, else the platform's per-user cache
    folder (not /tmp, which is often RAM-backed tmpfs); None (the system temp folder) when it
    cannot be created."""
    if os.environ.get("JATSR_CACHE_DIR"):
        path = Path(os.environ["JATSR_CACHE_DIR"])
    elif sys.platform == "win32":
        path = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / \
            "JaT-SR" / "cache"
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Caches" / "JaT-SR"
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jatsr"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log.warning("cannot use %s for listening buffers (%s); using the temp folder", path, e)
        return None
    return path


def allocate(frames: int, channels: int) -> np.ndarray:
    """A zeroed float32 `(frames, channels)` buffer: in memory, or disk-backed when large."""
    nbytes = frames * channels * 4
    if nbytes <= IN_MEMORY_BYTES:
        return np.zeros((frames, channels), np.float32)
    folder = cache_dir()
    with tempfile.TemporaryFile(prefix="jatsr-listen-", dir=folder) as f:  # nameless
        f.truncate(max(nbytes, 1))  # sparse: reads as zeros until written
        # the mapping outlives the file object (mmap duplicates the descriptor or handle)
        return np.memmap(f, dtype=np.float32, mode="r+", shape=(frames, channels))


def to_player_layout(block: np.ndarray) -> np.ndarray:
    """Engine `(Ch, n)` -> player `(n, Ch <= 2)` float32 (more channels: even/odd downmix)."""
    if block.shape[0] > 2:
        block = np.stack([block[0::2].mean(axis=0), block[1::2].mean(axis=0)])
    return np.ascontiguousarray(block.T, dtype=np.float32)


def decode(path: Path, sample_rate: int, frames: int | None = None) -> np.ndarray:
    """A file decoded and resampled to `sample_rate`, in player layout `(S, Ch)`.

    `frames` fixes the length (trimmed or zero-padded, as a restored file is to its input);
    otherwise it is the decoded length (the header's, give or take `TAIL_SLACK_S`).
    """
    import engine

    info = engine.probe(path)
    channels = min(info.channels, 2)
    expected = engine.resampled_length(info.frames, info.sample_rate, sample_rate)
    capacity = frames if frames is not None else expected + round(TAIL_SLACK_S * sample_rate)
    out = allocate(capacity, channels)
    written = _fill(out, engine.iter_blocks(path, BLOCK_FRAMES, sample_rate))
    if frames is not None:
        return out
    if written > capacity:
        log.warning("%s: %d frames more than the header announced were not loaded for listening",
                    path, written - capacity)
    return out[:min(written, capacity)]


def _fill(out: np.ndarray, blocks: Iterable[np.ndarray]) -> int:
    """Copy `(Ch, n)` blocks into `out` `(S, Ch)` from the start; returns the frames offered."""
    pos = 0
    for block in blocks:
        data = to_player_layout(block)
        n = max(0, min(data.shape[0], out.shape[0] - pos))
        out[pos : pos + n] = data[:n]
        pos += data.shape[0]
    return pos


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b, `(S, Ch)`, block by block into a buffer of the same kind."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    out = allocate(*a.shape)
    for start in range(0, a.shape[0], BLOCK_FRAMES):
        stop = start + BLOCK_FRAMES
        np.subtract(a[start:stop], b[start:stop], out=out[start:stop])
    return out

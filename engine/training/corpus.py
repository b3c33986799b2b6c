"""Training corpus: folders of audio -> checked, cached 44.1 kHz arrays, split by source file.

`scan` walks the folders, tries every file with `engine.audio.io.probe`, measures its real band
limit (`detect_cutoff_file`, as the pipeline does), excludes and reports what cannot be a target,
decodes the rest once (streamed, `iter_blocks`) into `cache_dir/<key>.npy` float32 `(Ch, S)` at
44.1 kHz, and splits by source file. The key hashes (path, size, mtime, libsndfile version), so
a changed file is re-read; results and failures are remembered in `<key>.json`, so a second scan
decodes nothing. Writes are atomic (temp file + rename): an interrupted build resumes.
Arrays stay float32 (1.27 GB per stereo hour): float16's rounding noise, ~70 dB under the
signal, would fill the very band the model learns to generate.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from engine.audio import io as audio_io
from engine.audio.cutoff import DETECTOR_VERSION, detect_cutoff_file
from engine.config import SAMPLE_RATE
from engine.cores import usable_cores
from engine.training.dataconfig import DataConfig

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MIN_FILE_S = 1.0  # shorter files are skipped; files between this and crop_s are zero-padded
BLOCK_FRAMES = 1 << 16  # decode block (source frames)
_CATEGORIES = {audio_io.EmptyAudio: "empty", audio_io.TooShortAudio: "too_short",
               audio_io.NonFiniteAudio: "non_finite", audio_io.UnsupportedRate: "unsupported_rate",
               audio_io.UnsupportedChannels: "unsupported_channels"}
Meta = dict[str, Any]  # one file's scan record, stored as <key>.json


@dataclass(frozen=True)
class FileEntry:
    """A usable source file: header facts, measured band limit, and its cached array."""

    path: str
    frames: int  # at the file's own rate
    sample_rate: int
    channels: int
    cutoff_hz: float  # measured content edge
    duration_s: float
    cache_path: str = ""  # (Ch, >= cached_frames) float32 .npy at 44.1 kHz
    cached_frames: int = 0
    group: str = ""  # top-level folder under its data folder (e.g. a category); "" at the top


@dataclass(frozen=True)
class Skipped:
    """A file that is not used, and why (category: unreadable, low_bandwidth, non_finite, ...)."""

    path: str
    reason: str
    category: str = "unreadable"


@dataclass
class Corpus:
    """The result of `scan`: train / val entries (split by source file) and every skip."""

    train: list[FileEntry]
    val: list[FileEntry]
    skipped: list[Skipped]
    cache_dir: str = ""

    def summary(self) -> dict[str, Any]:
        """Counts, minutes per split and a histogram of skip reasons (JSON-friendly)."""
        return {"files_seen": len(self.train) + len(self.val) + len(self.skipped),
                "train_files": len(self.train), "val_files": len(self.val),
                "train_minutes": round(sum(e.duration_s for e in self.train) / 60, 3),
                "val_minutes": round(sum(e.duration_s for e in self.val) / 60, 3),
                "skipped_files": len(self.skipped),
                "skip_reasons": dict(Counter(s.category for s in self.skipped))}


class AudioCache:
    """Decoded 44.1 kHz float32 arrays and per-file scan records, keyed by file identity."""

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(cache_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    def record(self, path: str) -> Meta:
        """Scan record of `path` (header, band limit, cache state): measured once, then read."""
        try:
            st = os.stat(path)
        except OSError as e:
            return {"key": None, "path": path, "error": ["unreadable", f"cannot stat ({e})"]}
        ident = f"{CACHE_VERSION}|{sf.__libsndfile_version__}|{path}|{st.st_size}|{st.st_mtime_ns}"
        key = hashlib.sha256(ident.encode()).hexdigest()[:24]
        try:
            meta = json.loads((self.dir / f"{key}.json").read_text())
            if meta.get("key") == key:
                if meta["error"] or meta.get("detector") == DETECTOR_VERSION:
                    return meta
                try:  # measured by an older detector: the band limit again, the array stays
                    return self._save({**meta, "detector": DETECTOR_VERSION,
                                       "cutoff_hz": detect_cutoff_file(path)})
                except audio_io.AudioInputError:
                    pass  # the file changed under its identity: scan it afresh below
        except (OSError, ValueError, KeyError):
            pass
        meta = {"key": key, "path": path, "error": None, "cached_frames": 0,
                "detector": DETECTOR_VERSION}
        try:
            info = audio_io.probe(path)
            meta.update(frames=info.frames, sample_rate=info.sample_rate, channels=info.channels,
                        duration_s=info.duration_s, cutoff_hz=detect_cutoff_file(path))
        except audio_io.AudioInputError as e:
            meta["error"] = [_CATEGORIES.get(type(e), "unreadable"), e.reason]
        return self._save(meta)

    def array_path(self, meta: Meta) -> Path:
        return self.dir / f"{meta['key']}.npy"

    def has_array(self, meta: Meta) -> bool:
        """Whether a complete array for this record is in the cache (header check only)."""
        try:
            arr = np.load(self.array_path(meta), mmap_mode="r")
        except (OSError, ValueError):
            return False
        return bool(meta["cached_frames"]) and arr.shape == (meta["channels"], _resampled(meta))

    def ensure_array(self, meta: Meta) -> Meta:
        """Decode the file into the cache (streamed, atomic); returns the updated record."""
        dest, expected = self.array_path(meta), _resampled(meta)
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            arr = np.lib.format.open_memmap(tmp, "w+", np.float32, (meta["channels"], expected))
            pos = 0
            for block in audio_io.iter_blocks(meta["path"], BLOCK_FRAMES, SAMPLE_RATE):  # (Ch,n)
                n = max(0, min(block.shape[1], expected - pos))
                arr[:, pos : pos + n] = block[:, :n]
                pos += block.shape[1]
            arr.flush()
            del arr
            os.replace(tmp, dest)
            if pos != expected:  # headers of some compressed formats are approximate
                log.warning("%s: decoded %d frames, expected %d", meta["path"], pos, expected)
            meta = {**meta, "cached_frames": min(pos, expected)}
        except audio_io.AudioInputError as e:  # e.g. NaN past what the band-limit check read
            meta = {**meta, "error": [_CATEGORIES.get(type(e), "unreadable"), e.reason]}
        finally:
            tmp.unlink(missing_ok=True)
        return self._save(meta)

    @staticmethod
    def open(entry: FileEntry) -> np.ndarray:
        """The cached `(Ch, cached_frames)` float32 array, memory-mapped read-only."""
        return np.load(entry.cache_path, mmap_mode="r")[:, : entry.cached_frames]

    def _save(self, meta: Meta) -> Meta:
        path = self.dir / f"{meta['key']}.json"
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, path)
        return meta


def _resampled(meta: Meta) -> int:
    return audio_io.resampled_length(meta["frames"], meta["sample_rate"], SAMPLE_RATE)


def scan(cfg: DataConfig, log_fn: Callable[[str], None] | None = None,
         workers: int | None = None) -> Corpus:
    """Find, check, cache and split the audio under `cfg.folders`; every skip is reported.

    `log_fn` receives the progress, skip and summary lines instead of this module's logger.
    `workers` threads measure and decode files at once (None: one per CPU core, at most 32);
    decoding, resampling and the band-limit FFTs release the GIL, so threads scale.
    """
    if not cfg.folders:
        raise ValueError("folders: no data folders given")
    cache_dir = cfg.cache_dir or tempfile.mkdtemp(prefix="jatsr-cache-")
    if cfg.cache_dir is None:
        log.warning("no cache_dir: decoding into %s, deleted at exit", cache_dir)
        atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    cache = AudioCache(cache_dir)

    def say(msg: str, level: int = logging.INFO) -> None:
        (log_fn or (lambda m: log.log(level, "%s", m)))(msg)

    kept: list[tuple[str, FileEntry]] = []
    kept_val: list[tuple[str, FileEntry]] = []
    skipped: list[Skipped] = []
    found = _find_files(cfg.folders, cache.dir.resolve(), skipped)
    n_train = len(found)
    if cfg.val_folders:  # an explicit held-out set: no split of the training folders
        found += _find_files(cfg.val_folders, cache.dir.resolve(), skipped)
    n_workers = workers if workers is not None else min(32, usable_cores())
    with ThreadPoolExecutor(max(1, n_workers), thread_name_prefix="jatsr-scan") as pool:
        scanned = pool.map(lambda p: _scan_file(cache, cfg, p), [path for _, path in found])
        for i, ((rel, path), (meta, decoded)) in enumerate(zip(found, scanned, strict=True)):
            if decoded:
                say(f"cached {i + 1}/{len(found)}: {path}")
            reason = _skip_reason(meta, cfg)
            if reason is not None:
                skipped.append(Skipped(path, reason[1], reason[0]))
                say(f"skipped {path}: {reason[1]}", logging.WARNING)
                continue
            (kept if i < n_train else kept_val).append((rel, FileEntry(
                path, meta["frames"], meta["sample_rate"], meta["channels"],
                float(meta["cutoff_hz"]), float(meta["duration_s"]),
                str(cache.array_path(meta)), int(meta["cached_frames"]), _group(rel))))
    if cfg.val_folders:
        train = sorted((e for _, e in kept), key=lambda e: e.path)
        val = sorted((e for _, e in kept_val), key=lambda e: e.path)
    else:
        train, val = _split(kept, cfg)
    for entry in skipped:
        if entry.category == "duplicate":
            say(f"skipped {entry.path}: {entry.reason}", logging.WARNING)
    corpus = Corpus(train, val, skipped, str(cache.dir))
    say(f"data: {json.dumps(corpus.summary())}")
    return corpus


def _scan_file(cache: AudioCache, cfg: DataConfig, path: str) -> tuple[Meta, bool]:
    """One file's record, its array decoded into the cache when it is a usable target;
    (record, whether it was decoded now)."""
    meta = cache.record(path)
    if _skip_reason(meta, cfg) is not None or cache.has_array(meta):
        return meta, False
    return cache.ensure_array(meta), True


def _find_files(folders: Sequence[str], cache_dir: Path, skipped: list[Skipped]
                ) -> list[tuple[str, str]]:
    """(path relative to its folder, path) of every file, sorted; duplicates go to `skipped`."""
    seen: set[str] = set()
    seen_dirs = {cache_dir}  # the cache may live inside a data folder; links may loop
    out: list[tuple[str, str]] = []
    for folder in folders:
        root = Path(folder).resolve()
        if not root.is_dir():
            raise ValueError(f"folders: {folder} is not a directory")
        seen_dirs.add(root)
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            subdirs = [(d, Path(dirpath, d).resolve()) for d in sorted(dirnames)]
            dirnames[:] = [d for d, real in subdirs if real not in seen_dirs]
            seen_dirs.update(real for _, real in subdirs)
            for name in sorted(filenames):
                path, real = Path(dirpath, name), os.path.realpath(Path(dirpath, name))
                if real in seen:
                    skipped.append(Skipped(str(path), f"duplicate of {real}", "duplicate"))
                else:
                    seen.add(real)
                    out.append((path.relative_to(root).as_posix(), str(path)))
    return out


def _group(rel: str) -> str:
    """The first folder of a path relative to its data folder ("" for a file at the top)."""
    parts = rel.split("/")
    return parts[0] if len(parts) > 1 else ""


def _skip_reason(meta: Meta, cfg: DataConfig) -> tuple[str, str] | None:
    """(category, reason) when the scanned file cannot be a training target."""
    if meta["error"] is not None:
        return meta["error"][0], meta["error"][1]
    if meta["duration_s"] < MIN_FILE_S:
        return "too_short", f"too short: {meta['duration_s']:.2f} s (< {MIN_FILE_S:g} s)"
    if meta["cutoff_hz"] < cfg.min_bandwidth_hz:
        return "low_bandwidth", (f"content stops at {meta['cutoff_hz'] / 1000:.1f} kHz "
                                 f"< {cfg.min_bandwidth_hz / 1000:g} kHz")
    return None


def _split(kept: list[tuple[str, FileEntry]], cfg: DataConfig
           ) -> tuple[list[FileEntry], list[FileEntry]]:
    """Hold out whole files: those with the lowest hash of (seed, path relative to folder)."""
    ranked = sorted(kept, key=lambda k: hashlib.sha256(f"{cfg.seed}|{k[0]}".encode()).digest())
    n = len(ranked)
    n_val = cfg.val_files
    if n_val is None:
        n_val = max(1, round(cfg.val_fraction * n)) if cfg.val_fraction > 0 and n >= 2 else 0
    if n_val > max(n - 1, 0):
        log.warning("only %d usable files: holding out %d for validation", n, max(n - 1, 0))
        n_val = max(n - 1, 0)
    val = sorted((e for _, e in ranked[:n_val]), key=lambda e: e.path)
    return sorted((e for _, e in ranked[n_val:]), key=lambda e: e.path), val

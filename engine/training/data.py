"""Training data: folders of audio -> cached 44.1 kHz arrays -> random crops with simulated LR.

`scan` walks the folders, tries every file with `engine.audio.io.probe`, measures its real band
limit (`detect_cutoff_file`, as the pipeline does), excludes and reports what cannot be a target,
decodes the rest once (streamed, `iter_blocks`) into `cache_dir/<key>.npy` float32 `(Ch, S)` at
44.1 kHz, and splits by source file. The key hashes (path, size, mtime, libsndfile version), so
a changed file is re-read; results and failures are remembered in `<key>.json`, so a second scan
decodes nothing. Writes are atomic (temp file + rename): an interrupted build resumes.
Arrays stay float32 (1.27 GB per stereo hour): float16's rounding noise, ~70 dB under the
signal, would fill the very band the model learns to generate.

Loudness: unweighted RMS of the crop's active part, gated like EBU R128 on 100 ms blocks
(absolute -70 dBFS, relative -20 dB). A K-weighting would rate the high band (the part the model
learns) lower and changes little for broadband material.
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
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import IterableDataset, get_worker_info

from engine.audio import io as audio_io
from engine.audio.cutoff import detect_cutoff_file
from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.training.degrade import DegradeConfig, Degrader

log = logging.getLogger(__name__)

CACHE_VERSION = 1
MIN_FILE_S = 1.0  # shorter files are skipped; files between this and crop_s are zero-padded
BLOCK_FRAMES = 1 << 16  # decode block (source frames)
GATE_BLOCK = 4410  # 100 ms loudness blocks
ABS_GATE_DB, REL_GATE_DB = -70.0, -20.0
PEAK_LIMIT = 0.99
MAX_OPEN_ARRAYS = 64  # memory maps kept open per process (each holds a file descriptor)
MAX_ATTEMPTS = 16  # crop attempts (failed reads, silent crops) before giving up
VAL_CUTOFFS_HZ = (4000.0, 8000.0, 11025.0)
_CATEGORIES = {audio_io.EmptyAudio: "empty", audio_io.TooShortAudio: "too_short",
               audio_io.NonFiniteAudio: "non_finite", audio_io.UnsupportedRate: "unsupported_rate",
               audio_io.UnsupportedChannels: "unsupported_channels"}
Meta = dict[str, Any]  # one file's scan record, stored as <key>.json


@dataclass(frozen=True)
class DataConfig:
    """Where the audio is and how crops are cut, levelled, split and degraded."""

    folders: tuple[str, ...]  # searched recursively (symlinks followed)
    crop_s: float = 6.0  # crop length, rounded to whole hops of 512 samples
    min_bandwidth_hz: float = 18000.0  # measured content edge below this: not a target
    val_fraction: float = 0.05  # share of kept files held out (at least 1 of >= 2 files) ...
    val_files: int | None = None  # ... or exactly this many
    val_folders: tuple[str, ...] = ()  # held-out folders instead of splitting `folders`
    cache_dir: str | None = None  # None: a temporary dir (the trainer passes <out>/cache)
    target_rms_db: float = -20.0  # active RMS after normalisation, dBFS
    gain_db: tuple[float, float] = (-6.0, 6.0)  # then a uniform random gain
    mixdown_prob: float = 0.3  # else one random channel
    seed: int = 0  # validation split
    degrade: DegradeConfig = field(default_factory=DegradeConfig)

    def __post_init__(self) -> None:
        for f in fields(self):  # lists from JSON/TOML become tuples: hashable, comparable
            if isinstance(getattr(self, f.name), list):
                object.__setattr__(self, f.name, tuple(getattr(self, f.name)))
        if isinstance(self.degrade, dict):
            object.__setattr__(self, "degrade", DegradeConfig(**self.degrade))
        lo, hi = self.gain_db if len(self.gain_db) == 2 else (1, 0)
        for ok, name, msg in [
            (isinstance(self.folders, tuple) and all(isinstance(f, str) for f in self.folders),
             "folders", "must be a tuple of paths (str)"),
            (0.5 <= self.crop_s <= 60, "crop_s", "must be in [0.5, 60] s"),
            (0 <= self.min_bandwidth_hz <= 22050, "min_bandwidth_hz", "must be in [0, 22050]"),
            (0 <= self.val_fraction < 1, "val_fraction", "must be in [0, 1)"),
            (self.val_files is None or self.val_files >= 0, "val_files", "must be >= 0"),
            (-60 <= self.target_rms_db <= -3, "target_rms_db", "must be in [-60, -3] dBFS"),
            (-40 <= lo <= hi <= 40, "gain_db", "must be (low, high), -40 <= low <= high <= 40"),
            (0 <= self.mixdown_prob <= 1, "mixdown_prob", "must be in [0, 1]"),
            (isinstance(self.degrade, DegradeConfig), "degrade", "must be a DegradeConfig"),
        ]:
            if not ok:
                raise ValueError(f"{name}: {msg}")


def crop_samples(crop_s: float) -> int:
    """S: crop length in samples, a whole number of 512-sample hops."""
    return max(1, round(crop_s * SAMPLE_RATE / HOP_SAMPLES)) * HOP_SAMPLES


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
                return meta
        except (OSError, ValueError):
            pass
        meta = {"key": key, "path": path, "error": None, "cached_frames": 0}
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


def scan(cfg: DataConfig, log_fn: Callable[[str], None] | None = None) -> Corpus:
    """Find, check, cache and split the audio under `cfg.folders`; every skip is reported.

    `log_fn` receives the progress, skip and summary lines instead of this module's logger.
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
    for i, (rel, path) in enumerate(found):
        meta = cache.record(path)
        if _skip_reason(meta, cfg) is None and not cache.has_array(meta):
            say(f"caching {i + 1}/{len(found)}: {path}")
            meta = cache.ensure_array(meta)
        reason = _skip_reason(meta, cfg)
        if reason is not None:
            skipped.append(Skipped(path, reason[1], reason[0]))
            say(f"skipped {path}: {reason[1]}", logging.WARNING)
            continue
        (kept if i < n_train else kept_val).append((rel, FileEntry(
            path, meta["frames"], meta["sample_rate"], meta["channels"],
            float(meta["cutoff_hz"]), float(meta["duration_s"]), str(cache.array_path(meta)),
            int(meta["cached_frames"]))))
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


def active_rms_db(x: np.ndarray) -> float | None:
    """Gated RMS (dBFS) of `x` (S,) over 100 ms blocks; None when no block passes the gate."""
    n = max(1, x.shape[0] // GATE_BLOCK)
    blocks = np.resize(x, n * GATE_BLOCK) if x.shape[0] < GATE_BLOCK else x[: n * GATE_BLOCK]
    power = np.mean(np.square(blocks.reshape(n, -1), dtype=np.float64), axis=1)  # (n,)
    loud = power[power > 10 ** (ABS_GATE_DB / 10)]
    if loud.size == 0:
        return None
    return float(10 * np.log10(loud[loud >= loud.mean() * 10 ** (REL_GATE_DB / 10)].mean()))


def _level(x: np.ndarray, rms_db: float, target_db: float) -> np.ndarray:
    """Scale `x` (S,) from `rms_db` to `target_db`, then down so its peak is <= PEAK_LIMIT."""
    x = x * np.float32(10 ** ((target_db - rms_db) / 20))
    peak = float(np.max(np.abs(x)))
    return x * np.float32(PEAK_LIMIT / peak) if peak > PEAK_LIMIT else x


class CropDataset(IterableDataset):
    """Random crops {"hr", "lr": (1, S) float32, "cutoff_hz", "kind", "failed_crops"}.

    Files are drawn in proportion to their duration. `sample(rng)` makes one crop from a given
    generator; iterating gives an endless (or `epoch_len` per rank) stream seeded by
    (seed, epoch, rank, DataLoader worker). `failed_crops` counts unreadable cache files met
    since the previous sample in that process: sum it per epoch beside `Corpus.summary()`.
    """

    def __init__(self, corpus_entries: Sequence[FileEntry], cfg: DataConfig,
                 cache: AudioCache | None = None, rank: int = 0, world_size: int = 1,
                 seed: int = 0, epoch_len: int | None = None) -> None:
        super().__init__()
        if not corpus_entries:
            raise ValueError("corpus_entries: no files to crop from")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: {rank} not in [0, {world_size})")
        self.entries, self.cfg, self.cache = list(corpus_entries), cfg, cache
        self.rank, self.world_size, self.seed, self.epoch_len = rank, world_size, seed, epoch_len
        self.epoch, self.crop_samples = 0, crop_samples(cfg.crop_s)
        frames = np.array([max(e.cached_frames, 1) for e in self.entries], np.float64)
        self._cum = np.cumsum(frames) / frames.sum()
        self.degrader = Degrader(cfg.degrade)
        self.counts: Counter[str] = Counter()  # this process: samples, failed_crops, silent
        self._pending_failures = 0
        self._arrays: OrderedDict[str, np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": OrderedDict()}  # workers open their own maps

    def set_epoch(self, epoch: int) -> None:
        """Start the stream of `epoch` (call before creating the DataLoader iterator)."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        count = None
        if self.epoch_len is not None:
            count = self.epoch_len // workers + int(worker < self.epoch_len % workers)
        made = 0
        while count is None or made < count:
            yield self.sample(rng)
            made += 1

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One crop, levelled and degraded, drawn with `rng` only (reproducible)."""
        for attempt in range(MAX_ATTEMPTS):
            entry = self.entries[int(np.searchsorted(self._cum, rng.random(), side="right"))]
            try:
                audio = self._array(entry)  # (Ch, N)
            except (OSError, ValueError) as e:
                self.counts["failed_crops"] += 1
                self._pending_failures += 1
                log.warning("crop from %s failed: %s", entry.path, e)
                continue
            hr = self._crop(audio, rng)  # (S,)
            rms_db = active_rms_db(hr)
            if rms_db is None and attempt < MAX_ATTEMPTS // 2:
                self.counts["silent_crops_redrawn"] += 1
                continue
            gain_db = float(rng.uniform(*self.cfg.gain_db))
            if rms_db is not None:
                hr = _level(hr, rms_db, self.cfg.target_rms_db + gain_db)
            deg = self.degrader(hr, rng)
            self.counts["samples"] += 1
            failed, self._pending_failures = self._pending_failures, 0
            return {"hr": torch.from_numpy(hr)[None], "lr": torch.from_numpy(deg.lr)[None],
                    "cutoff_hz": float(deg.cutoff_hz), "kind": deg.kind, "failed_crops": failed}
        raise RuntimeError(f"{MAX_ATTEMPTS} crop attempts in a row failed; see the log")

    def _crop(self, audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A random (S,) float32 crop: one random channel or the mixdown, zero-padded if short."""
        (n_ch, n), size = audio.shape, self.crop_samples
        start = int(rng.integers(0, max(n - size, 0) + 1))
        seg = np.asarray(audio[:, start : start + size], dtype=np.float32)  # (Ch, <=S)
        if n_ch > 1 and rng.random() < self.cfg.mixdown_prob:
            mono = seg.mean(axis=0)
        else:
            mono = seg[int(rng.integers(n_ch))]
        if mono.shape[0] == size:
            return np.ascontiguousarray(mono)
        out = np.zeros(size, np.float32)
        offset = int(rng.integers(0, size - mono.shape[0] + 1))
        out[offset : offset + mono.shape[0]] = mono
        return out

    def _array(self, entry: FileEntry) -> np.ndarray:
        arr = self._arrays.pop(entry.cache_path, None)
        if arr is None:
            arr = (self.cache or AudioCache).open(entry)
            if len(self._arrays) >= MAX_OPEN_ARRAYS:
                self._arrays.popitem(last=False)
        self._arrays[entry.cache_path] = arr
        return arr


@dataclass(frozen=True, eq=False)
class ValItem:
    """One validation case: a held-out crop, its LR version and the cutoff it stands for."""

    hr: np.ndarray  # (S,) float32, shared by the cutoffs of one crop
    lr: np.ndarray  # (S,) float32
    cutoff_hz: float  # 4000 / 8000 / 11025 (for "resample": the low rate's Nyquist)
    path: str
    start_s: float


class ValidationSet:
    """Fixed validation crops from held-out files, each degraded at 4 / 8 / 11.025 kHz."""

    def __init__(self, items: list[ValItem]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ValItem]:
        return iter(self.items)

    @classmethod
    def build(cls, corpus_val_entries: Sequence[FileEntry],
              cache: AudioCache | DataConfig | None = None, cfg: DataConfig | None = None, *,
              crops_per_file: int = 2, max_crops: int = 32, family: str = "resample",
              cutoffs_hz: Sequence[float] = VAL_CUTOFFS_HZ) -> ValidationSet:
        """Deterministic crops (evenly spaced, mixdown, levelled to target, no random gain).

        Accepts `(entries, cache, cfg)` and `(entries, cfg)`. `family="resample"` gives the LR
        a real file of rate 2 x cutoff has (its -6 dB edge is 0.95 x the cutoff, soxr's).
        """
        if isinstance(cache, DataConfig):
            cache, cfg = None, cache
        if cfg is None:
            raise ValueError("cfg: a DataConfig is needed")
        size, degrader = crop_samples(cfg.crop_s), Degrader(cfg.degrade)
        items: list[ValItem] = []
        n_crops = 0
        for entry in sorted(corpus_val_entries, key=lambda e: e.path):
            audio = (cache or AudioCache).open(entry)  # (Ch, N)
            last = max(audio.shape[1] - size, 0)
            for start in sorted({round(k * last / max(crops_per_file - 1, 1))
                                 for k in range(crops_per_file)}):
                if n_crops >= max_crops:
                    break
                hr = np.zeros(size, np.float32)
                seg = np.asarray(audio[:, start : start + size], np.float32).mean(axis=0)
                hr[: seg.shape[0]] = seg
                rms_db = active_rms_db(hr)
                if rms_db is None:
                    log.info("validation: silent crop of %s at %d skipped", entry.path, start)
                    continue
                hr = _level(hr, rms_db, cfg.target_rms_db)
                for cutoff in cutoffs_hz:
                    rng = np.random.default_rng([cfg.seed, n_crops, round(cutoff)])
                    lr = degrader.apply(hr, family, float(cutoff), rng).lr
                    items.append(ValItem(hr, lr, float(cutoff), entry.path, start / SAMPLE_RATE))
                n_crops += 1
        log.info("validation set: %d crops x %d cutoffs", n_crops, len(cutoffs_hz))
        return cls(items)

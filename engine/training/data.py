"""Training crops and validation: cached corpus arrays -> random crops with simulated LR.

`CropDataset` streams random crops of the train files `engine.training.corpus.scan` cached
(one channel or the mixdown, optionally tilted, levelled, random gain, degraded);
`ValidationSet` holds fixed, deterministic crops of the held-out files, each degraded at
4 / 8 / 11.025 kHz.

Loudness: unweighted RMS of the crop's active part, gated like EBU R128 on 100 ms blocks
(absolute -70 dBFS, relative -20 dB). A K-weighting would rate the high band (the part the model
learns) lower and changes little for broadband material.
"""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft
import torch
from torch.utils.data import IterableDataset, get_worker_info

from engine.config import HOP_SAMPLES, SAMPLE_RATE
from engine.metrics import HOLE_FREE_MAX, HOLES_BAND_HZ, hole_share
from engine.training.corpus import AudioCache, FileEntry
from engine.training.dataconfig import DataConfig
from engine.training.degrade import Degrader, device_rows

log = logging.getLogger(__name__)

GATE_BLOCK = 4410  # 100 ms loudness blocks
ABS_GATE_DB, REL_GATE_DB = -70.0, -20.0
PEAK_LIMIT = 0.99
MAX_OPEN_ARRAYS = 64  # memory maps kept open per process (each holds a file descriptor)
MAX_ATTEMPTS = 16  # crop attempts (failed reads, silent crops) before giving up
VAL_CUTOFFS_HZ = (4000.0, 8000.0, 11025.0)


def crop_samples(crop_s: float) -> int:
    """S: crop length in samples, a whole number of 512-sample hops."""
    return max(1, round(crop_s * SAMPLE_RATE / HOP_SAMPLES)) * HOP_SAMPLES


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


def spectral_tilt(x: np.ndarray, db_per_octave: float, pivot_hz: float) -> np.ndarray:
    """`x` (S,) with its spectrum flat below `pivot_hz` and tilted by `db_per_octave` above.

    Zero-phase, applied to the whole crop at once in the frequency domain, zero-padded to a
    fast FFT length (the gain curve is smooth: its impulse response is a few ms long).
    6 ms a 6 s crop on one core of the 2-core Xeon (float64 at the crop's own length: 15 ms).
    """
    n = scipy.fft.next_fast_len(x.shape[0], real=True)
    spec = scipy.fft.rfft(x.astype(np.float32, copy=False), n=n)  # (n // 2 + 1,) complex64
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE).astype(np.float32)
    octaves = np.log2(np.maximum(freqs, np.float32(pivot_hz)) / np.float32(pivot_hz))
    gain = np.power(np.float32(10.0), np.float32(db_per_octave / 20.0) * octaves)
    return scipy.fft.irfft(spec * gain, n=n)[: x.shape[0]].astype(np.float32, copy=False)


def file_weights(entries: Sequence[FileEntry], group_exponent: float = 1.0) -> np.ndarray:
    """(N,) probabilities of drawing each file: a group's share ~ its duration ** exponent,
    files within a group by duration. With the exponent 1 this is duration alone."""
    frames = np.array([max(e.cached_frames, 1) for e in entries], np.float64)  # (N,)
    groups = [e.group for e in entries]
    total = dict.fromkeys(groups, 0.0)
    for g, f in zip(groups, frames, strict=True):
        total[g] += f
    share = {g: t**group_exponent for g, t in total.items()}
    norm = sum(share.values())
    return np.array([f / total[g] * share[g] / norm for g, f in zip(groups, frames, strict=True)])


class CropDataset(IterableDataset):
    """Random crops {"hr", "lr": (1, S) float32, "cutoff_hz", "kind", "failed_crops"}
    (+ "filter" (FILTER_WIDTH,) float64 and "holes" (K, MP3_MAX_BANDS) bool when `deferred`:
    `device_filter.apply_filters`).

    Files are drawn in proportion to their duration, or with `cfg.group_exponent` < 1 their
    top-level folders are evened out first (`file_weights`). `sample(rng)` makes one crop from
    a given generator; iterating gives an endless (or `epoch_len` per rank) stream seeded by
    (seed, epoch, rank, DataLoader worker). `failed_crops` counts unreadable cache files met
    since the previous sample in that process: sum it per epoch beside `Corpus.summary()`.
    """

    def __init__(self, corpus_entries: Sequence[FileEntry], cfg: DataConfig,
                 cache: AudioCache | None = None, rank: int = 0, world_size: int = 1,
                 seed: int = 0, epoch_len: int | None = None, deferred: bool = False) -> None:
        super().__init__()
        if not corpus_entries:
            raise ValueError("corpus_entries: no files to crop from")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank: {rank} not in [0, {world_size})")
        self.entries, self.cfg, self.cache = list(corpus_entries), cfg, cache
        self.rank, self.world_size, self.seed, self.epoch_len = rank, world_size, seed, epoch_len
        self.deferred = deferred  # leave linear filters to the device ("filter" rows)
        self.epoch, self.crop_samples = 0, crop_samples(cfg.crop_s)
        cum = np.cumsum(file_weights(self.entries, cfg.group_exponent))
        self._cum = cum / cum[-1]  # ends at exactly 1: rng.random() < 1 always finds a file
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
            if self.cfg.tilt_prob > 0 and rng.random() < self.cfg.tilt_prob:
                hr = spectral_tilt(hr, float(rng.uniform(*self.cfg.tilt_db_per_octave)),
                                   float(rng.uniform(*self.cfg.tilt_pivot_hz)))
            rms_db = active_rms_db(hr)
            if rms_db is None and attempt < MAX_ATTEMPTS // 2:
                self.counts["silent_crops_redrawn"] += 1
                continue
            gain_db = float(rng.uniform(*self.cfg.gain_db))
            if rms_db is not None:
                hr = _level(hr, rms_db, self.cfg.target_rms_db + gain_db)
            deg = self.degrader(hr, rng, deferred=self.deferred)
            self.counts["samples"] += 1
            failed, self._pending_failures = self._pending_failures, 0
            out = {"hr": torch.from_numpy(hr)[None], "lr": torch.from_numpy(deg.lr)[None],
                   "cutoff_hz": float(deg.cutoff_hz), "kind": deg.kind, "failed_crops": failed}
            if self.deferred:  # mode 0 when the CPU did it (resampling)
                row, holes = device_rows(deg, hr.shape[0])
                out["filter"], out["holes"] = torch.from_numpy(row), torch.from_numpy(holes)
            return out
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
    # at most HOLE_FREE_MAX of hr's 10-20 kHz bins are encoder holes; None: measured here
    hole_free: bool | None = None

    def __post_init__(self) -> None:
        if self.hole_free is None:
            object.__setattr__(self, "hole_free", is_hole_free(self.hr))


def is_hole_free(ref: np.ndarray) -> bool:
    """Whether a reference has at most HOLE_FREE_MAX encoder holes (`metrics.hole_share`)."""
    share = hole_share(ref, *HOLES_BAND_HZ)
    return bool(np.isfinite(share) and share <= HOLE_FREE_MAX)


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
        a real file of rate 2 x cutoff has (its -6 dB edge is 0.956 x the cutoff, the resampler's).
        """
        if isinstance(cache, DataConfig):
            cache, cfg = None, cache
        if cfg is None:
            raise ValueError("cfg: a DataConfig is needed")
        size, degrader = crop_samples(cfg.crop_s), Degrader(cfg.degrade)
        items: list[ValItem] = []
        n_crops = 0
        # files evenly spread over the sorted list first: with more files than crops, the first
        # `max_crops` in path order would all be of one kind (effects/ sorts before speech/)
        entries = sorted(corpus_val_entries, key=lambda e: e.path)
        stride = max(1, len(entries) * crops_per_file // max(max_crops, 1))
        for entry in [entries[j] for r in range(stride) for j in range(r, len(entries), stride)]:
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
                clean = is_hole_free(hr)  # once per crop, not per cutoff or validation
                for cutoff in cutoffs_hz:
                    rng = np.random.default_rng([cfg.seed, n_crops, round(cutoff)])
                    lr = degrader.apply(hr, family, float(cutoff), rng).lr
                    items.append(ValItem(hr, lr, float(cutoff), entry.path, start / SAMPLE_RATE,
                                         clean))
                n_crops += 1
        log.info("validation set: %d crops x %d cutoffs", n_crops, len(cutoffs_hz))
        return cls(items)

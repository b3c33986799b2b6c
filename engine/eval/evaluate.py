"""`jatsr eval`: score a model and the baselines on folders of full-band reference audio.

For each reference file (optionally a centred excerpt of `seconds`) and each condition, the input
is simulated from the reference, every system restores it to 44.1 kHz through its full path
(cutoff detection included), and LSD (`engine.metrics.lsd_bands`: whole band, above and below the
cutoff detected on the input) is scored against the reference. Wall time and real-time factor
(wall time / excerpt duration) are recorded per input and system, and `lsd_kept`: LSD below
the cutoff against the input itself (sinc-resampled), which is 0 when a system leaves the kept
band untouched (LSD below the cutoff against the reference also counts the roll-off the
simulated input got from being resampled down, just below the detected cutoff, which no system
can undo; the upsampler's own roll-off is undone, `engine.audio.rolloff`).

Conditions: resampled down with soxr VHQ (`engine.audio.io.resample`, the pipeline's resampler)
to 8 kHz, 16 kHz and 22.05 kHz; and 44.1 kHz low-passed at 16 kHz with a steep zero-phase
(linear-phase FIR applied centred) filter, as MP3 encoders do (`DEFAULT_CONDITIONS`). On request
also two phone calls: 8 kHz in the 300-3400 Hz voice band through G.711 mu-law ("phone-ulaw") or
GSM 06.10 ("phone-gsm"), `engine.audio.telephone`; and two real MP3 encodes at 44.1 kHz, LAME
at a constant 128 or 64 kbit/s ("mp3-128k", "mp3-64k": band limits near 16.5 and 11 kHz, the
kept band quantised and holed by the encoder), `engine.audio.mp3`.

Categories come from the first path component under each folder (`<category>/<source>/...`),
else "all". With `max_files`, files are taken round-robin over categories, within a category
round-robin over sources, within a source in an order fixed by a hash of the path: a spread
over categories that never changes between runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.signal import firwin, oaconvolve

from engine.audio.cutoff import detect_cutoff
from engine.audio.files import AUDIO_SUFFIXES
from engine.audio.io import AudioInputError, load, resample
from engine.audio.mp3 import mp3_round_trip
from engine.audio.telephone import PHONE_RATE, VOICE_BAND_HZ, telephone
from engine.config import SAMPLE_RATE
from engine.eval.baselines import sbr_upsample, sinc_upsample
from engine.metrics import HOLES_BAND_HZ, hole_share, lsd, lsd_bands
from engine.pipeline import Restorer

log = logging.getLogger(__name__)

SYSTEMS = ("sinc", "dsp", "model")
FULL_BAND_MIN_HZ = 18000.0  # a reference whose own detected band ends lower gets a warning
MIN_REFERENCE_S = 0.5  # shorter references are skipped: too few STFT frames to score
LOWPASS_TAPS = 2047  # MP3-like low-pass: Kaiser FIR, ~110 Hz transition, ~80 dB stop band
LOWPASS_BETA = 8.0
NYQUIST_HZ = SAMPLE_RATE / 2


@dataclass(frozen=True)
class Condition:
    """One simulated input: resampled down to `sample_rate`, or low-passed at 44.1 kHz, or a
    phone call (8 kHz, voice band, `phone_codec`), or a real MP3 encode (44.1 kHz, `mp3_kbps`)."""

    name: str
    sample_rate: int  # rate of the simulated input file
    nominal_cutoff_hz: float  # its band limit by construction
    lowpass_hz: float | None = None  # steep zero-phase low-pass at 44.1 kHz instead
    phone_codec: str | None = None  # "ulaw" / "gsm": `engine.audio.telephone` after resampling
    mp3_kbps: int | None = None  # a real constant-bitrate MP3 round trip at 44.1 kHz instead

    def simulate(self, ref: np.ndarray) -> np.ndarray:
        """Band-limited input `(Ch, S')` at `sample_rate` from a 44.1 kHz reference `(Ch, S)`."""
        if self.lowpass_hz is not None:
            return mp3_lowpass(ref, self.lowpass_hz)
        if self.mp3_kbps is not None:
            return mp3_round_trip(ref, self.mp3_kbps)
        x = resample(ref, SAMPLE_RATE, self.sample_rate)
        return x if self.phone_codec is None else telephone(x, self.phone_codec)


CONDITIONS = {c.name: c for c in (
    Condition("8k", 8000, 4000.0),
    Condition("16k", 16000, 8000.0),
    Condition("22.05k", 22050, 11025.0),
    Condition("lp16k", SAMPLE_RATE, 16000.0, lowpass_hz=16000.0),
    Condition("phone-ulaw", PHONE_RATE, VOICE_BAND_HZ[1], phone_codec="ulaw"),
    Condition("phone-gsm", PHONE_RATE, VOICE_BAND_HZ[1], phone_codec="gsm"),
    Condition("mp3-128k", SAMPLE_RATE, 16500.0, mp3_kbps=128),  # LAME's band limits there
    Condition("mp3-64k", SAMPLE_RATE, 11000.0, mp3_kbps=64),
)}
DEFAULT_CONDITIONS = ("8k", "16k", "22.05k", "lp16k")  # the four (report targets)


def mp3_lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Steep zero-phase low-pass of float `(Ch, S)` (-6 dB at `cutoff_hz`) -> float32 `(Ch, S)`."""
    taps = firwin(LOWPASS_TAPS, cutoff_hz, window=("kaiser", LOWPASS_BETA), fs=sample_rate)
    y = oaconvolve(x.astype(np.float64), taps[None], mode="same", axes=-1)  # centred: no delay
    return y.astype(np.float32)


@dataclass(frozen=True)
class EvalConfig:
    """What `jatsr eval` scores: folders, systems, conditions, excerpt length, file limit."""

    folders: tuple[Path, ...]
    systems: tuple[str, ...] = SYSTEMS
    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    seconds: float | None = None  # centred excerpt of each reference; None: the whole file
    max_files: int | None = None  # None: every file
    examples: int = 4  # spectrogram examples (file x condition) kept for the report
    categories_from_path: bool = True

    def __post_init__(self) -> None:
        if not self.folders:
            raise ValueError("folders: give at least one folder")
        if not self.systems or any(s not in SYSTEMS for s in self.systems):
            raise ValueError(f"systems: must be a non-empty subset of {SYSTEMS}")
        if not self.conditions or any(c not in CONDITIONS for c in self.conditions):
            raise ValueError(f"conditions: must be a non-empty subset of {tuple(CONDITIONS)}")
        if self.seconds is not None and self.seconds < MIN_REFERENCE_S:
            raise ValueError(f"seconds: must be >= {MIN_REFERENCE_S}")
        if self.max_files is not None and self.max_files < 1:
            raise ValueError("max_files: must be >= 1")
        if self.examples < 0:
            raise ValueError("examples: must be >= 0")


@dataclass(frozen=True)
class EvalFile:
    """A reference file and where it sits in the folder layout."""

    path: Path
    rel: str  # path relative to its folder, posix
    category: str
    source: str


@dataclass
class Example:
    """Audio kept for a spectrogram figure: one file under one condition."""

    file: EvalFile
    condition: str
    cutoff_hz: float
    reference: np.ndarray  # (Ch, S) at 44.1 kHz
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # system -> (Ch, S)


@dataclass(frozen=True)
class FileDone:
    """Progress of an evaluation: one file scored (rows) or skipped (reason)."""

    index: int
    total: int
    file: EvalFile
    rows: list[dict[str, Any]]
    examples: list[Example]
    skipped: str | None = None


def find_files(folders: Sequence[Path], categories_from_path: bool = True) -> list[EvalFile]:
    """Every audio file under the folders (by suffix), sorted, duplicates (same target) once."""
    seen: set[str] = set()
    out: list[EvalFile] = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise ValueError(f"{folder}: not a directory")
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
            real = os.path.realpath(path)
            if real in seen or not path.is_file():
                continue
            seen.add(real)
            parts = path.relative_to(root).parts
            category = parts[0] if categories_from_path and len(parts) > 1 else "all"
            source = parts[1] if categories_from_path and len(parts) > 2 else ""
            out.append(EvalFile(path, "/".join(parts), category, source))
    return out


def select_files(files: Sequence[EvalFile], max_files: int | None) -> list[EvalFile]:
    """Deterministic spread: round-robin over categories, then sources, hash order inside."""
    def key(f: EvalFile) -> str:
        return hashlib.sha1(f.rel.encode()).hexdigest()

    per_category: list[list[EvalFile]] = []
    for category in sorted({f.category for f in files}):
        sources = sorted({f.source for f in files if f.category == category})
        queues = [sorted((f for f in files if f.category == category and f.source == s),
                         key=key) for s in sources]
        per_category.append(_round_robin(queues))
    ordered = _round_robin(per_category)
    return ordered if max_files is None else ordered[:max_files]


def _round_robin(queues: Sequence[Sequence[EvalFile]]) -> list[EvalFile]:
    longest = max((len(q) for q in queues), default=0)
    return [q[i] for i in range(longest) for q in queues if i < len(q)]


def load_reference(path: Path, seconds: float | None) -> np.ndarray:
    """The reference at 44.1 kHz `(Ch, S)`: the whole file, or its centred `seconds` excerpt."""
    ref, _ = load(path, SAMPLE_RATE)
    if seconds is not None:
        n = round(seconds * SAMPLE_RATE)
        if ref.shape[1] > n:
            start = (ref.shape[1] - n) // 2
            ref = ref[:, start:start + n]
    if ref.shape[1] < MIN_REFERENCE_S * SAMPLE_RATE:
        raise ValueError(f"shorter than {MIN_REFERENCE_S} s")
    return np.ascontiguousarray(ref)


def example_plan(files: Sequence[EvalFile], conditions: Sequence[str], count: int
                 ) -> dict[str, str]:
    """Which (file -> condition) pairs become spectrogram examples: the first `count` files of
    the selection order (one per category first), conditions in turn."""
    return {f.rel: conditions[i % len(conditions)] for i, f in enumerate(files[:count])}


def iter_evaluate(cfg: EvalConfig, restorer: Restorer | None = None) -> Iterator[FileDone]:
    """Score every selected file; yields one FileDone per file (rows or a skip reason)."""
    if "model" in cfg.systems and restorer is None:
        raise ValueError("systems include 'model' but no model was given")
    files = select_files(find_files(cfg.folders, cfg.categories_from_path), cfg.max_files)
    if not files:
        raise ValueError(f"no audio files found in {', '.join(map(str, cfg.folders))}")
    plan = example_plan(files, cfg.conditions, cfg.examples)
    if restorer is not None and "model" in cfg.systems:
        _warm_up(restorer)
    for index, f in enumerate(files):
        try:
            ref = load_reference(f.path, cfg.seconds)
        except (AudioInputError, ValueError) as e:
            log.warning("skipping %s: %s", f.rel, e)
            yield FileDone(index, len(files), f, [], [], skipped=str(e))
            continue
        rows, examples = _evaluate_reference(f, ref, cfg, restorer, plan.get(f.rel))
        yield FileDone(index, len(files), f, rows, examples)


def _evaluate_reference(f: EvalFile, ref: np.ndarray, cfg: EvalConfig,
                        restorer: Restorer | None, example_condition: str | None
                        ) -> tuple[list[dict[str, Any]], list[Example]]:
    """Rows (condition x system) for one reference, and its example if it has one."""
    duration_s = ref.shape[1] / SAMPLE_RATE
    ref_cutoff_hz = float(detect_cutoff(ref, SAMPLE_RATE))
    if ref_cutoff_hz < FULL_BAND_MIN_HZ:
        log.warning("%s: reference band ends at %.0f Hz: not full-band, LSD above the cutoff "
                    "is scored against missing content", f.rel, ref_cutoff_hz)
    holes = hole_share(ref, HOLES_BAND_HZ[0], min(HOLES_BAND_HZ[1], ref_cutoff_hz))
    rows: list[dict[str, Any]] = []
    examples: list[Example] = []
    for name in cfg.conditions:
        cond = CONDITIONS[name]
        lr = cond.simulate(ref)  # (Ch, S') at cond.sample_rate
        cutoff_hz = float(detect_cutoff(lr, cond.sample_rate))
        split_hz = cutoff_hz if cutoff_hz < NYQUIST_HZ - 50 else cond.nominal_cutoff_hz
        lr44 = sinc_upsample(lr, cond.sample_rate)  # the input as the pipeline keeps it
        outputs: dict[str, np.ndarray] = {}
        for system in cfg.systems:
            start = time.perf_counter()
            out, system_cutoff_hz, warm = _run_system(system, lr, cond.sample_rate, restorer)
            elapsed_s = time.perf_counter() - start
            outputs[system] = out
            scores = lsd_bands(ref, out, split_hz)
            # the kept band against the input itself: 0 when untouched, whatever the resampler
            scores["lsd_kept"] = lsd(lr44, out, SAMPLE_RATE, high_hz=split_hz)
            rows.append({
                "file": f.rel, "category": f.category, "source": f.source,
                "condition": name, "input_rate": cond.sample_rate,
                "nominal_cutoff_hz": cond.nominal_cutoff_hz, "system": system,
                "cutoff_hz": round(cutoff_hz if system_cutoff_hz is None else system_cutoff_hz, 1),
                "split_hz": round(split_hz, 1), "ref_cutoff_hz": round(ref_cutoff_hz, 1),
                "ref_holes": _finite_or_none(holes),
                "channels": int(ref.shape[0]), "duration_s": round(duration_s, 3),
                **{k: _finite_or_none(v) for k, v in scores.items()},
                "elapsed_s": round(elapsed_s, 4), "rtf": round(elapsed_s / duration_s, 4),
                "warm_start": warm,
            })
        if example_condition == name:
            examples.append(Example(f, name, split_hz, ref, outputs))
    return rows, examples


def _run_system(system: str, lr: np.ndarray, sample_rate: int, restorer: Restorer | None
                ) -> tuple[np.ndarray, float | None, bool | None]:
    """One system's 44.1 kHz output `(Ch, S)`, the cutoff it used (None: it uses none) and,
    for the model, whether it started from the DSP estimate (None for the baselines)."""
    if system == "sinc":
        return sinc_upsample(lr, sample_rate), None, None
    if system == "dsp":
        return *sbr_upsample(lr, sample_rate), None
    if restorer is None:
        raise ValueError("no model to evaluate")
    last = None
    for progress in restorer.iter_array(lr, sample_rate):
        last = progress
    if last is None or last.result is None or last.result.audio is None:
        raise RuntimeError("the pipeline returned no audio")
    return last.result.audio, last.result.cutoff_hz, last.result.warm_start


def _warm_up(restorer: Restorer) -> None:
    """One short restoration so the first timed input does not pay for lazy initialisation."""
    rng = np.random.default_rng(0)
    noise = (0.1 * rng.standard_normal((1, 16000))).astype(np.float32)
    for _ in restorer.iter_array(noise, 16000, cutoff_hz=7000.0):
        pass


def _finite_or_none(value: float) -> float | None:
    return round(float(value), 5) if math.isfinite(value) else None


def hardware_summary(device: str) -> str:
    """CPU model, cores, torch threads and load, plus the GPU name when running on CUDA."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{cpu}, {cores} cores, torch {torch.__version__} with {torch.get_num_threads()} threads"
    if hasattr(os, "getloadavg"):  # other work on the machine slows the timed runs
        text += f", load average {os.getloadavg()[0]:.1f} at the start"
    if device.startswith("cuda") and torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(torch.device(device))}"
    return text


def run_eval(cfg: EvalConfig, out_dir: Path, restorer: Restorer | None = None,
             meta: dict[str, Any] | None = None, dpi: int = 64) -> Iterator[FileDone]:
    """Evaluate, writing `results.jsonl` as files finish, then example PNGs and `report.md`.

    A generator of FileDone (progress); the report is written once it is drained.
    """
    from engine.eval.report import plot_example, write_report

    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    figures: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    with open(out_dir / "results.jsonl", "w") as fh:
        for done in iter_evaluate(cfg, restorer):
            for row in done.rows:
                fh.write(json.dumps(row) + "\n")
            fh.flush()
            rows.extend(done.rows)
            if done.skipped is not None:
                skipped.append((done.file.rel, done.skipped))
            for example in done.examples:
                figures.append(plot_example(example, out_dir / "examples", dpi=dpi))
            yield done
    write_report(out_dir / "report.md", rows, dict(meta or {}), figures, skipped)

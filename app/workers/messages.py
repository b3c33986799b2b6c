"""Typed messages between the GUI thread and the workers (frozen; arrays are never mutated)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.analysis import Spectrogram

if TYPE_CHECKING:  # annotation only: importing engine here would load torch at startup
    from engine import Gpu


@dataclass(frozen=True)
class JobRequest:
    """Restore one file. `request_id` is unique per request; messages carry it back."""

    request_id: int
    job_id: int
    input_path: Path
    output_folder: Path | None  # None: next to the input
    fmt: str
    subtype: str
    model: str  # "default" or a model file path
    device: str  # auto | cuda | cpu
    steps: int
    solver: str
    cutoff_hz: float | None  # None: detect
    warm_start: bool = False  # True: the engine's warm start from the DSP estimate
    keep_louder_input: bool = True  # keep input louder than the generated band above the cutoff
    fill_holes: bool = False  # fill a lossy encoder's holes below the cutoff with generated content
    output_subdir: Path = Path()  # under output_folder: the input's folder under a dropped one
    out_rate: int = 44100  # the output file's rate (the restoration is 44.1 kHz)


@dataclass(frozen=True)
class JobProgress:
    request_id: int
    job_id: int
    fraction: float  # 0..1
    step: int
    steps: int
    chunks_done: int
    chunks_total: int


@dataclass(frozen=True)
class JobResult:
    request_id: int
    job_id: int
    output_path: Path
    cutoff_hz: float
    generated: bool
    elapsed_s: float
    clipped_samples: int = 0  # beyond full scale in a PCM output, written at full scale


@dataclass(frozen=True)
class JobFailed:
    request_id: int
    job_id: int
    reason: str


@dataclass(frozen=True)
class JobCancelled:
    request_id: int
    job_id: int


@dataclass(frozen=True)
class ModelStatus:
    """What the engine worker knows about the configured model."""

    ok: bool
    spec: str
    device: str = ""  # the torch device it runs on, e.g. "cuda:0 (NVIDIA H100)"
    path: Path | None = None
    error: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # read_model_config(...)


@dataclass(frozen=True)
class ProbeResult:
    job_id: int
    sample_rate: int
    channels: int
    duration_s: float
    cutoff_hz: float


@dataclass(frozen=True)
class ClipData:
    """A/B buffers of one item: aligned, length-matched float32 `(S, Ch)` at `sample_rate`.

    `sr` and `diff` are None for an item not restored yet (only the original plays).
    """

    job_id: int
    sample_rate: int
    lr: np.ndarray
    sr: np.ndarray | None
    diff: np.ndarray | None
    gains: tuple[float, float, float]  # loudness-matching gains for (lr, sr, diff)
    cutoff_hz: float


@dataclass(frozen=True)
class ViewData:
    """Spectrograms and the overview envelope of one item."""

    job_id: int
    lr: Spectrogram
    sr: Spectrogram | None
    diff: Spectrogram | None
    envelope_min: np.ndarray
    envelope_max: np.ndarray
    duration_s: float
    cutoff_hz: float


@dataclass(frozen=True)
class DetailViews:
    """Spectrograms of the span [start_s, stop_s) of one item at up to full STFT resolution,
    drawn over the overview when the view is zoomed in beyond the overview's columns."""

    job_id: int
    request: int  # serial of the request this answers (older answers are dropped)
    start_s: float
    stop_s: float
    lr: Spectrogram
    sr: Spectrogram | None
    diff: Spectrogram | None


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    channels: int
    is_default: bool


@dataclass(frozen=True)
class SystemInfo:
    """Versions, compute devices and audio outputs, gathered off the GUI thread."""

    versions: dict[str, str]
    cuda_available: bool
    gpus: tuple[Gpu, ...]  # engine.Gpu: index, name, memory_gib
    audio_devices: tuple[AudioDevice, ...]
    audio_error: str  # why there is no playback ("" when a device exists)

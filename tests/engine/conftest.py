"""Shared fixtures: synthetic full-band audio and a tiny model trained on it in the test run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from engine.codecs import build_codec
from engine.config import SAMPLE_RATE
from engine.flow import FlowObjective
from engine.model.dit import PRESETS, DiT
from engine.modelfile import JaTModel, save_model


def synth_clip(seconds: float, seed: int = 0, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Full-band test audio (S,): a harmonic tone up to 20 kHz plus decaying noise bursts."""
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    f0 = 220.0 * (1 + 0.02 * np.sin(2 * np.pi * 0.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    x = sum(np.sin(k * phase) / k for k in range(1, int(20000 / 230)))
    bursts = rng.standard_normal(n) * np.exp(-((t % 0.5) * 12.0))
    y = 0.25 * x / np.abs(x).max() + 0.1 * bursts
    return (0.8 * y / np.abs(y).max()).astype(np.float32)


def lowpass(x: np.ndarray, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Brick-wall low-pass along the last axis (zero phase, via the FFT)."""
    spec = np.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(x.shape[-1], 1 / sample_rate)
    spec[..., freqs >= cutoff_hz] = 0
    return np.fft.irfft(spec, n=x.shape[-1], axis=-1).astype(np.float32)


def band_limit(x: np.ndarray, rate: int) -> np.ndarray:
    """A 44.1 kHz signal resampled down to `rate` (what a low-rate file holds)."""
    return soxr.resample(x.T if x.ndim == 2 else x, SAMPLE_RATE, rate, "VHQ").T.astype(np.float32)


def train_tiny(clip: np.ndarray, steps: int = 300, seed: int = 0) -> JaTModel:
    """Overfit the tiny preset on crops of one clip with LR inputs low-passed at 4-11 kHz."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    run = PRESETS["tiny"]
    codec = build_codec("stft")
    crop = 512 * 127
    crops = [clip[s : s + crop] for s in range(0, len(clip) - crop, crop // 2)]
    codec.fit_stats([torch.from_numpy(np.stack(crops))[:, None]])
    net = DiT(run.model)
    obj = FlowObjective(run.flow)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = rng.integers(0, len(crops), 8)
        hr = np.stack([crops[i] for i in idx])
        cutoffs = rng.choice([4000, 8000, 11025], 8)
        lr = np.stack([lowpass(h, c) for h, c in zip(hr, cutoffs, strict=True)])
        with torch.no_grad():
            x = codec.encode(torch.from_numpy(hr)[:, None])
            cond = codec.encode(torch.from_numpy(lr)[:, None])
        loss, _ = obj.loss(net, x, cond, g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    net.eval()
    return JaTModel(net, codec, run, {"steps": steps, "data": "synthetic test clip"})


@pytest.fixture(scope="session")
def training_clip() -> np.ndarray:
    return synth_clip(8.0, seed=1)


@pytest.fixture(scope="session")
def tiny_model(training_clip: np.ndarray) -> JaTModel:
    return train_tiny(training_clip)


@pytest.fixture(scope="session")
def tiny_model_path(tiny_model: JaTModel, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "tiny", tiny_model)


def write_wav(path: Path, x: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write (S,) or (Ch, S) float audio."""
    sf.write(path, x.T if x.ndim == 2 else x, rate, subtype=subtype)
    return path


def band_lsd(a: torch.Tensor, b: torch.Tensor, lo_hz: float = 0.0, hi_hz: float = 1e9) -> float:
    """LSD (log10 power, clamp 1e-8) of two (B, 1, S) signals over codec-STFT bins in [lo, hi)."""
    from engine.codecs import bands

    freqs = bands.bin_freqs_hz()
    sel = (freqs >= lo_hz) & (freqs < hi_hz)
    pa = bands.analyze(a)[:, sel].abs().square().clamp_min(1e-8).log10()
    pb = bands.analyze(b)[:, sel].abs().square().clamp_min(1e-8).log10()
    return float((pa - pb).square().mean(dim=1).sqrt().mean())

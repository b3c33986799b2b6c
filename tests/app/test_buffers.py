"""A/B listening buffers: streamed decode, disk-backed above a size, nothing left on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import engine
from app import analysis, buffers
from app.workers.jobs import ClipJob

RATE = 44100


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("JATSR_CACHE_DIR", str(folder))
    return folder


def _write(path: Path, x: np.ndarray, rate: int) -> Path:
    sf.write(path, x, rate, subtype="FLOAT")
    return path


def _noise(seconds: float, channels: int, rate: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.1 * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)


@pytest.mark.parametrize("in_memory_bytes", [buffers.IN_MEMORY_BYTES, 0])
def test_decode_matches_a_whole_file_load(tmp_path, cache, monkeypatch, in_memory_bytes):
    monkeypatch.setattr(buffers, "IN_MEMORY_BYTES", in_memory_bytes)
    monkeypatch.setattr(buffers, "BLOCK_FRAMES", 5000)  # many blocks
    path = _write(tmp_path / "in.wav", _noise(2.3, 4, 16000), 16000)
    x = buffers.decode(path, RATE)
    whole = engine.load(path, RATE)[0]  # (4, S)
    expected = np.stack([whole[0::2].mean(axis=0), whole[1::2].mean(axis=0)]).T
    assert isinstance(x, np.memmap) == (in_memory_bytes == 0)
    assert x.shape == expected.shape and x.dtype == np.float32
    np.testing.assert_allclose(x, expected, atol=1e-6)
    longer = buffers.decode(path, RATE, frames=x.shape[0] + 777)  # zero-padded
    np.testing.assert_array_equal(longer[: x.shape[0]], x)
    assert not longer[x.shape[0]:].any()
    shorter = buffers.decode(path, RATE, frames=1000)  # trimmed
    np.testing.assert_array_equal(shorter, x[:1000])


def test_disk_backed_buffers_leave_no_file_behind(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(buffers, "IN_MEMORY_BYTES", 0)
    a = buffers.allocate(50_000, 2)
    a[:] = 0.25
    b = buffers.allocate(50_000, 2)
    d = buffers.difference(a, b)
    assert isinstance(d, np.memmap) and float(d.max()) == float(d.min()) == 0.25
    if os.name == "posix":  # nameless from the start: the folder is empty while mapped
        assert cache.is_dir() and not list(cache.iterdir())
    del a, b, d
    assert not list(cache.iterdir())
    with pytest.raises(ValueError, match="shapes differ"):
        buffers.difference(np.zeros((3, 1), np.float32), np.zeros((4, 1), np.float32))


def test_clip_job_with_disk_backed_buffers(tmp_path, cache, monkeypatch):
    monkeypatch.setattr(buffers, "IN_MEMORY_BYTES", 0)
    lr = _write(tmp_path / "in.wav", _noise(1.5, 1, 16000), 16000)
    restored = _noise(1.6, 1, RATE, seed=1)  # a little longer than the input: trimmed
    sr = _write(tmp_path / "out.wav", restored, RATE)
    got = {}
    job = ClipJob(7, lr, sr, 7000.0)
    job.signals.partial.connect(lambda clip: got.setdefault("clip", clip))
    job.signals.done.connect(lambda views: got.setdefault("views", views))
    job.signals.failed.connect(lambda i, why: got.setdefault("failed", why))
    job.work()
    clip = got["clip"]
    assert "failed" not in got and all(isinstance(b, np.memmap)
                                       for b in (clip.lr, clip.sr, clip.diff))
    n = clip.lr.shape[0]
    assert n == engine.resampled_length(24000, 16000, RATE)
    np.testing.assert_array_equal(clip.sr, restored[:n])
    np.testing.assert_allclose(clip.diff, clip.sr - clip.lr, atol=1e-7)
    assert got["views"].sr.linear_db.shape[0] == analysis.N_FFT // 2 + 1


def test_clip_job_brings_a_48k_output_back_to_44k_for_listening(tmp_path, cache):
    lr = _write(tmp_path / "in.wav", _noise(1.5, 1, 16000), 16000)
    t = np.arange(round(1.5 * RATE))[:, None] / RATE  # tones well inside both passbands
    restored = (0.2 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 12000 * t)
                ).astype(np.float32)  # (S, 1)
    sr = _write(tmp_path / "out.wav", soxr.resample(restored, RATE, 48000, "VHQ"), 48000)
    got = {}
    job = ClipJob(8, lr, sr, 7000.0)
    job.signals.partial.connect(lambda clip: got.setdefault("clip", clip))
    job.signals.failed.connect(lambda i, why: got.setdefault("failed", why))
    job.work()
    clip = got["clip"]
    assert "failed" not in got and clip.sample_rate == RATE and clip.sr.shape == clip.lr.shape
    inner = slice(2000, clip.sr.shape[0] - 2000)  # away from the resamplers' edges
    np.testing.assert_allclose(clip.sr[inner], restored[inner], atol=2e-3)

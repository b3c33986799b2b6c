"""Pipeline: chunk plumbing, high-band restoration by an overfit model, seams, cancel, memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soxr

from engine.config import SAMPLE_RATE, PipelineConfig, SamplerConfig
from engine.metrics import lsd_bands
from engine.pipeline import ChunkPlan, OverlapWriter, Restorer, iter_chunks
from tests.engine.conftest import lowpass, synth_clip, write_wav


@pytest.mark.parametrize("total", [1, 511, 512, 44100, 6 * 44100 + 7, 20 * 44100 + 3])
def test_chunks_and_overlap_writer_reconstruct_the_stream(total):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, total)).astype(np.float32)
    plan = ChunkPlan.make(total, PipelineConfig(chunk_s=2.0, overlap_s=0.3), 512)
    blocks = [x[:, i : i + 10000] for i in range(0, total, 10000)]
    out: list[np.ndarray] = []
    writer = OverlapWriter(plan, out.append)
    chunks = list(iter_chunks(blocks, plan, 2))
    assert len(chunks) == plan.count and all(c.shape == (2, plan.length) for c in chunks)
    for k, chunk in enumerate(chunks):
        writer.add(chunk, last=k == plan.count - 1)
    y = np.concatenate(out, axis=1)
    assert y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1e-5)


def test_overfit_model_restores_the_high_band(tiny_model, training_clip):
    ref = training_clip[: 3 * SAMPLE_RATE]
    lr = lowpass(ref, 8000)
    restorer = Restorer(tiny_model, SamplerConfig(steps=8), PipelineConfig(chunk_s=3.0))
    *_, last = restorer.iter_array(lr[None], SAMPLE_RATE, cutoff_hz=8000)
    out = last.result.audio[0]
    assert out.shape == ref.shape
    sinc = lsd_bands(ref, lr, 8000)
    model = lsd_bands(ref, out, 8000)
    assert model["lsd_high"] < 0.5 * sinc["lsd_high"], (model, sinc)
    assert model["lsd"] < 0.6 * sinc["lsd"]
    assert model["lsd_low"] <= 0.05


def test_stationary_tone_has_no_seam_at_chunk_joins(tiny_model):
    rate, seconds, f = 16000, 4.0, 997.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32)
    cfg = PipelineConfig(chunk_s=1.0, overlap_s=0.25)
    restorer = Restorer(tiny_model, SamplerConfig(steps=2), cfg)
    *_, last = restorer.iter_array(tone[None], rate, cutoff_hz=7000)
    out = last.result.audio[0]
    expected = soxr.resample(tone, rate, SAMPLE_RATE, "VHQ")
    assert abs(out.shape[0] - expected.shape[0]) <= 1
    n = min(out.shape[0], expected.shape[0])
    err = lowpass(out[:n], 6000) - lowpass(expected[:n], 6000)
    inner = slice(2048, n - 2048)  # ignore the file's own edges
    plan = ChunkPlan.make(n, cfg, 512)
    joins = [k * plan.stride + plan.overlap // 2 for k in range(1, plan.count)]
    assert joins and np.abs(err[inner]).max() < 2e-3
    for j in joins:  # the joins themselves: no step, no dip
        assert np.abs(err[j - 256 : j + 256]).max() < 2e-3
    assert np.abs(out[inner]).max() > 0.45


def test_cancel_leaves_no_partial_file(tiny_model, tmp_path):
    src = write_wav(tmp_path / "in.wav", lowpass(synth_clip(4.0), 8000), SAMPLE_RATE)
    out = tmp_path / "out.wav"
    cfg = PipelineConfig(chunk_s=1.0, overlap_s=0.25, batch_size=1)
    restorer = Restorer(tiny_model, SamplerConfig(steps=4), cfg)
    gen = restorer.iter_file(src, out)
    next(gen), next(gen)
    gen.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.wav"]


def test_a_48_khz_file_is_the_restoration_resampled(tiny_model, tmp_path):
    import soundfile as sf

    from engine.audio.io import resample

    rng = np.random.default_rng(1)
    src = write_wav(tmp_path / "in.wav", 0.1 * rng.standard_normal((2, 5 * 16000)), 16000)
    cfg = PipelineConfig(chunk_s=1.0, overlap_s=0.25, batch_size=2)  # several chunks
    restorer = Restorer(tiny_model, SamplerConfig(steps=2, seed=3), cfg)
    for rate in (SAMPLE_RATE, 48000):
        for _ in restorer.iter_file(src, tmp_path / f"{rate}.wav", subtype="FLOAT",
                                    out_rate=rate):
            pass
    y44 = sf.read(tmp_path / f"{SAMPLE_RATE}.wav", dtype="float32")[0].T  # (Ch, S)
    y48, rate = sf.read(tmp_path / "48000.wav", dtype="float32")
    assert rate == 48000 and y48.shape == (5 * 48000, 2)
    expected = resample(y44, SAMPLE_RATE, 48000).T  # the whole file at once
    assert np.abs(y48 - expected).max() < 1e-4 * np.abs(expected).max()
    with pytest.raises(ValueError, match="out_rate"):
        next(restorer.iter_file(src, tmp_path / "x.wav", out_rate=32000))


def test_a_full_band_48_khz_file_at_48_khz_is_passed_through_untouched(tiny_model, tmp_path):
    import soundfile as sf

    x = (0.1 * np.random.default_rng(2).standard_normal((48000, 2))).astype(np.float32)
    src = tmp_path / "in.wav"
    sf.write(src, x, 48000, subtype="FLOAT")
    restorer = Restorer(tiny_model, SamplerConfig(steps=1))
    *_, last = restorer.iter_file(src, tmp_path / "out.wav", subtype="FLOAT", out_rate=48000)
    assert last.result is not None and not last.result.generated
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 48000
    np.testing.assert_array_equal(y, x)  # 22.05-24 kHz kept: no trip through 44.1 kHz


def test_a_band_limited_48_khz_file_at_48_khz_keeps_its_band(tiny_model, tmp_path):
    """48 kHz in, 48 kHz out: the model works at 44.1 kHz, so the kept band goes 48 -> 44.1 ->
    48 kHz; it must come back equal to the input (the generated band starts at the cutoff)."""
    import soundfile as sf

    x = lowpass(0.2 * np.random.default_rng(4).standard_normal((2, 3 * 48000)), 12000.0,
                sample_rate=48000).astype(np.float32)
    src = tmp_path / "in.wav"
    sf.write(src, x.T, 48000, subtype="FLOAT")
    cfg = PipelineConfig(chunk_s=1.0, overlap_s=0.25, batch_size=2)  # joins inside the file
    restorer = Restorer(tiny_model, SamplerConfig(steps=2, seed=1), cfg)
    *_, last = restorer.iter_file(src, tmp_path / "out.wav", subtype="FLOAT", out_rate=48000)
    assert last.result is not None and last.result.generated
    y, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 48000 and y.shape == x.T.shape

    def band(a: np.ndarray) -> np.ndarray:  # (Ch, S) -> content below 11 kHz
        spec = np.fft.rfft(a, axis=-1)
        spec[:, np.fft.rfftfreq(a.shape[-1], 1 / 48000) > 11000.0] = 0
        return np.fft.irfft(spec, n=a.shape[-1], axis=-1)

    inner = slice(4800, x.shape[1] - 4800)  # the file's own edges aside
    err = band(y.T)[:, inner] - band(x)[:, inner]
    assert np.sqrt(np.mean(err ** 2)) < 1e-3 * np.sqrt(np.mean(x[:, inner] ** 2))  # < -60 dB


def _peak_numpy_bytes(restorer: Restorer, path, out) -> int:
    tracemalloc.start()
    for _ in restorer.iter_file(path, out, overwrite=True):
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_does_not_grow_with_file_length(tiny_model, tmp_path):
    restorer = Restorer(tiny_model, SamplerConfig(steps=1),
                        PipelineConfig(chunk_s=1.0, overlap_s=0.1, phase_iters=0))
    rng = np.random.default_rng(0)
    short = write_wav(tmp_path / "short.wav", 0.1 * rng.standard_normal(10 * 16000), 16000)
    long = write_wav(tmp_path / "long.wav", 0.1 * rng.standard_normal(80 * 16000), 16000)
    peak_short = _peak_numpy_bytes(restorer, short, tmp_path / "a.wav")
    peak_long = _peak_numpy_bytes(restorer, long, tmp_path / "b.wav")
    # 8x the audio: the output alone would be 8 x 10 s x 44.1 kHz x 4 B = 14 MB more if held.
    assert peak_long < 1.25 * peak_short + 2_000_000, (peak_short, peak_long)


def test_warm_start_from_sbr_restores_the_high_band_and_keeps_the_low(tiny_model, training_clip):
    ref = training_clip[: 3 * SAMPLE_RATE]
    lr = lowpass(ref, 8000)
    cfg = SamplerConfig(steps=4, prior_t=0.5, prior_min_flatness=0.0)
    restorer = Restorer(tiny_model, cfg, PipelineConfig(chunk_s=3.0))
    *_, last = restorer.iter_array(lr[None], SAMPLE_RATE, cutoff_hz=8000)
    out = last.result.audio[0]
    sinc = lsd_bands(ref, lr, 8000)
    model = lsd_bands(ref, out, 8000)
    assert model["lsd_high"] < 0.5 * sinc["lsd_high"], (model, sinc)
    assert model["lsd_low"] <= 0.05


def test_flatness_gate_only_at_or_below_its_cutoff(tiny_model, training_clip):
    lr = lowpass(training_clip[: 3 * SAMPLE_RATE], 8000)

    def restore(cfg: SamplerConfig) -> np.ndarray:
        restorer = Restorer(tiny_model, cfg, PipelineConfig(chunk_s=3.0))
        *_, last = restorer.iter_array(lr[None], SAMPLE_RATE, cutoff_hz=8000)
        assert last.result.warm_start is (cfg.prior_t > 0 and cfg.prior_flatness_below_hz < 8000)
        return last.result.audio[0]

    plain = restore(SamplerConfig(steps=2, prior_t=0.0))
    # flatness 1 is out of reach: inputs under the gate's cutoff all start from noise
    gated = restore(SamplerConfig(steps=2, prior_t=0.85, prior_flatness_below_hz=9000.0,
                                  prior_min_flatness=1.0, prior_skip_one_shots=False))
    warm = restore(SamplerConfig(steps=2, prior_t=0.85, prior_flatness_below_hz=6000.0,
                                 prior_min_flatness=1.0, prior_skip_one_shots=False))
    np.testing.assert_array_equal(gated, plain)
    assert not np.array_equal(warm, plain)


def test_the_default_starts_one_shots_from_noise(tiny_model, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(3)
    rate, n = 16000, 2 * 16000
    t = np.arange(n) / rate
    hit = rng.standard_normal(n) * np.exp(-t / 0.15)  # a struck sound dying away
    held = sum(0.1 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 30))  # sustained
    restorer = Restorer(tiny_model, SamplerConfig(steps=2), PipelineConfig(chunk_s=1.0,
                                                                          overlap_s=0.25))
    for name, x in {"hit": 0.5 * hit, "held": held}.items():  # 16 kHz files: above 6 kHz
        x = x.astype(np.float32)
        *_, last = restorer.iter_array(x[None], rate, cutoff_hz=7500.0)
        assert last.result.warm_start is (name == "held"), name
        sf.write(tmp_path / f"{name}.wav", x, rate, subtype="FLOAT")
        *_, last = restorer.iter_file(tmp_path / f"{name}.wav", tmp_path / f"{name}.out.wav",
                                      cutoff_hz=7500.0)
        assert last.result.warm_start is (name == "held"), name
    anyway = Restorer(tiny_model, SamplerConfig(steps=2, prior_skip_one_shots=False),
                      PipelineConfig(chunk_s=1.0, overlap_s=0.25))
    *_, last = anyway.iter_array((0.5 * hit).astype(np.float32)[None], rate, cutoff_hz=7500.0)
    assert last.result.warm_start  # --warm-one-shots


def test_the_default_warm_starts_noise_like_inputs_only(tiny_model, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(5)
    t = np.arange(3 * 8000) / 8000
    tonal = sum(0.1 / k * np.sin(2 * np.pi * 180 * k * t) for k in range(1, 22))  # to 3.8 kHz
    inputs = {"noise": 0.1 * rng.standard_normal(3 * 8000), "tonal": tonal}
    chunks = PipelineConfig(chunk_s=1.0, overlap_s=0.25)
    restorer = Restorer(tiny_model, SamplerConfig(steps=2), chunks)
    for name, x in inputs.items():  # 8 kHz files, band edge 4 kHz
        *_, last = restorer.iter_array(x[None].astype(np.float32), 8000)
        assert last.result.warm_start is (name == "noise"), name
        sf.write(tmp_path / f"{name}.wav", x.astype(np.float32), 8000, subtype="FLOAT")
        *_, last = restorer.iter_file(tmp_path / f"{name}.wav", tmp_path / f"{name}.out.wav")
        assert last.result.warm_start is (name == "noise"), name
    cold = Restorer(tiny_model, SamplerConfig(steps=2, prior_t=0.0), chunks)
    *_, last = cold.iter_array(inputs["noise"][None].astype(np.float32), 8000)
    assert not last.result.warm_start  # --prior-t 0: always from noise


def _band_db(x: np.ndarray, lo_hz: float, hi_hz: float, t0: int, t1: int) -> float:
    """Mean power (dB) of `(Ch, S)` in [lo, hi) Hz over samples [t0, t1)."""
    spec = np.fft.rfft(x[0, t0:t1] * np.hanning(t1 - t0))
    freqs = np.fft.rfftfreq(t1 - t0, 1 / SAMPLE_RATE)
    band = (freqs >= lo_hz) & (freqs < hi_hz)
    return 10 * np.log10(np.mean(np.abs(spec[band]) ** 2) + 1e-30)


def test_input_louder_above_the_cutoff_is_kept_by_default(tiny_model):
    # an MP3-like input: band-limited at 6 kHz, except a loud 9-10 kHz burst in its second
    # half (content the encoder kept); the restored file keeps that burst unless told not to
    n = 3 * SAMPLE_RATE
    x = lowpass(synth_clip(3.0, seed=4), 6000.0)[None].astype(np.float32)
    rng = np.random.default_rng(2)
    burst = np.fft.irfft(np.where((np.fft.rfftfreq(n, 1 / SAMPLE_RATE) > 9000)
                                  & (np.fft.rfftfreq(n, 1 / SAMPLE_RATE) < 10000),
                                  np.fft.rfft(rng.standard_normal(n)), 0), n)
    burst[: n // 2] = 0.0
    x = x + (0.2 * burst / np.abs(burst).max()).astype(np.float32)[None]
    outs = {}
    for keep in (True, False):
        restorer = Restorer(tiny_model, SamplerConfig(steps=2),
                            PipelineConfig(keep_louder_input=keep), "cpu")
        *_, last = restorer.iter_array(x, SAMPLE_RATE, cutoff_hz=6000.0)
        outs[keep] = last.result.audio
    late = (2 * SAMPLE_RATE, 2 * SAMPLE_RATE + 16384)
    want = _band_db(x, 9200, 9800, *late)
    assert abs(_band_db(outs[True], 9200, 9800, *late) - want) < 1.0
    assert _band_db(outs[False], 9200, 9800, *late) < want - 6.0
    early = (SAMPLE_RATE // 2, SAMPLE_RATE // 2 + 16384)  # no burst: the same generated band
    assert abs(_band_db(outs[True], 12000, 16000, *early)
               - _band_db(outs[False], 12000, 16000, *early)) < 0.5


def test_encoder_holes_below_the_cutoff_are_filled_only_when_asked(tiny_model):
    # an MP3-like input: band-limited at 6 kHz, and 4-5 kHz removed in its second half (bands
    # the encoder zeroed); off, the restored file keeps that hole, on, the model fills it
    n = 3 * SAMPLE_RATE
    x = lowpass(synth_clip(3.0, seed=4), 6000.0)
    late = np.zeros(n, np.float32)
    late[n // 2:] = x[n // 2:]
    x = (x - late + lowpass(late, 4000.0) + late - lowpass(late, 5000.0))[None]  # (1, S)
    outs = {}
    for fill in (None, 20.0):
        restorer = Restorer(tiny_model, SamplerConfig(steps=2),
                            PipelineConfig(fill_holes_db=fill), "cpu")
        *_, last = restorer.iter_array(x, SAMPLE_RATE, cutoff_hz=6000.0)
        outs[fill] = last.result.audio
    span = (2 * SAMPLE_RATE, 2 * SAMPLE_RATE + 16384)
    hole = _band_db(x, 4200, 4800, *span)
    assert _band_db(outs[None], 4200, 4800, *span) < hole + 3.0  # off: the input's own band
    assert _band_db(outs[20.0], 4200, 4800, *span) > hole + 20.0  # on: generated content
    with pytest.raises(ValueError, match="fill_holes_db"):
        PipelineConfig(fill_holes_db=0.0)

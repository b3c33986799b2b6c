"""engine.training.degrade: simulated LR inputs land where the pipeline's detector says they do."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from engine.audio.cutoff import detect_cutoff
from engine.audio.io import iter_blocks, resample
from engine.audio.telephone import PHONE_RATE
from engine.config import SAMPLE_RATE
from engine.training.degrade import (
    FAMILIES,
    IIR_FAMILIES,
    SOXR_BANDWIDTH,
    DegradeConfig,
    Degrader,
    iir_variants,
    resample_rate,
)
from tests.engine.conftest import synth_clip, write_wav

CUTOFFS_HZ = (4000.0, 8000.0, 11025.0, 16000.0, 2750.0, 13300.0)  # named + two arbitrary


def _signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    noise = (0.3 * rng.standard_normal(3 * SAMPLE_RATE)).astype(np.float32)
    return {"noise": noise, "music": synth_clip(3.0, seed=3)}


SIGNALS = _signals()


def _within(detected: float, nominal: float) -> bool:
    return abs(detected - nominal) <= max(0.05 * nominal, 300.0)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "phone"])
def test_detected_cutoff_matches_nominal(family: str) -> None:
    """Every family and design, at 4/8/11.025/16 kHz and two odd cutoffs, on noise and music
    (a phone call's cutoff is the one detected at 8 kHz, as the pipeline reads such a file)."""
    degrader = Degrader()
    variants = iir_variants(degrader.cfg, family) if family in IIR_FAMILIES else [None] * 2
    rng = np.random.default_rng(1)
    failures, tried = [], set()
    for s, (name, x) in enumerate(SIGNALS.items()):
        for c, cutoff in enumerate(CUTOFFS_HZ):
            # round-robin: each design meets each signal at two of the six cutoffs
            for v, spec in enumerate(variants):
                if family in IIR_FAMILIES and (v + c + s) % 3:
                    continue
                out = degrader.apply(x, family, cutoff, rng, spec=spec)
                tried.add(out.detail)
                assert out.lr.shape == x.shape and out.lr.dtype == np.float32
                assert out.kind == family
                detected = detect_cutoff(out.lr, SAMPLE_RATE)
                if not _within(detected, out.cutoff_hz):
                    failures.append((name, cutoff, out.detail, out.cutoff_hz, detected))
    assert not failures, failures
    if family in IIR_FAMILIES:
        assert len(tried) == len(variants)


def test_resample_is_the_pipeline_path(tmp_path: Path) -> None:
    """The LR equals a real low-rate file read by the pipeline (iter_blocks to 44.1 kHz)."""
    x = synth_clip(2.0, seed=5)
    out = Degrader().apply(x, "resample", 8000.0, np.random.default_rng(0))
    low = resample(x[None], SAMPLE_RATE, 16000)  # (1, S') what a 16 kHz file holds
    path = write_wav(tmp_path / "low.wav", low[0], 16000, subtype="FLOAT")
    piped = np.concatenate(list(iter_blocks(path, 4096, sample_rate=SAMPLE_RATE)), axis=1)[0]
    np.testing.assert_allclose(out.lr, piped[: x.shape[0]], atol=1e-6)
    assert out.cutoff_hz == pytest.approx(SOXR_BANDWIDTH * 8000.0)
    assert "16000" in out.detail


def test_resample_rate_snaps_named_cutoffs() -> None:
    assert [resample_rate(c) for c in (4000, 8000, 11025, 16000)] == [8000, 16000, 22050, 32000]
    assert resample_rate(4030) == 8000  # named value with a little jitter
    assert resample_rate(5000) == 10000
    assert resample_rate(2750.4) == 5501


def test_draws_follow_the_config() -> None:
    cfg = DegradeConfig()
    degrader = Degrader(cfg)
    rng = np.random.default_rng(0)
    cutoffs = np.array([degrader.draw_cutoff(rng) for _ in range(4000)])
    named = np.isin(cutoffs, cfg.named_cutoffs_hz)
    assert 0.45 < named.mean() < 0.55
    assert cutoffs.min() >= cfg.min_cutoff_hz and cutoffs.max() <= cfg.max_cutoff_hz
    hist, _ = np.histogram(cutoffs[~named], bins=4, range=(2000, 16000))
    assert hist.min() > 0.2 * (~named).sum()  # uniform spread
    short = np.zeros(2048, np.float32)
    short[::7] = 0.1
    kinds = [degrader(short, rng).kind for _ in range(1500)]
    weights = cfg.family_weights()
    for family in FAMILIES:
        share = kinds.count(family) / len(kinds)
        assert abs(share - weights[family] / sum(weights.values())) < 0.04, family
    jittered = Degrader(DegradeConfig(named_prob=1.0, named_jitter_hz=50.0))
    values = [jittered.draw_cutoff(rng) for _ in range(200)]
    assert all(min(abs(v - c) for c in cfg.named_cutoffs_hz) <= 50 for v in values)
    assert len(set(values)) == len(values)
    log_cfg = DegradeConfig(named_prob=0.0, spread="log")
    log_draws = np.array([Degrader(log_cfg).draw_cutoff(rng) for _ in range(2000)])
    assert np.median(log_draws) == pytest.approx(np.sqrt(2000 * 16000), rel=0.1)


def test_causal_share_and_variants() -> None:
    cfg = DegradeConfig(causal_prob=0.5)
    for family in IIR_FAMILIES:
        variants = iir_variants(cfg, family)
        assert all(v.zero_phase or v.order >= cfg.causal_min_order for v in variants)
        assert {v.order for v in variants} == set(cfg.iir_orders)
    degrader = Degrader(cfg)
    rng = np.random.default_rng(0)
    x = np.random.default_rng(1).standard_normal(4096).astype(np.float32)
    details = [degrader.apply(x, "ellip", 8000.0, rng).detail for _ in range(400)]
    causal = sum("causal" in d for d in details) / len(details)
    assert 0.4 < causal < 0.6
    assert len(set(details)) > 20  # orders x ripples x stop bands x phase


def test_same_rng_same_output_and_odd_lengths() -> None:
    degrader = Degrader()
    x = synth_clip(1.0, seed=2)[:40001]  # odd length
    for seed in range(12):
        a = degrader(x, np.random.default_rng(seed))
        b = degrader(x, np.random.default_rng(seed))
        assert a.kind == b.kind and a.cutoff_hz == b.cutoff_hz and a.detail == b.detail
        np.testing.assert_array_equal(a.lr, b.lr)
        assert a.lr.shape == x.shape and np.isfinite(a.lr).all()


def test_mp3_holes_vary_over_time() -> None:
    x = (0.3 * np.random.default_rng(0).standard_normal(SAMPLE_RATE)).astype(np.float32)
    cfg = DegradeConfig(mp3_hole_prob=(0.5, 0.5), transition_hz=(100.0, 100.0))
    out = Degrader(cfg).apply(x, "mp3", 8000.0, np.random.default_rng(0))
    # frames aligned with the simulated granules; the lowest of the 3 bands in 6-8 kHz
    frames = np.lib.stride_tricks.sliding_window_view(out.lr, 1152)[576::576] * np.hanning(1152)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (K, F)
    freqs = np.fft.rfftfreq(1152, 1 / SAMPLE_RATE)
    band = spec[:, (freqs > 6150) & (freqs < 6500)].mean(axis=1)  # (K,)
    assert band.max() / np.maximum(band.min(), 1e-12) > 100  # dropped in some frames only
    assert "holes 0.50" in out.detail


@pytest.mark.parametrize(("field", "value"), [
    ("named_prob", 1.5), ("min_cutoff_hz", 500.0), ("max_cutoff_hz", 21000.0),
    ("spread", "cubic"), ("butter_prob", -1.0), ("iir_orders", ()), ("causal_min_order", 4),
    ("ripple_db", (5.0,)), ("stopband_db", (10.0,)), ("transition_hz", (300.0, 100.0)),
])
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DegradeConfig(**{field: value})


def test_all_zero_family_weights_rejected() -> None:
    zeros = {f"{name}_prob": 0.0 for name in FAMILIES}
    with pytest.raises(ValueError, match="prob"):
        DegradeConfig(**zeros)
    only = Degrader(DegradeConfig(**{**zeros, "brickwall_prob": 1.0}))
    x = np.zeros(4096, np.float32)
    assert {only(x, np.random.default_rng(i)).kind for i in range(10)} == {"brickwall"}


def test_phone_calls_are_off_unless_asked_for_then_drawn_at_their_share() -> None:
    assert DegradeConfig().phone_prob == 0.0
    cfg = DegradeConfig().with_phone_share(0.25)
    weights = cfg.family_weights()
    assert weights["phone"] / sum(weights.values()) == pytest.approx(0.25)
    assert cfg.with_phone_share(0.0).phone_prob == 0.0
    with pytest.raises(ValueError, match="phone share"):
        cfg.with_phone_share(1.0)
    short = np.full(2048, 0.01, np.float32)
    rng = np.random.default_rng(0)
    kinds = [Degrader(cfg)(short, rng).kind for _ in range(800)]
    assert abs(kinds.count("phone") / len(kinds) - 0.25) < 0.05


def test_phone_calls_keep_the_detectors_notes_out_of_the_training_log(caplog) -> None:
    """A silent crop has no band edge; the detector says so at INFO for a user's file, but a
    worker makes thousands of calls (a 15-minute run logged 6,300 such lines)."""
    cutoff_log = logging.getLogger("engine.audio.cutoff")
    caplog.set_level(logging.INFO, logger=cutoff_log.name)
    rng = np.random.default_rng(0)
    for _ in range(4):  # both codecs
        call = Degrader().apply(np.zeros(SAMPLE_RATE, np.float32), "phone", 8000.0, rng)
        assert 3000 < call.cutoff_hz <= 4000
    assert not [r for r in caplog.records if r.name == cutoff_log.name]
    assert cutoff_log.level == logging.INFO  # caplog's level, handed back
    detect_cutoff(np.zeros(PHONE_RATE, np.float32), PHONE_RATE)  # the pipeline still notes it
    assert [r for r in caplog.records if r.name == cutoff_log.name]


def test_a_phone_call_keeps_the_voice_band_through_a_codec() -> None:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    hum = 0.2 * np.sin(2 * np.pi * 100 * t)  # a low the voice band cuts
    x = (0.5 * synth_clip(2.0, seed=6) + hum).astype(np.float32)  # full band
    rng = np.random.default_rng(0)
    calls = [Degrader().apply(x, "phone", 8000.0, rng) for _ in range(8)]
    assert {c.detail for c in calls} == {"voice band, ulaw", "voice band, gsm"}
    freqs = np.fft.rfftfreq(x.shape[0], 1 / SAMPLE_RATE)
    power_in = np.abs(np.fft.rfft(x)) ** 2
    for call in calls:
        assert call.lr.shape == x.shape and call.lr.dtype == np.float32 and call.kind == "phone"
        assert 3000 < call.cutoff_hz < 3600  # where the pipeline's detector puts the edge
        power = np.abs(np.fft.rfft(call.lr)) ** 2

        def ratio_db(lo: float, hi: float, p: np.ndarray = power) -> float:
            band = (freqs >= lo) & (freqs < hi)
            return float(10 * np.log10(p[band].sum() / power_in[band].sum()))

        assert abs(ratio_db(500, 3000)) < 3  # the voice band is kept (through the codec)
        assert ratio_db(90, 110) < -20  # the lows are cut
        assert ratio_db(4500, 20000) < -40  # nothing above the phone's band
    ulaw = next(c for c in calls if c.detail.endswith("ulaw"))
    plain = Degrader().apply(x, "resample", 4000.0, rng)  # 8 kHz without the phone channel
    core = slice(1000, -1000)
    assert not np.allclose(ulaw.lr[core], plain.lr[core], atol=1e-3)  # the codec's noise is in

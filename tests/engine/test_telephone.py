"""The eval's telephone channel: voice band, G.711 mu-law and GSM 06.10 round trips, conditions."""

from __future__ import annotations

import numpy as np
import pytest

from engine.audio.cutoff import detect_cutoff
from engine.audio.telephone import PHONE_RATE, codec_round_trip, telephone, voice_band
from engine.cli import build_parser
from engine.eval.evaluate import CONDITIONS, DEFAULT_CONDITIONS, EvalConfig
from tests.engine.conftest import synth_clip


def _tone(hz: float, amplitude: float = 1.0, seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * PHONE_RATE)) / PHONE_RATE
    return (amplitude * np.sin(2 * np.pi * hz * t))[None].astype(np.float32)  # (1, S)


def _gain_db(x: np.ndarray, y: np.ndarray) -> float:
    core = slice(2000, -2000)  # away from the filter's edge transients
    return float(10 * np.log10(np.mean(y[:, core] ** 2) / np.mean(x[:, core] ** 2)))


def _snr_db(x: np.ndarray, y: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2)))


def test_voice_band_passes_speech_frequencies_and_cuts_the_rest():
    assert abs(_gain_db(_tone(1000), voice_band(_tone(1000)))) < 0.1
    for edge in (300, 3400):  # G.712's edges, -6 dB after the zero-phase pair of passes
        assert _gain_db(_tone(edge), voice_band(_tone(edge))) == pytest.approx(-6.0, abs=0.5)
    for outside in (100, 3800):
        assert _gain_db(_tone(outside), voice_band(_tone(outside))) < -30


def test_mu_law_adds_companding_noise_of_8_bit_samples():
    x = _tone(1000, 0.5)
    y = codec_round_trip(x, "ulaw")
    assert y.shape == x.shape and y.dtype == np.float32
    assert 30 < _snr_db(x, y) < 40  # G.711's ~38 dB; 16-bit PCM would give ~90
    quiet = _tone(1000, 0.01)  # companding: the step shrinks with the level, the SNR stays
    assert 25 < _snr_db(quiet, codec_round_trip(quiet, "ulaw")) < 40


def test_gsm_keeps_a_voiced_sound_in_time_and_level():
    t = np.arange(2 * PHONE_RATE) / PHONE_RATE
    vowel = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 23))  # 150 Hz voice
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2  # 4 Hz syllable rate
    x = voice_band((0.2 * vowel * syllables)[None])  # (1, S)
    y = codec_round_trip(x, "gsm")
    assert y.shape == x.shape and np.isfinite(y).all()
    assert 0 < _snr_db(x, y) < 25  # lossy (13 kbit/s), yet the same waveform
    assert abs(_gain_db(x, y)) < 2
    lags = range(-40, 41)
    corr = [float(np.dot(np.roll(y[0], lag), x[0])) for lag in lags]
    assert lags[int(np.argmax(corr))] == 0  # no codec delay left in


def test_stereo_and_overloaded_input_are_coded_per_channel_and_clipped():
    rng = np.random.default_rng(0)
    x = (0.3 * rng.standard_normal((2, 3210))).astype(np.float32)
    x[1] *= 0.1
    x[0, :50] = 3.0  # beyond full scale
    for codec in ("ulaw", "gsm"):
        y = telephone(x, codec)
        assert y.shape == x.shape and np.isfinite(y).all() and np.abs(y).max() <= 1.0
        assert np.std(y[1]) < 0.5 * np.std(y[0])  # the quiet channel stays quiet
    with pytest.raises(ValueError, match="codec must be one of"):
        codec_round_trip(x, "amr")


@pytest.mark.parametrize("name", ["phone-ulaw", "phone-gsm"])
def test_phone_conditions_give_an_8_khz_voice_band_input(name):
    cond = CONDITIONS[name]
    ref = (0.5 * synth_clip(2.0, seed=4))[None]  # (1, S) at 44.1 kHz, full band
    lr = cond.simulate(ref)
    assert cond.sample_rate == PHONE_RATE and lr.shape == (1, ref.shape[1] * 8000 // 44100)
    assert 3000 < detect_cutoff(lr, PHONE_RATE) < 3600


def test_phone_conditions_are_offered_but_not_run_by_default():
    parser = build_parser()
    for name in CONDITIONS:  # every condition the engine has is a choice of the command
        assert parser.parse_args(["eval", "refs", "--conditions", name]).conditions == [name]
    assert tuple(parser.parse_args(["eval", "refs"]).conditions) == DEFAULT_CONDITIONS
    assert EvalConfig(folders=(".",)).conditions == DEFAULT_CONDITIONS

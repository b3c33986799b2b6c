"""engine.audio.oneshot: a struck or plucked sound that starts at its loudest and dies away."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.audio import oneshot
from engine.audio.oneshot import envelope_shape, is_one_shot, is_one_shot_file

RATE = 16000


def _hit(seconds: float = 2.0, tau_s: float = 0.2, delay_s: float = 0.0, fade_in_s: float = 0.0,
         seed: int = 0) -> np.ndarray:
    """Noise decaying exponentially from its onset at `delay_s` (a drum hit), optionally faded
    in over `fade_in_s`."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    env = np.where(t >= delay_s, np.exp(-(t - delay_s) / tau_s), 0.0)
    if fade_in_s > 0:
        env *= np.clip((t - delay_s) / fade_in_s, 0.0, 1.0)
    return (0.5 * env * rng.standard_normal(t.shape[0])).astype(np.float32)


def test_a_hit_dying_away_is_a_one_shot():
    attack, decay = envelope_shape(_hit(), RATE)
    assert attack <= 0.02 and decay > 0.95  # an exponential falls in a straight line in dB
    assert is_one_shot(_hit(), RATE)
    assert is_one_shot(_hit(delay_s=0.4), RATE)  # leading silence is not attack
    assert is_one_shot(np.stack([_hit(), _hit(seed=1)]), RATE)  # stereo
    assert is_one_shot(_hit(tau_s=0.05, seconds=0.6), RATE)  # a short click of a hi-hat
    assert type(is_one_shot(_hit(), RATE)) is bool  # not numpy's bool: `is False` tests it


def test_sounds_that_swell_hold_or_repeat_are_not():
    assert not is_one_shot(_hit(fade_in_s=0.3), RATE)  # swells to its peak: attack 0.3 s
    t = np.arange(3 * RATE) / RATE
    held = sum(0.1 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 20))
    assert not is_one_shot(held.astype(np.float32), RATE)  # sustained: no decay
    syllables = (held * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)
    assert not is_one_shot(syllables, RATE)  # speech-like 4 Hz level changes
    roll = _hit(seconds=3.0) + _hit(seconds=3.0, delay_s=1.5, seed=2) * 1.2  # louder 2nd hit
    assert not is_one_shot(roll, RATE)
    rng = np.random.default_rng(3)
    assert not is_one_shot((0.1 * rng.standard_normal(3 * RATE)).astype(np.float32), RATE)


def test_silent_short_and_long_inputs_are_not():
    assert envelope_shape(np.zeros(RATE, np.float32), RATE) is None
    assert not is_one_shot(np.zeros(RATE, np.float32), RATE)
    assert envelope_shape(_hit(seconds=0.05), RATE) is None  # too short to tell
    bad = _hit()
    bad[100] = np.nan
    assert envelope_shape(bad, RATE) is None and not is_one_shot(bad, RATE)
    long = _hit(seconds=oneshot.MAX_SECONDS + 1, tau_s=8.0)
    assert envelope_shape(long, RATE)[1] > 0.9 and not is_one_shot(long, RATE)


def test_files_are_read_only_when_short_enough(tmp_path, monkeypatch):
    sf.write(tmp_path / "hit.wav", _hit(), RATE)
    sf.write(tmp_path / "pad.wav", _hit(fade_in_s=0.5), RATE)
    sf.write(tmp_path / "long.wav", _hit(seconds=oneshot.MAX_SECONDS + 1), RATE)
    assert is_one_shot_file(tmp_path / "hit.wav") is True
    assert is_one_shot_file(tmp_path / "pad.wav") is False
    stereo = np.stack([_hit(), _hit(seed=4)], axis=1)
    sf.write(tmp_path / "hit2.wav", stereo, RATE)
    assert is_one_shot_file(tmp_path / "hit2.wav") is True
    monkeypatch.setattr(oneshot, "BLOCK_FRAMES", 1000)  # blocks joined: the same answer
    assert is_one_shot_file(tmp_path / "hit2.wav") is True
    assert is_one_shot_file(tmp_path / "pad.wav") is False

    def refuse(*_args, **_kwargs):
        raise AssertionError("a long file was read")

    monkeypatch.setattr(oneshot.audio_io, "iter_blocks", refuse)
    assert is_one_shot_file(tmp_path / "long.wav") is False
    with pytest.raises(AssertionError):
        is_one_shot_file(tmp_path / "hit.wav")

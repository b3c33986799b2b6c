"""STFT codec: exact analysis/synthesis, normalisation, band-limited Griffin-Lim decoding."""

from __future__ import annotations

import json
import math

import pytest
import torch

from engine.codecs import CodecError, STFTCodec, bands, build_codec
from engine.config import LATENT_CHANNELS, SAMPLE_RATE
from tests.engine.conftest import band_lsd


def _harmonic(num_samples: int, f0_hz: float = 196.0, batch: int = 1) -> torch.Tensor:
    """Harmonic tone with vibrato and soft edges, (batch, 1, S), peak about 0.5."""
    t = torch.arange(num_samples) / SAMPLE_RATE
    freq = f0_hz * (1 + 0.01 * torch.sin(2 * math.pi * 5 * t))
    phase = 2 * math.pi * torch.cumsum(freq, 0) / SAMPLE_RATE
    wav = sum(torch.sin(h * phase + h) / h for h in range(1, int(20000 // f0_hz)))
    fade = torch.ones(num_samples)
    ramp = torch.hann_window(4096, periodic=False)[:2048]
    fade[:2048], fade[-2048:] = ramp, ramp.flip(0)
    wav = 0.25 * fade * wav
    return torch.stack([wav * (0.5 + 0.5 * i) for i in range(batch)])[:, None]



def _spectral_convergence(wav: torch.Tensor, target_mag: torch.Tensor, k0: int) -> float:
    mag = bands.analyze(wav).abs()[:, k0:]
    return float((mag - target_mag[:, k0:]).norm() / target_mag[:, k0:].norm())


@pytest.fixture(scope="module")
def codec() -> STFTCodec:
    return STFTCodec()


@pytest.mark.parametrize("length", [1, 100, 511, 1023, 2045, 2046, 2047, 5001, 44101])
def test_analysis_synthesis_is_exact(codec: STFTCodec, length: int) -> None:
    wav = 0.5 * torch.randn(2, 1, length, generator=torch.Generator().manual_seed(length))
    spec = codec.analyze(wav)
    assert spec.shape == (2, LATENT_CHANNELS, codec.num_frames(length))
    assert spec.is_complex()
    back = codec.synthesize(spec, length)
    assert back.shape == wav.shape
    assert float((back - wav).norm() / wav.norm()) < 1e-5


@pytest.mark.parametrize("length", [1, 512, 1000, 2046, 30000])
def test_encode_shape_and_values(codec: STFTCodec, length: int) -> None:
    wav = 0.1 * torch.randn(3, 1, length, generator=torch.Generator().manual_seed(0))
    z = codec.encode(wav)
    assert z.shape == (3, codec.channels, codec.num_frames(length))
    assert z.dtype == torch.float32
    raw = codec.analyze(wav).abs().clamp_min(codec.floor).log()
    assert torch.allclose(z, (raw - codec.mean[:, None]) / codec.std[:, None], atol=1e-5)
    mag = codec.magnitude(z)
    assert torch.allclose(mag, codec.analyze(wav).abs().clamp_min(codec.floor), rtol=1e-4)


@pytest.mark.parametrize("shape", [(1000,), (1, 1000), (1, 2, 1000), (1, 1, 0)])
def test_encode_rejects_bad_shapes(codec: STFTCodec, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(shape))


def test_prior_stats_and_fit_stats() -> None:
    codec = STFTCodec()
    prior = codec.stats_tensors()
    assert prior["mean"].shape == prior["std"].shape == (LATENT_CHANNELS,)
    assert torch.all(prior["mean"][1:] <= prior["mean"][:-1])  # falls with frequency
    gen = torch.Generator().manual_seed(0)
    batches = [0.1 * torch.randn(2, 1, 20000, generator=gen),
               0.3 * torch.randn(1, 1, 7000, generator=gen),
               torch.zeros(1, 1, 3000)]
    codec.fit_stats(iter(batches))
    raw = torch.cat([codec.encode_raw(b).double().transpose(0, 1).flatten(1) for b in batches],
                    dim=1)  # (C, frames)
    stats = codec.stats_tensors()
    assert torch.allclose(stats["mean"].double(), raw.mean(1), atol=1e-4)
    assert torch.allclose(stats["std"].double(), raw.std(1, correction=0), rtol=1e-3)
    z = torch.cat([codec.encode(b).transpose(0, 1).flatten(1) for b in batches], dim=1)
    assert float(z.mean(1).abs().max()) < 1e-3
    assert torch.allclose(z.std(1, correction=0), torch.ones(codec.channels), atol=1e-3)

    silent = STFTCodec()
    silent.fit_stats([torch.zeros(1, 1, 5000)])
    assert torch.all(silent.std == silent.std_floor)
    with pytest.raises(ValueError):
        silent.fit_stats([])


def test_stats_and_config_round_trip() -> None:
    codec = STFTCodec()
    codec.fit_stats([0.1 * torch.randn(1, 1, 9000, generator=torch.Generator().manual_seed(1))])
    config = json.loads(json.dumps(codec.config_dict()))
    assert config["name"] == "stft" and config["channels"] == LATENT_CHANNELS
    again = build_codec("stft", config=config, stats=codec.stats_tensors())
    wav = 0.1 * torch.randn(1, 1, 4000)
    assert torch.equal(again.encode(wav), codec.encode(wav))
    with pytest.raises(ValueError):
        again.load_stats({"mean": torch.zeros(3), "std": torch.ones(3)})
    with pytest.raises(ValueError):
        again.load_stats({"mean": torch.zeros(LATENT_CHANNELS)})
    config["parameters"]["floor"] = 1e-3
    assert build_codec("stft", config=config).floor == 1e-3  # the saved setting wins
    with pytest.raises(CodecError):
        build_codec("stft", config=config, floor=1e-5)  # ... and a different one is refused
    with pytest.raises(CodecError):
        build_codec("stft", config={**config, "name": "dac"})
    with pytest.raises(ValueError):
        build_codec("nope")


def test_decode_argument_checks(codec: STFTCodec) -> None:
    wav = torch.zeros(1, 1, 4000)
    z = codec.encode(wav)
    with pytest.raises(ValueError):
        codec.decode(z, 5000)  # frame count does not match the length
    with pytest.raises(ValueError):
        codec.decode(z, 4000, keep=wav)  # keep without cutoff
    with pytest.raises(ValueError):
        codec.decode(z, 4000, keep=torch.zeros(1, 1, 3999), cutoff_hz=4000.0)
    with pytest.raises(ValueError):
        codec.decode(z[:, :10], 4000)


def test_decode_keeps_input_band_and_fills_high_band(codec: STFTCodec) -> None:
    n = SAMPLE_RATE // 2
    ref = _harmonic(n, batch=2)
    cutoff = 5000.0
    keep = bands.merge_bands(torch.zeros_like(ref), ref, cutoff, 0.0)  # band-limited input
    z = codec.encode(ref)  # oracle latent: the model's ideal output
    out = codec.decode(z, n, keep=keep, cutoff_hz=cutoff, transition_hz=300.0,
                       generator=torch.Generator().manual_seed(0))
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert band_lsd(out, keep, hi_hz=cutoff - 150.0) < 0.05
    low_out = bands.analyze(out)[:, : int(4000 / bands.BIN_HZ), 2:-2]
    low_keep = bands.analyze(keep)[:, : int(4000 / bands.BIN_HZ), 2:-2]
    assert float((low_out - low_keep).abs().max() / low_keep.abs().max()) < 1e-5
    assert band_lsd(out, ref, lo_hz=cutoff + 150.0) < 0.5
    assert band_lsd(keep, ref, lo_hz=cutoff + 150.0) > 3.0  # the input really lacked the band


def test_decode_is_deterministic_and_batch_split_invariant() -> None:
    n = 20000
    ref = _harmonic(n, batch=3)
    keep = bands.merge_bands(torch.zeros_like(ref), ref, 6000.0, 0.0)
    one_pass, split = STFTCodec(), STFTCodec(max_batch=2)
    z = one_pass.encode(ref)
    runs = [c.decode(z, n, keep=keep, cutoff_hz=6000.0, phase_iters=4,
                     generator=torch.Generator().manual_seed(seed))
            for c, seed in [(one_pass, 7), (one_pass, 7), (split, 7), (one_pass, 8)]]
    assert torch.equal(runs[0], runs[1])
    assert torch.allclose(runs[0], runs[2], atol=1e-6)
    assert not torch.allclose(runs[0], runs[3], atol=1e-4)


def test_plain_griffin_lim_converges(codec: STFTCodec) -> None:
    n = 15000
    ref = _harmonic(n)
    z = codec.encode(ref)
    target = codec.magnitude(z)
    errors = [_spectral_convergence(codec.decode(z, n, phase_iters=iters,
                                                 generator=torch.Generator().manual_seed(0)),
                                    target, 0) for iters in (0, 4, 16)]
    assert errors[2] < errors[1] < errors[0]
    assert errors[2] < 0.1


def test_vocoder_init_beats_random_init() -> None:
    n = SAMPLE_RATE // 2
    ref = _harmonic(n)
    cutoff = 4000.0
    keep = bands.merge_bands(torch.zeros_like(ref), ref, cutoff, 0.0)
    k0 = int((cutoff + 150.0) / bands.BIN_HZ) + 1
    errors = {}
    for init in ("pv", "random"):
        codec = STFTCodec(phase_init=init)
        z = codec.encode(ref)
        out = codec.decode(z, n, keep=keep, cutoff_hz=cutoff, phase_iters=8,
                           generator=torch.Generator().manual_seed(0))
        errors[init] = _spectral_convergence(out, codec.magnitude(z), k0)
    assert errors["pv"] < 0.5 * errors["random"]


@pytest.mark.parametrize("init", ["copy", "zero"])
def test_other_phase_inits_run(init: str) -> None:
    n = 8000
    ref = _harmonic(n)
    codec = STFTCodec(phase_init=init)
    z = codec.encode(ref)
    keep = bands.merge_bands(torch.zeros_like(ref), ref, 3000.0, 0.0)
    out = codec.decode(z, n, keep=keep, cutoff_hz=3000.0, phase_iters=2)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert codec.decode(z, n, phase_iters=0).shape == ref.shape


def test_decode_everything_kept_returns_keep(codec: STFTCodec) -> None:
    n = 6000
    ref = _harmonic(n)
    z = codec.encode(torch.zeros_like(ref))
    out = codec.decode(z, n, keep=ref, cutoff_hz=22049.0, transition_hz=0.0)
    assert float((out - ref).norm() / ref.norm()) < 1e-5


def test_constructor_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        STFTCodec(phase_init="nope")
    with pytest.raises(ValueError):
        STFTCodec(floor=0.0)
    with pytest.raises(ValueError):
        STFTCodec(momentum=1.0)


def test_decode_keeps_louder_input_above_the_cutoff(codec: STFTCodec) -> None:
    n = SAMPLE_RATE // 2
    ref = _harmonic(n, batch=1)
    cutoff = 5000.0
    keep = bands.merge_bands(torch.zeros_like(ref), ref, cutoff, 0.0)
    t = torch.arange(n) / SAMPLE_RATE
    burst = (t > 0.25).float() * 0.3 * torch.sin(2 * math.pi * 9000.0 * t)  # encoder-kept band
    keep_burst = keep + burst[None, None]
    z = codec.encode(0.01 * ref)  # a quiet generated band
    args = {"length": n, "keep": keep_burst, "cutoff_hz": cutoff, "transition_hz": 300.0}
    on = codec.decode(z, keep_louder=True, generator=torch.Generator().manual_seed(0), **args)
    off = codec.decode(z, generator=torch.Generator().manual_seed(0), **args)
    k = round(9000.0 / bands.BIN_HZ)
    frames = bands.analyze(on).shape[-1]
    late = slice(frames // 2 + 4, frames - 4)
    target = bands.analyze(keep_burst)[0, k, late].abs()
    got_on, got_off = bands.analyze(on)[0, k, late].abs(), bands.analyze(off)[0, k, late].abs()
    assert float((got_on - target).abs().max() / target.max()) < 0.05  # the input's own band
    assert float(got_off.mean()) < 0.2 * float(target.mean())  # generated over it before
    plain = codec.decode(z, keep_louder=True, generator=torch.Generator().manual_seed(0),
                         **{**args, "keep": keep})
    assert torch.equal(plain, codec.decode(z, generator=torch.Generator().manual_seed(0),
                                           **{**args, "keep": keep}))  # band-limited: as before


def test_decode_fills_encoder_holes_only_when_asked(codec: STFTCodec) -> None:
    n = SAMPLE_RATE // 2
    ref = _harmonic(n, batch=1)
    cutoff = 8000.0
    spec = bands.analyze(bands.merge_bands(torch.zeros_like(ref), ref, cutoff, 0.0))
    frames = spec.shape[-1]
    freqs = bands.bin_freqs_hz()
    hole = (freqs > 5000) & (freqs < 6000)
    spec[:, hole, frames // 2:] = 0.0  # an encoder zeroed 5-6 kHz in the second half
    keep = bands.synthesize(spec, n)
    z = codec.encode(ref)  # the network's estimate: the whole reference
    args = {"length": n, "keep": keep, "cutoff_hz": cutoff, "transition_hz": 300.0}
    on = codec.decode(z, fill_holes_db=20.0, generator=torch.Generator().manual_seed(0), **args)
    off = codec.decode(z, generator=torch.Generator().manual_seed(0), **args)
    late = slice(frames // 2 + 4, frames - 4)
    s_on, s_off, s_ref = (bands.analyze(x)[0].abs() for x in (on, off, ref))
    level = float(s_ref[hole][:, late].mean())
    assert float(s_off[hole][:, late].mean()) < 0.05 * level  # off: the hole stays
    assert abs(float(s_on[hole][:, late].mean()) / level - 1) < 0.25  # on: filled to its level
    low = freqs < 3000
    assert torch.allclose(s_on[low][:, 4:-4], s_off[low][:, 4:-4], rtol=0.02, atol=1e-3)
    clean = bands.synthesize(bands.analyze(ref) * (freqs < cutoff)[:, None], n)  # no holes
    args["keep"] = clean
    seeded = {**args, "generator": torch.Generator().manual_seed(0)}
    filled = codec.decode(z, fill_holes_db=20.0, **seeded)
    seeded["generator"] = torch.Generator().manual_seed(0)
    assert torch.equal(filled, codec.decode(z, **seeded))

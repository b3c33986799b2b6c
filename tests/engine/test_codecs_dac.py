"""DAC codec through the users' loading path, with a tiny randomly initialised DAC on disk."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.codecs import (
    CodecError,
    DACCodec,
    MissingWeightsError,
    bands,
    build_codec,
    default_dac_weights_path,
)
from engine.config import SAMPLE_RATE

TINY_LATENT = 64


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import dac

    torch.manual_seed(0)
    model = dac.DAC(encoder_dim=16, latent_dim=TINY_LATENT, decoder_dim=64)
    path = tmp_path_factory.mktemp("dac") / "tiny.pth"
    model.save(str(path), package=False)
    return path


@pytest.fixture(scope="module")
def codec(tiny_weights: Path) -> DACCodec:
    built = build_codec("dac", weights_path=tiny_weights)
    assert isinstance(built, DACCodec)
    return built


def _signal(num_samples: int, batch: int = 2) -> torch.Tensor:
    t = torch.arange(num_samples) / SAMPLE_RATE
    gen = torch.Generator().manual_seed(num_samples)
    wavs = [0.3 * torch.sin(2 * math.pi * (220.0 * (i + 1)) * t)
            + 0.05 * torch.randn(num_samples, generator=gen) for i in range(batch)]
    return torch.stack(wavs)[:, None]  # (B, 1, S)


def _lsd(a: torch.Tensor, b: torch.Tensor, hi_hz: float) -> float:
    sel = bands.bin_freqs_hz() < hi_hz
    pa = bands.analyze(a)[:, sel].abs().square().clamp_min(1e-8).log10()
    pb = bands.analyze(b)[:, sel].abs().square().clamp_min(1e-8).log10()
    return float((pa - pb).square().mean(dim=1).sqrt().mean())


def test_import_does_not_pull_in_dac() -> None:
    code = ("import sys, engine.codecs; "
            "bad = [m for m in ('dac', 'torchaudio', 'audiotools') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_missing_weights_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.pth"
    with pytest.raises(MissingWeightsError) as info:
        build_codec("dac", weights_path=missing)
    message = str(info.value)
    assert str(missing) in message
    assert "jatsr models download-dac" in message
    assert "\n" not in message

    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".cache" / "descript" / "dac" / "weights_44khz_8kbps_0.0.1.pth"
    assert default_dac_weights_path() == expected
    with pytest.raises(MissingWeightsError, match=re.escape("weights_44khz_8kbps_0.0.1.pth")):
        DACCodec()


def test_unreadable_weights_raise_codec_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CodecError):
        DACCodec(junk)
    other = tmp_path / "other.pth"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CodecError):
        DACCodec(other)


@pytest.mark.parametrize("length", [1, 512, 5000, 44100])
def test_shapes(codec: DACCodec, length: int) -> None:
    assert codec.channels == TINY_LATENT
    wav = _signal(length)
    z = codec.encode(wav)
    assert z.shape == (2, TINY_LATENT, codec.num_frames(length))
    assert codec.num_frames(length) == math.ceil(length / 512)
    out = codec.decode(z, length)
    assert out.shape == (2, 1, length)
    assert torch.isfinite(out).all()


def test_encode_matches_model_and_is_unnormalised_before_fit(codec: DACCodec) -> None:
    wav = _signal(6000)
    z = codec.encode(wav)
    padded = torch.nn.functional.pad(wav, (0, 12 * 512 - 6000))
    with torch.no_grad():
        direct = codec.model.encode(padded)[0]
    assert torch.allclose(z, direct, atol=1e-5)  # prior stats: mean 0, std 1


def test_chunked_matches_unchunked(tiny_weights: Path) -> None:
    length = 44100 + 321
    wav = _signal(length)
    whole = DACCodec(tiny_weights, chunk_frames=10_000)
    chunked = DACCodec(tiny_weights, chunk_frames=20, context_frames=16)
    z_whole, z_chunked = whole.encode(wav), chunked.encode(wav)
    assert torch.allclose(z_whole, z_chunked, atol=1e-4 * float(z_whole.abs().max()))
    out_whole, out_chunked = whole.decode(z_whole, length), chunked.decode(z_whole, length)
    assert float((out_whole - out_chunked).norm() / out_whole.norm()) < 1e-4


def test_fit_stats_and_round_trip(tiny_weights: Path) -> None:
    codec = DACCodec(tiny_weights)
    batches = [_signal(20000), _signal(9000, batch=1)]
    codec.fit_stats(batches)
    stats = codec.stats_tensors()
    assert stats["mean"].shape == stats["std"].shape == (TINY_LATENT,)
    assert torch.all(stats["std"] >= codec.std_floor)
    z = torch.cat([codec.encode(b).transpose(0, 1).flatten(1) for b in batches], dim=1)
    assert float(z.mean(1).abs().max()) < 1e-3
    spread = z.std(1, correction=0)
    assert torch.allclose(spread[stats["std"] > 1e-3], torch.ones(1), atol=1e-3)

    config = json.loads(json.dumps(codec.config_dict()))
    assert config["name"] == "dac" and config["channels"] == TINY_LATENT
    again = build_codec("dac", config=config, stats=stats, weights_path=tiny_weights)
    wav = _signal(3000)
    assert torch.allclose(again.encode(wav), codec.encode(wav), atol=1e-6)
    out = again.decode(again.encode(wav), 3000)
    ref = DACCodec(tiny_weights).decode(DACCodec(tiny_weights).encode(wav), 3000)
    assert torch.allclose(out, ref, atol=1e-5)  # normalisation is undone exactly

    config["parameters"]["latent_dim"] = 1024
    with pytest.raises(CodecError):
        build_codec("dac", config=config, weights_path=tiny_weights)


def test_decode_with_keep_band(codec: DACCodec) -> None:
    length = 30000
    wav = _signal(length)
    keep = bands.merge_bands(torch.zeros_like(wav), wav, 6000.0, 0.0)
    z = codec.encode(wav)
    out = codec.decode(z, length, keep=keep, cutoff_hz=6000.0, transition_hz=300.0)
    assert out.shape == wav.shape
    assert _lsd(out, keep, hi_hz=5800.0) < 0.05
    plain = codec.decode(z, length)
    assert not torch.allclose(out, plain, atol=1e-3)
    with pytest.raises(ValueError):
        codec.decode(z, length, cutoff_hz=6000.0)
    with pytest.raises(ValueError):
        codec.encode(torch.zeros(2, 2, 100))


def test_decode_fills_encoder_holes_through_the_band_merge(codec: DACCodec) -> None:
    length = 30000
    wav = _signal(length)
    spec = bands.analyze(bands.merge_bands(torch.zeros_like(wav), wav, 6000.0, 0.0))
    freqs = bands.bin_freqs_hz()
    spec[:, (freqs > 3500) & (freqs < 4500), 20:] = 0.0  # an encoder's hole, late on
    keep = bands.synthesize(spec, length)
    z = codec.encode(wav)
    args = {"keep": keep, "cutoff_hz": 6000.0, "transition_hz": 300.0}
    filled = codec.decode(z, length, fill_holes_db=20.0, **args)
    plain = codec.decode(z, length)  # what the network generates everywhere
    assert torch.equal(filled, bands.merge_bands(plain, keep, 6000.0, 300.0, fill_holes_db=20.0))
    assert not torch.equal(filled, codec.decode(z, length, **args))

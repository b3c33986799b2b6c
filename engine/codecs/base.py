"""The codec interface: 44.1 kHz waveforms <-> per-channel normalised latents (B, C, T).

Dimensions: B batch, C latent channels, T latent frames, S waveform samples.

Every codec keeps a per-channel mean/std of its *unnormalised* latent; `encode` returns
`(raw - mean) / std` and `decode` undoes it. The statistics travel with a trained model
(`stats_tensors`/`load_stats`), never as constants in code; `fit_stats` measures them.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from engine.config import HOP_SAMPLES, LATENT_CHANNELS, SAMPLE_RATE, TRANSITION_HZ

log = logging.getLogger(__name__)


class CodecError(RuntimeError):
    """A codec could not be built or used."""


class MissingWeightsError(CodecError):
    """A codec's weights file is not on disk."""


class Codec(nn.Module, abc.ABC):
    """Waveform (B, 1, S) at 44.1 kHz <-> normalised latent (B, C, T), hop 512."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = ""
    sample_rate: int = SAMPLE_RATE
    hop: int = HOP_SAMPLES
    channels: int = LATENT_CHANNELS
    std_floor: ClassVar[float] = 1e-4  # smallest std fit_stats will store (latent units)
    init_keys: ClassVar[tuple[str, ...]] = ()  # codec_params keys that are constructor args
    latent_keys: ClassVar[tuple[str, ...]] = ()  # codec_params keys a saved config must match

    mean: Tensor
    std: Tensor

    def __init__(self, channels: int = LATENT_CHANNELS) -> None:
        super().__init__()
        self.channels = channels  # C; DAC takes it from its model so tiny test models work
        self.register_buffer("mean", torch.zeros(self.channels), persistent=False)  # (C,)
        self.register_buffer("std", torch.ones(self.channels), persistent=False)  # (C,)
        self.reset_stats()

    # ---- subclass hooks ------------------------------------------------------------------

    @abc.abstractmethod
    def num_frames(self, num_samples: int) -> int:
        """Latent frames T that `encode` returns for `num_samples` samples."""

    @abc.abstractmethod
    def encode_raw(self, wav: Tensor) -> Tensor:
        """Unnormalised latent of a checked (B, 1, S) waveform -> (B, C, T)."""

    @abc.abstractmethod
    def decode(self, z: Tensor, length: int, keep: Tensor | None = None,
               cutoff_hz: float | None = None, transition_hz: float = TRANSITION_HZ,
               phase_iters: int = 32, generator: torch.Generator | None = None,
               keep_louder: bool = False, fill_holes_db: float | None = None) -> Tensor:
        """Normalised latent (B, C, T) -> waveform (B, 1, length), optionally over a kept band
        (`keep_louder`: also where the kept input is louder above it, `bands.louder_kept`;
        `fill_holes_db`: the generated band in the kept band's encoder holes,
        `bands.encoder_holes`)."""

    def prior_stats(self) -> tuple[Tensor, Tensor]:
        """Mean and std, each (C,), used before `fit_stats`/`load_stats`."""
        return torch.zeros(self.channels), torch.ones(self.channels)

    def codec_params(self) -> dict[str, Any]:
        """JSON-able settings: what the latent means (`latent_keys`) and decoding options."""
        return {}

    # ---- public API ----------------------------------------------------------------------

    def encode(self, wav: Tensor) -> Tensor:
        """Waveform float32 (B, 1, S) in [-1, 1] -> normalised latent (B, C, T)."""
        self.check_wav(wav, "wav")
        return self.normalize(self.encode_raw(wav))

    def normalize(self, raw: Tensor) -> Tensor:
        """Unnormalised latent (B, C, T) -> (raw - mean) / std."""
        return (raw - self.mean[:, None].to(raw)) / self.std[:, None].to(raw)

    def denormalize(self, z: Tensor) -> Tensor:
        """Normalised latent (B, C, T) -> z * std + mean."""
        return z * self.std[:, None].to(z) + self.mean[:, None].to(z)

    def stats_tensors(self) -> dict[str, Tensor]:
        """Normalisation statistics: {"mean": (C,), "std": (C,)} float32 on the CPU."""
        return {"mean": self.mean.detach().float().cpu().clone(),
                "std": self.std.detach().float().cpu().clone()}

    def load_stats(self, tensors: dict[str, Tensor]) -> None:
        """Set the normalisation statistics from `stats_tensors()` output."""
        for key in ("mean", "std"):
            if key not in tensors:
                raise ValueError(f"codec stats lack {key!r} (have {sorted(tensors)})")
            value = tensors[key]
            if tuple(value.shape) != (self.channels,):
                raise ValueError(f"codec stats {key!r} has shape {tuple(value.shape)}, "
                                 f"expected ({self.channels},)")
            if not torch.isfinite(value).all():
                raise ValueError(f"codec stats {key!r} contain non-finite values")
        if (tensors["std"] <= 0).any():
            raise ValueError("codec stats 'std' must be positive")
        self.mean.copy_(tensors["mean"].to(self.mean))
        self.std.copy_(tensors["std"].to(self.std))

    def reset_stats(self) -> None:
        """Go back to the prior statistics."""
        mean, std = self.prior_stats()
        self.mean.copy_(mean)
        self.std.copy_(std)

    @torch.no_grad()
    def fit_stats(self, wavs: Iterable[Tensor]) -> None:
        """Measure per-channel mean/std of the unnormalised latent over all frames of `wavs`."""
        # Streaming sums around a shift (the first batch's mean) in float64, so the
        # sum-of-squares formula does not cancel catastrophically for large means.
        shift: Tensor | None = None
        total = torch.zeros(self.channels, dtype=torch.float64)
        total_sq = torch.zeros(self.channels, dtype=torch.float64)
        count = 0
        for wav in wavs:
            self.check_wav(wav, "wav")
            raw = self.encode_raw(wav).to(device="cpu", dtype=torch.float64)  # (B, C, T)
            if shift is None:
                shift = raw.mean(dim=(0, 2))  # (C,)
            centred = raw - shift[:, None]  # (B, C, T)
            total += centred.sum(dim=(0, 2))
            total_sq += centred.square().sum(dim=(0, 2))
            count += raw.shape[0] * raw.shape[2]
        if shift is None or count == 0:
            raise ValueError("fit_stats got no audio")
        mean_c = total / count
        var = (total_sq / count - mean_c.square()).clamp_min(0.0)
        std = var.sqrt().clamp_min(self.std_floor)
        self.load_stats({"mean": (shift + mean_c).float(), "std": std.float()})
        log.info("%s codec stats fitted over %d frames (mean std %.3g)", self.name, count,
                 float(std.mean()))

    def config_dict(self) -> dict[str, Any]:
        """JSON-able description: name, version, sample rate, hop, channels, parameters."""
        return {"name": self.name, "version": self.version, "sample_rate": self.sample_rate,
                "hop": self.hop, "channels": self.channels, "parameters": self.codec_params()}

    def check_config(self, config: dict[str, Any]) -> None:
        """Raise CodecError if a saved `config_dict()` describes a different latent."""
        for key in ("name", "version", "sample_rate", "hop", "channels"):
            if key in config and config[key] != getattr(self, key):
                raise CodecError(f"codec {key} mismatch: model file has {config[key]!r}, "
                                 f"this codec has {getattr(self, key)!r}")
        saved, mine = config.get("parameters", {}), self.codec_params()
        for key in self.latent_keys:
            if key in saved and saved[key] != mine[key]:
                raise CodecError(f"codec parameter {key!r} mismatch: model file has "
                                 f"{saved[key]!r}, this codec has {mine[key]!r}")

    # ---- argument checks -----------------------------------------------------------------

    def check_wav(self, wav: Tensor, what: str, length: int | None = None) -> None:
        """Raise ValueError unless `wav` is a real (B, 1, S) tensor (with S == length if given)."""
        if not isinstance(wav, Tensor) or wav.ndim != 3 or wav.shape[1] != 1:
            shape = tuple(wav.shape) if isinstance(wav, Tensor) else type(wav).__name__
            raise ValueError(f"{what}: expected a (B, 1, S) waveform, got {shape}")
        if wav.shape[-1] < 1 or wav.shape[0] < 1:
            raise ValueError(f"{what}: empty waveform {tuple(wav.shape)}")
        if wav.is_complex() or not wav.is_floating_point():
            raise ValueError(f"{what}: expected a float waveform, got {wav.dtype}")
        if length is not None and wav.shape[-1] != length:
            raise ValueError(f"{what}: has {wav.shape[-1]} samples, expected {length}")

    def check_decode_args(self, z: Tensor, length: int, keep: Tensor | None,
                          cutoff_hz: float | None) -> None:
        """Raise ValueError for a latent/length/keep combination `decode` cannot handle."""
        if not isinstance(z, Tensor) or z.ndim != 3 or z.shape[1] != self.channels:
            shape = tuple(z.shape) if isinstance(z, Tensor) else type(z).__name__
            raise ValueError(f"z: expected a (B, {self.channels}, T) latent, got {shape}")
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if z.shape[-1] != self.num_frames(length):
            raise ValueError(f"z has {z.shape[-1]} frames but {length} samples need "
                             f"{self.num_frames(length)}")
        if (keep is None) != (cutoff_hz is None):
            raise ValueError("keep and cutoff_hz must be given together")
        if keep is not None:
            self.check_wav(keep, "keep", length)
            if keep.shape[0] != z.shape[0]:
                raise ValueError(f"keep has batch {keep.shape[0]}, z has {z.shape[0]}")

"""Descript Audio Codec (44.1 kHz) wrapper: the quantized continuous latent z, normalised.

Dimensions: B batch, C latent channels (1024 for the official model), T frames, S samples.

`import dac` (descript-audio-codec, which pulls in audiotools, librosa, ...) happens only when
a `DACCodec` is built or weights are downloaded, never when `engine.codecs` is imported.

Loading: `dac.DAC.load` first tries the file as a `torch.package` (whose unpickling can run
arbitrary code) and then falls back to `torch.load`. We skip the package attempt and read the
plain weights file with `torch.load(weights_only=True)`, then build `dac.DAC(**kwargs)` from
the file's metadata exactly as `DAC.load`'s fallback does; official weights files and files
written by `model.save(path, package=False)` both load this way.

Encode/decode run in windows of `chunk_frames` latent frames with `context_frames` extra
frames on each side (the 44 kHz model's convolution delay is 7904 samples = 15.4 frames), so
memory stays bounded for long inputs; windows start on frame boundaries (multiples of the 512
hop), so the strided convolutions see the same grid as an unchunked pass.
"""

from __future__ import annotations

import inspect
import logging
import math
import pickle
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from engine.codecs import bands
from engine.codecs.base import Codec, CodecError, MissingWeightsError
from engine.config import TRANSITION_HZ

log = logging.getLogger(__name__)

DAC_MODEL_TYPE = "44khz"
DAC_BITRATE = "8kbps"
DAC_TAG = "0.0.1"
DOWNLOAD_COMMAND = "jatsr models download-dac"


def default_dac_weights_path() -> Path:
    """Where `dac.utils.download()` caches the 44 kHz 8 kbps weights (same rule, no network)."""
    name = f"weights_{DAC_MODEL_TYPE}_{DAC_BITRATE}_{DAC_TAG}.pth"
    return Path.home() / ".cache" / "descript" / "dac" / name


def download_dac_weights() -> Path:
    """Download the official 44 kHz DAC weights into dac's cache; return the file's path."""
    import dac.utils  # network access; only the explicit CLI command calls this

    try:
        path = dac.utils.download(model_type=DAC_MODEL_TYPE, model_bitrate=DAC_BITRATE,
                                  tag=DAC_TAG)
    except Exception as exc:
        raise CodecError(f"could not download DAC weights: {exc}") from exc
    log.info("DAC weights at %s", path)
    return Path(path)


def _load_dac_model(path: Path) -> nn.Module:
    """Build a `dac.DAC` from a plain weights file, reading it with weights_only=True."""
    try:
        import dac
    except ImportError as exc:
        raise CodecError(f"descript-audio-codec is not importable: {exc}") from exc
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
        raise CodecError(f"cannot read DAC weights {path}: {exc}") from exc
    if not isinstance(data, dict) or "state_dict" not in data or "metadata" not in data:
        raise CodecError(f"{path} is not a DAC weights file (no state_dict/metadata)")
    params = set(inspect.signature(dac.DAC).parameters)
    kwargs = {k: v for k, v in data["metadata"].get("kwargs", {}).items() if k in params}
    model = dac.DAC(**kwargs)
    missing, unexpected = model.load_state_dict(data["state_dict"], strict=False)
    if missing:
        raise CodecError(f"{path} lacks {len(missing)} DAC weights (e.g. {missing[0]})")
    if unexpected:
        log.warning("%s has %d unused entries (e.g. %s)", path, len(unexpected), unexpected[0])
    return model


class DACCodec(Codec):
    """Descript Audio Codec 44.1 kHz: z (B, C, T) from `model.encode`, decoded by `model.decode`."""

    name = "dac"
    version = "1"
    std_floor = 1e-4
    init_keys = ("chunk_frames", "context_frames")
    latent_keys = ("latent_dim", "n_codebooks", "codebook_size", "codebook_dim", "sample_rate",
                   "hop")

    def __init__(self, weights_path: str | Path | None = None, chunk_frames: int = 512,
                 context_frames: int = 32) -> None:
        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if context_frames < 0:
            raise ValueError(f"context_frames must be >= 0, got {context_frames}")
        path = Path(weights_path) if weights_path is not None else default_dac_weights_path()
        if not path.is_file():
            raise MissingWeightsError(f"DAC weights not found at {path}; run "
                                      f"`{DOWNLOAD_COMMAND}` or pass weights_path")
        model = _load_dac_model(path)
        if int(model.sample_rate) != self.sample_rate or int(model.hop_length) != self.hop:
            raise CodecError(f"{path}: DAC at {model.sample_rate} Hz / hop {model.hop_length}, "
                             f"need {self.sample_rate} Hz / hop {self.hop}")
        super().__init__(channels=int(model.latent_dim))
        self.model = model.eval().requires_grad_(False)
        self.weights_path = path
        self.chunk_frames = chunk_frames
        self.context_frames = context_frames
        log.info("DAC codec loaded from %s (C=%d)", path, self.channels)

    def num_frames(self, num_samples: int) -> int:
        """T = ceil(S / 512): DAC pads the input up to whole hops."""
        return math.ceil(num_samples / self.hop)

    def codec_params(self) -> dict[str, Any]:
        """Model geometry (what the latent means), weights file name and chunking."""
        m = self.model
        return {"weights": self.weights_path.name, "latent_dim": int(m.latent_dim),
                "n_codebooks": int(m.n_codebooks), "codebook_size": int(m.codebook_size),
                "codebook_dim": m.codebook_dim if isinstance(m.codebook_dim, int)
                else list(m.codebook_dim),
                "sample_rate": int(m.sample_rate), "hop": int(m.hop_length),
                "chunk_frames": self.chunk_frames, "context_frames": self.context_frames}

    def _windows(self, num_frames: int) -> list[tuple[int, int, int, int]]:
        """(t0, t1, w0, w1): output frames [t0, t1) computed from input frames [w0, w1)."""
        out = []
        for t0 in range(0, num_frames, self.chunk_frames):
            t1 = min(t0 + self.chunk_frames, num_frames)
            out.append((t0, t1, max(0, t0 - self.context_frames),
                        min(num_frames, t1 + self.context_frames)))
        return out

    @torch.no_grad()
    def encode_raw(self, wav: Tensor) -> Tensor:
        """Unnormalised z (B, C, T) of a (B, 1, S) waveform, windowed."""
        device = next(self.model.parameters()).device
        frames = self.num_frames(wav.shape[-1])
        x = nn.functional.pad(wav.float().to(device), (0, frames * self.hop - wav.shape[-1]))
        parts = []
        for t0, t1, w0, w1 in self._windows(frames):
            z = self.model.encode(x[..., w0 * self.hop:w1 * self.hop])[0]  # (B, C, w1 - w0)
            parts.append(z[..., t0 - w0:t1 - w0])  # (B, C, t1 - t0)
        return torch.cat(parts, dim=-1).to(wav.device)  # (B, C, T)

    @torch.no_grad()
    def decode_raw(self, raw: Tensor) -> Tensor:
        """Unnormalised z (B, C, T) -> waveform (B, 1, T * 512), windowed."""
        device = next(self.model.parameters()).device
        z = raw.float().to(device)
        parts = []
        for t0, t1, w0, w1 in self._windows(z.shape[-1]):
            wav = self.model.decode(z[..., w0:w1])  # (B, 1, (w1 - w0) * hop)
            parts.append(wav[..., (t0 - w0) * self.hop:(t1 - w0) * self.hop])
        return torch.cat(parts, dim=-1).to(raw.device)  # (B, 1, T * hop)

    @torch.no_grad()
    def decode(self, z: Tensor, length: int, keep: Tensor | None = None,
               cutoff_hz: float | None = None, transition_hz: float = TRANSITION_HZ,
               phase_iters: int = 32, generator: torch.Generator | None = None,
               keep_louder: bool = False, fill_holes_db: float | None = None) -> Tensor:
        """Normalised z (B, C, T) -> waveform (B, 1, length); `keep` below `cutoff_hz`."""
        # phase_iters and generator belong to the STFT codec; DAC decoding is deterministic.
        self.check_decode_args(z, length, keep, cutoff_hz)
        wav = self.decode_raw(self.denormalize(z.float()))[..., :length]  # (B, 1, S)
        if keep is not None and cutoff_hz is not None:
            wav = bands.merge_bands(wav, keep.float().to(wav.device), cutoff_hz, transition_hz,
                                    keep_louder, fill_holes_db)
        return wav  # (B, 1, S) float32

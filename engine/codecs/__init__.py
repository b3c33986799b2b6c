"""Codecs between 44.1 kHz waveforms and normalised latents; `build_codec` picks one by name.

Importing this package does not import descript-audio-codec (`dac`) or torchaudio: the DAC
wrapper imports them only when a `DACCodec` is constructed.
"""

from __future__ import annotations

import logging
from typing import Any

from torch import Tensor

from engine.codecs.bands import merge_bands
from engine.codecs.base import Codec, CodecError, MissingWeightsError
from engine.codecs.dac import DACCodec, default_dac_weights_path, download_dac_weights
from engine.codecs.stft import STFTCodec

log = logging.getLogger(__name__)

CODEC_NAMES = ("stft", "dac")
_CLASSES: dict[str, type[Codec]] = {"stft": STFTCodec, "dac": DACCodec}

__all__ = [
    "CODEC_NAMES",
    "Codec",
    "CodecError",
    "DACCodec",
    "MissingWeightsError",
    "STFTCodec",
    "build_codec",
    "default_dac_weights_path",
    "download_dac_weights",
    "merge_bands",
]


def build_codec(name: str, config: dict[str, Any] | None = None,
                stats: dict[str, Tensor] | None = None, **kwargs: Any) -> Codec:
    """Build codec `name` ("stft" or "dac"), matching a saved `config` and loading `stats`.

    `config` is a codec's `config_dict()` (e.g. from a model file): its constructor settings
    are reused unless overridden by `kwargs`, and a mismatch in what the latent means raises
    `CodecError`. DAC takes `weights_path=` (default: dac's cache location).
    """
    if name not in _CLASSES:
        raise ValueError(f"unknown codec {name!r}; choose from {CODEC_NAMES}")
    cls = _CLASSES[name]
    if config is not None and config.get("name", name) != name:
        raise CodecError(f"codec config is for {config.get('name')!r}, not {name!r}")
    saved = (config or {}).get("parameters", {})
    init_args = {k: saved[k] for k in cls.init_keys if k in saved}
    init_args.update(kwargs)
    codec = cls(**init_args)
    if config is not None:
        codec.check_config(config)
    if stats is not None:
        codec.load_stats(stats)
    log.debug("built %s codec (C=%d)", name, codec.channels)
    return codec

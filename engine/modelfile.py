"""Model files: safetensors weights + a JSON config beside them. Nothing is ever unpickled.

A model `NAME` is two files, `NAME.safetensors` (tensors "net.*" and "codec.*", fp16 or fp32)
and `NAME.json`:
    {"format": "jatsr-model", "schema_version": 1, "run": RunConfig, "codec": {name, config},
     "training": {...summary/provenance...}, "weights_dtype": "float16"}

int8 files (schema 2, `weights_dtype` "int8") hold every matrix of the network as int8 rows with
one fp32 scale per row, "qscale.net.<name>" (symmetric: w = q * scale, |q| <= 127), and the
rest (biases, norms, small tables) in fp16: half the bytes of fp16, so a network of twice the
parameters ships in the same file. The loader expands them to fp32; the network runs as usual.

int4 files (schema 3, `weights_dtype` "int4") hold the network's matrices as signed 4-bit
values in groups of 32 along each row, one fp16 scale per group: "net.<name>" is uint8 (R, K/2),
two values per byte (q + 8, the even column in the low nibble), "qscale4.net.<name>" fp16
(R, K/32), w = q * scale, -8 <= q <= 7. The input layers (`INT4_KEEP_INT8`) and matrices whose
row length K is not a multiple of 32 (or of more than two dims) are stored as int8 rows, the rest
as in int8 files.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from engine.atomic import write_atomically
from engine.codecs import Codec, build_codec
from engine.config import RunConfig
from engine.model.dit import DiT

log = logging.getLogger(__name__)

FORMAT = "jatsr-model"
SCHEMA_VERSION = 3  # 3: int4 weights, 2: int8 (files with neither are still written as 1)
INT4 = torch.quint4x2  # the "int4" storage mode's dtype argument (the file holds uint8 nibbles)
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8,
                 "int4": INT4}
QSCALE = "qscale."  # prefix of an int8 matrix's row scales
QSCALE4 = "qscale4."  # prefix of an int4 matrix's group scales
QUANT_MIN_NUMEL = 4096  # smaller tensors (biases, norms, tiny layers) stay fp16
INT4_GROUP = 32  # int4: weights per fp16 scale, along a matrix row
# Input layers stay int8 in int4 files. jatsr-medium-v7, CPU eval, 16 kHz inputs, LSD (fp32:
# 1.069): int4 attn+mlp 1.073, adaLN modulations 1.070, final layer 1.069, but patch_embed /
# t_embed 1.173.
INT4_KEEP_INT8 = ("patch_embed.", "t_embed.")
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "resources" / "models"


class ModelFileError(Exception):
    """A model file is missing, unreadable or does not match this program."""


@dataclass
class JaTModel:
    """A loaded model: the network, its codec (with normalisation) and how it was made."""

    net: DiT
    codec: Codec
    run: RunConfig
    training: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def to(self, device: torch.device | str) -> JaTModel:
        self.net.to(device)
        self.codec.to(device)
        return self

    @property
    def name(self) -> str:
        return self.path.stem if self.path is not None else "unsaved"


def model_paths(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(weights, config) paths for `NAME`, `NAME.safetensors` or `NAME.json`."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_model(path: str | os.PathLike[str], model: JaTModel,
               dtype: torch.dtype = torch.float32) -> Path:
    """Write NAME.safetensors and NAME.json atomically; returns the weights path.

    dtype: torch.float32, torch.float16, torch.int8 (matrices as int8 rows + scales) or `INT4`
    (matrices as 4-bit groups + scales, see the module docstring).
    """
    weights_path, config_path = model_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.net.state_dict().items():
        tensors.update(_stored(k, v.detach().to("cpu", torch.float32), dtype))
    tensors.update({f"codec.{k}": v.detach().to("cpu", torch.float32).contiguous()
                    for k, v in model.codec.stats_tensors().items()})
    meta = {
        "format": FORMAT,
        "schema_version": 3 if dtype == INT4 else 2 if dtype == torch.int8 else 1,
        "run": model.run.to_dict(),
        "codec": {"name": model.codec.name, "config": model.codec.config_dict()},
        "training": model.training,
        "weights_dtype": "int4" if dtype == INT4 else str(dtype).removeprefix("torch."),
    }
    write_atomically(weights_path, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    write_atomically(config_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))
    return weights_path


def _stored(name: str, v: torch.Tensor, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The file tensors of the network's fp32 tensor `name` saved as `dtype`."""
    key = f"net.{name}"
    if dtype not in (torch.int8, INT4):
        return {key: v.to(dtype).contiguous()}
    if v.ndim < 2 or v.numel() < QUANT_MIN_NUMEL:
        return {key: v.to(torch.float16).contiguous()}
    if dtype == INT4 and _int4_eligible(name, v):
        packed, scale = quantize_groups(v)
        return {key: packed, QSCALE4 + key: scale}
    q, scale = quantize_rows(v)
    return {key: q, QSCALE + key: scale}


def _int4_eligible(name: str, w: torch.Tensor) -> bool:
    """Whether matrix `name` goes int4: 2-D, rows of whole groups, not an input layer (2-D, so
    the file's (R, K) is its shape; the network has no matrix of more dims)."""
    return w.ndim == 2 and w.shape[1] % INT4_GROUP == 0 and not name.startswith(INT4_KEEP_INT8)


def quantize_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8 of w's shape, scale fp32 (rows,)) with w ~= q * scale row by row (row = dim 0)."""
    rows = w.reshape(w.shape[0], -1)  # (R, K)
    scale = rows.abs().amax(dim=1) / 127.0  # (R,)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero row stays zero
    q = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return q.reshape(w.shape).contiguous(), scale.contiguous()


def dequantize_rows(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """fp32 weights from int8 rows and their scales (the inverse of `quantize_rows`)."""
    if scale.ndim != 1 or scale.shape[0] != q.shape[0]:
        raise ValueError(f"scale of shape {tuple(scale.shape)} for int8 weights of shape "
                         f"{tuple(q.shape)}")
    return (q.reshape(q.shape[0], -1).float() * scale.float()[:, None]).reshape(q.shape)


def quantize_groups(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(packed uint8 (R, K/2), scale fp16 (R, K/32)): w (R, ...) as signed 4-bit groups.

    K (the flattened row) must be a multiple of `INT4_GROUP`. Each group of 32 along a row
    gets scale = absmax / 7 rounded up to fp16 (before quantising: the file's scale is the one
    used, and no weight clips), q = round(w / scale) in [-8, 7], stored as q + 8 with the even
    column in the low nibble. An all-zero group gets scale 1 and stays zero.
    """
    rows = w.reshape(w.shape[0], -1).float()  # (R, K)
    r, k = rows.shape
    if k % INT4_GROUP:
        raise ValueError(f"int4 rows of {k} weights are not whole groups of {INT4_GROUP}")
    groups = rows.reshape(r, k // INT4_GROUP, INT4_GROUP)  # (R, G, 32)
    exact = groups.abs().amax(dim=2) / 7.0  # (R, G)
    scale = exact.to(torch.float16)
    up = torch.nextafter(scale, torch.full_like(scale, math.inf))
    scale = torch.where(scale.float() < exact, up, scale)  # rounded up: |w| / scale <= 7
    if not torch.isfinite(scale).all():
        raise ValueError("int4 weights too large for fp16 scales")
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # an all-zero group stays zero
    q = torch.round(groups / scale.float()[..., None]).clamp_(-8, 7) + 8
    q = q.reshape(r, k).to(torch.uint8)  # (R, K) in [0, 15]
    return (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous(), scale.contiguous()


def dequantize_groups(packed: torch.Tensor, scale: torch.Tensor,
                      shape: tuple[int, ...] | torch.Size | None = None) -> torch.Tensor:
    """fp32 weights of `shape` (default (R, K)) from packed int4 groups and their scales.

    packed: uint8 (R, K/2), scale: (R, K/32); the inverse of `quantize_groups`.
    """
    if packed.dtype != torch.uint8 or packed.ndim != 2:
        raise ValueError(f"int4 weights must be uint8 (rows, K/2), not {packed.dtype} of shape "
                         f"{tuple(packed.shape)}")
    r, k = packed.shape[0], 2 * packed.shape[1]
    if k % INT4_GROUP or tuple(scale.shape) != (r, k // INT4_GROUP):
        raise ValueError(f"scale of shape {tuple(scale.shape)} for int4 weights of shape "
                         f"{(r, k)}")
    shape = (r, k) if shape is None else tuple(shape)
    if math.prod(shape) != r * k or shape[:1] != (r,):
        raise ValueError(f"int4 weights of shape {(r, k)} cannot be {shape}")
    q = torch.stack([packed & 15, packed >> 4], dim=2).reshape(r, k).float() - 8.0  # (R, K)
    groups = q.reshape(r, k // INT4_GROUP, INT4_GROUP) * scale.float()[..., None]
    return groups.reshape(shape)


def _net_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's fp32 state dict from a file's tensors (int8 rows, int4 groups expanded)."""
    state = {}
    for k, v in tensors.items():
        if not k.startswith("net."):
            continue
        if v.dtype == torch.int8:
            scale = tensors.get(QSCALE + k)
            if scale is None:
                raise ValueError(f"int8 tensor {k} has no {QSCALE}{k}")
            state[k[4:]] = dequantize_rows(v, scale)
        elif v.dtype == torch.uint8:
            scale = tensors.get(QSCALE4 + k)
            if scale is None:
                raise ValueError(f"int4 tensor {k} has no {QSCALE4}{k}")
            state[k[4:]] = dequantize_groups(v, scale)
        else:
            state[k[4:]] = v.float()
    return state


def read_model_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON config of a model file, validated (no weights loaded)."""
    _, config_path = model_paths(path)
    try:
        meta = json.loads(config_path.read_text())
    except FileNotFoundError as e:
        raise ModelFileError(f"{config_path}: model config not found") from e
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{config_path}: not a readable JaT-SR model config ({e})") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{config_path}: not a JaT-SR model config")
    if meta.get("schema_version", 0) > SCHEMA_VERSION:
        raise ModelFileError(f"{config_path}: made by a newer JaT-SR (schema "
                             f"{meta['schema_version']}); please update")
    return meta


def training_recipe(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """How the model file's training made its crops (`DataConfig.recipe()`), None if unrecorded."""
    training = read_model_config(path).get("training")
    recipe = training.get("recipe") if isinstance(training, dict) else None
    return recipe if isinstance(recipe, dict) else None


def load_model(path: str | os.PathLike[str], device: torch.device | str = "cpu",
               codec: str | None = None, **codec_kwargs: Any) -> JaTModel:
    """Load a model file. `codec` names the codec the caller expects; another one is an error.

    codec_kwargs go to the codec (e.g. weights_path for DAC).
    """
    weights_path, _ = model_paths(path)
    meta = read_model_config(path)
    codec_name = meta["codec"]["name"]
    if codec is not None and codec != codec_name:
        raise ModelFileError(f"{weights_path}: trained on the '{codec_name}' codec, "
                             f"cannot be used with '{codec}'")
    try:
        tensors = load_file(str(weights_path))
    except FileNotFoundError as e:
        raise ModelFileError(f"{weights_path}: model weights not found") from e
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{weights_path}: not a readable safetensors file ({e})") from e
    try:
        run = RunConfig.from_dict(meta["run"])
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{weights_path}: invalid architecture in config ({e})") from e
    net = DiT(run.model)
    try:
        net.load_state_dict(_net_state(tensors), strict=True)
    except ValueError as e:
        raise ModelFileError(f"{weights_path}: {e}") from e
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelFileError(f"{weights_path}: weights do not match its config ({first})") from e
    stats = {k[6:]: v for k, v in tensors.items() if k.startswith("codec.")}
    the_codec = build_codec(codec_name, meta["codec"].get("config"), stats, **codec_kwargs)
    net.eval()
    model = JaTModel(net, the_codec, run, meta.get("training", {}), weights_path)
    return model.to(device)


def default_model_path(model_dir: Path = DEFAULT_MODEL_DIR) -> Path:
    """The shipped default model (the first *.safetensors in resources/models/)."""
    found = sorted(model_dir.glob("*.safetensors")) if model_dir.is_dir() else []
    if not found:
        raise ModelFileError(f"no default model is shipped yet in {model_dir}; "
                             "pass --model PATH to a model file")
    return found[0]


def resolve_model_path(spec: str | os.PathLike[str]) -> Path:
    """'default' -> the shipped model; otherwise the given path, which must exist."""
    if str(spec) == "default":
        return default_model_path()
    weights_path, config_path = model_paths(spec)
    if not weights_path.exists() and not config_path.exists():
        raise ModelFileError(f"{spec}: no such model file")
    return weights_path

"""Model files: safetensors weights + a JSON config beside them. Nothing is ever unpickled.

A model `NAME` is two files, `NAME.safetensors` (tensors "net.*" and "codec.*", fp16 or fp32)
and `NAME.json`:
    {"format": "jatsr-model", "schema_version": 1, "run": RunConfig, "codec": {name, config},
     "training": {...summary/provenance...}, "weights_dtype": "float16"}

int8 files (schema 2, `weights_dtype` "int8") hold every matrix of the network as int8 rows with
one fp32 scale per row, "qscale.net.<name>" (symmetric: w = q * scale, |q| <= 127), and the
rest (biases, norms, small tables) in fp16: half the bytes of fp16, so a network of twice the
parameters ships in the same file. The loader expands them to fp32; the network runs as usual.
"""

from __future__ import annotations

import json
import logging
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
SCHEMA_VERSION = 2  # 2: int8 weights (files without them are still written as 1)
WEIGHT_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}
QSCALE = "qscale."  # prefix of an int8 matrix's row scales
QUANT_MIN_NUMEL = 4096  # smaller tensors (biases, norms, tiny layers) stay fp16
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

    dtype: torch.float32, torch.float16 or torch.int8 (matrices as int8 rows + scales).
    """
    weights_path, config_path = model_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model.net.state_dict().items():
        v = v.detach().to("cpu", torch.float32)
        if dtype == torch.int8 and v.ndim >= 2 and v.numel() >= QUANT_MIN_NUMEL:
            tensors[f"net.{k}"], tensors[f"{QSCALE}net.{k}"] = quantize_rows(v)
        else:
            store = torch.float16 if dtype == torch.int8 else dtype
            tensors[f"net.{k}"] = v.to(store).contiguous()
    tensors.update({f"codec.{k}": v.detach().to("cpu", torch.float32).contiguous()
                    for k, v in model.codec.stats_tensors().items()})
    meta = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION if dtype == torch.int8 else 1,
        "run": model.run.to_dict(),
        "codec": {"name": model.codec.name, "config": model.codec.config_dict()},
        "training": model.training,
        "weights_dtype": str(dtype).removeprefix("torch."),
    }
    write_atomically(weights_path, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT}))
    write_atomically(config_path, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2)))
    return weights_path


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


def _net_state(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The network's fp32 state dict from a file's tensors (int8 rows expanded)."""
    state = {}
    for k, v in tensors.items():
        if not k.startswith("net."):
            continue
        if v.dtype == torch.int8:
            scale = tensors.get(QSCALE + k)
            if scale is None:
                raise ValueError(f"int8 tensor {k} has no {QSCALE}{k}")
            state[k[4:]] = dequantize_rows(v, scale)
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

"""Checkpoint -> model file (safetensors + JSON) that the pipeline loads."""

from __future__ import annotations

from pathlib import Path

import torch

from engine.codecs import build_codec
from engine.config import RunConfig
from engine.model.dit import DiT
from engine.modelfile import JaTModel, save_model
from engine.training.checkpoint import load_checkpoint
from engine.training.dataconfig import DataConfig


def export_checkpoint(checkpoint: Path, out: Path, use_ema: bool = True,
                      dtype: torch.dtype = torch.float16) -> Path:
    """Write the (EMA) weights of a checkpoint, or of RUN/ckpt/best.pt|last.pt, as a model."""
    if checkpoint.is_dir():
        ckpt_dir = checkpoint / "ckpt"
        checkpoint = next((p for p in (ckpt_dir / "best.pt", ckpt_dir / "last.pt")
                           if p.exists()), ckpt_dir / "last.pt")
    state = load_checkpoint(checkpoint)
    run = RunConfig.from_dict(state["config"]["run"])
    net = DiT(run.model)
    net.load_state_dict(state["ema"]["model"] if use_ema else state["model"])
    codec = build_codec(state["codec"]["name"], state["codec"]["config"], state["codec"]["stats"])
    training = {"checkpoint": str(checkpoint), "steps": state["step"],
                "ema": use_ema, "train": state["config"].get("train"),
                "data": state.get("data_summary"),
                **({"recipe": DataConfig(**state["config"]["data"]).recipe()}
                   if "data" in state["config"] else {}),
                **{k: state["config"][k] for k in ("world_size", "hardware")
                   if k in state["config"]},
                **{k: v for k, v in state["config"].items() if k.startswith("base_")}}
    return save_model(out, JaTModel(net, codec, run, training), dtype)

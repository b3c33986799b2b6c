"""Validation: restore held-out crops at fixed cutoffs and score LSD beside the sinc baseline."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from engine.audio.cutoff import detect_cutoff
from engine.config import SAMPLE_RATE, SamplerConfig
from engine.metrics import lsd_bands
from engine.modelfile import JaTModel
from engine.sampling import initial_noise, sample
from engine.sbr import sbr_batch
from engine.training.data import ValidationSet


@torch.no_grad()
def validate(model: JaTModel, val_set: ValidationSet, sampler: SamplerConfig,
             device: torch.device, batch: int = 16,
             warm: SamplerConfig | None = None) -> dict[str, float]:
    """val/lsd, val/lsd_high, val/lsd_low (+ _sinc) overall and per cutoff (e.g. val/lsd@8000),
    and the same overall on the crops whose reference has no encoder holes (val/clean/lsd, ...).
    With `warm` (prior_t > 0), the same crops restored again from the SBR estimate at
    `warm.prior_t`, whatever their cutoff: val/warm/lsd, val/warm/lsd@8000, val/warm/clean/lsd.

    Items are grouped by their nominal cutoff; as in the pipeline, the band kept from the input
    and the low/high split of the metric use the cutoff detected on the LR audio itself. A
    reference with holes (Vorbis drops quiet bands frame by frame) scores every bin a restoration
    fills there as an error, so val/clean/lsd is the number that rewards a full band.
    """
    was_training = model.net.training
    model.net.eval()
    scores: dict[str, list[float]] = defaultdict(list)
    by_cutoff: dict[float, list[int]] = defaultdict(list)
    for i, item in enumerate(val_set.items):
        by_cutoff[float(item.cutoff_hz)].append(i)
    for cutoff, idx in sorted(by_cutoff.items()):
        for start in range(0, len(idx), batch):
            items = [val_set.items[i] for i in idx[start : start + batch]]
            lr = torch.from_numpy(np.stack([it.lr for it in items]))[:, None].to(device)
            cond = model.codec.encode(lr)  # (B, C, T)
            noise = initial_noise(tuple(cond.shape), list(range(start, start + len(items))),
                                  device)
            detected = min(detect_cutoff(np.stack([it.lr for it in items]), SAMPLE_RATE), cutoff)
            runs = [("", sampler, None)]
            if warm is not None and warm.prior_t > 0:
                prior = model.codec.encode(sbr_batch(lr, [detected] * len(items)))  # (B, C, T)
                runs.append(("warm/", warm, prior))
            for prefix, cfg, prior in runs:
                z = sample(model.net, cond, cfg, noise, prior)
                # the generated band's starting phase: seeded, so a validation repeats exactly
                phase = torch.Generator().manual_seed(cfg.seed + 7919 * start + int(cutoff))
                out = model.codec.decode(z, length=lr.shape[-1], keep=lr, cutoff_hz=detected,
                                         generator=phase)
                out_np = out[:, 0].float().cpu().numpy()
                for it, restored in zip(items, out_np, strict=True):
                    pairs = ((restored, ""), (it.lr, "_sinc")) if not prefix else ((restored, ""),)
                    for est, suffix in pairs:
                        for name, value in lsd_bands(it.hr, est, detected).items():
                            key = f"val/{prefix}{name}{suffix}"
                            scores[key].append(value)
                            scores[f"{key}@{cutoff:.0f}"].append(value)
                            if it.hole_free:
                                scores[f"val/{prefix}clean/{name}{suffix}"].append(value)
    model.net.train(was_training)
    return {k: float(np.nanmean(v)) for k, v in scores.items()}

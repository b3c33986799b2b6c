"""Evaluation of restoration models against baselines (`jatsr eval`).

`evaluate` simulates band-limited inputs from full-band references and scores every system;
`baselines` holds the sinc and DSP (spectral band replication) baselines; `report` writes the
markdown report and the spectrogram figures.
"""

from __future__ import annotations

from engine.eval.baselines import sbr_upsample, sinc_upsample
from engine.eval.evaluate import CONDITIONS, EvalConfig, FileDone, iter_evaluate, run_eval
from engine.sbr import SBRConfig, sbr_extend

__all__ = ["CONDITIONS", "EvalConfig", "FileDone", "SBRConfig", "iter_evaluate", "run_eval",
           "sbr_extend", "sbr_upsample", "sinc_upsample"]

"""Restore real low-rate recordings (no reference exists) and draw input / model / DSP figures.

The inputs are the "input side only" packages of `TRAINING_SOURCES.md`: Asterisk's 8 kHz
telephone prompts (WAV and raw GSM 6.10) and Fish Fillets' 22.05 kHz dialogues (Ogg Vorbis),
never used for training. Without a reference there is no LSD: the report lists what the
pipeline detected and how long it took, and the figures show what it generated.

    python bench/real_inputs.py FILE... --out docs/eval/real-inputs
"""

from __future__ import annotations

import argparse
import re
import time
from datetime import datetime
from pathlib import Path

from engine.audio.io import load
from engine.config import PipelineConfig, SamplerConfig
from engine.eval.baselines import sbr_upsample, sinc_upsample
from engine.eval.evaluate import hardware_summary
from engine.eval.report import save_spectrogram_figure
from engine.modelfile import load_model, resolve_model_path
from engine.pipeline import Restorer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/eval/real-inputs"))
    parser.add_argument("--figures", type=int, default=4, help="draw the first N files")
    args = parser.parse_args()
    model = load_model(resolve_model_path("default"))
    sampler, pipeline = SamplerConfig(), PipelineConfig()
    restorer = Restorer(model, sampler, pipeline, "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    rows, figures = [], []
    for i, path in enumerate(args.files):
        x, rate = load(path)
        start = time.perf_counter()
        last = None
        for progress in restorer.iter_array(x, rate):
            last = progress
        elapsed = time.perf_counter() - start
        assert last is not None and last.result is not None and last.result.audio is not None
        result = last.result
        duration = x.shape[1] / rate
        rows.append(f"| `{path.name}` | {rate} | {x.shape[0]} | {duration:.2f} | "
                    f"{result.cutoff_hz:.0f} | {'yes' if result.generated else 'no'} | "
                    f"{'yes' if result.warm_start else 'no'} | "
                    f"{elapsed:.2f} | {elapsed / duration:.2f} |")
        if i < args.figures:
            dsp, _ = sbr_upsample(x, rate)
            panels = [(f"input ({rate} Hz, sinc to 44.1 kHz)", sinc_upsample(x, rate)),
                      ("model (default sampling)", result.audio),
                      ("DSP (SBR) baseline", dsp)]
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem) + ".png"
            save_spectrogram_figure(args.out / name, panels, result.cutoff_hz,
                                    f"{path.name}: detected cutoff {result.cutoff_hz:.0f} Hz")
            figures.append(f"![{path.name}]({name})")
    lines = ["# Real low-rate recordings (no reference)", "",
             f"- **model**: {model.name}, default sampling ({sampler.steps} {sampler.solver} "
             f"steps, {sampler.describe_start()}, {pipeline.phase_iters} Griffin-Lim iterations, "
             f"{pipeline.transition_hz:g} Hz crossfade)",
             f"- **date**: {datetime.now():%Y-%m-%d %H:%M}",
             f"- **hardware**: {hardware_summary('cpu')}",
             "- **command**: `python bench/real_inputs.py " + " ".join(p.name for p in args.files)
             + "`", "",
             "| file | rate | ch | s | detected cutoff Hz | generated | warm start | wall s "
             "| RTF |",
             "|---|---|---|---|---|---|---|---|---|", *rows, "", *figures, ""]
    (args.out / "report.md").write_text("\n".join(lines))
    print(f"wrote {args.out / 'report.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`jatsr` headless commands: upsample, train, export, eval, info, models.

The only engine module that prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import HOLE_DEPTH_DB, OUTPUT_RATES, SAMPLE_RATE, PipelineConfig, SamplerConfig

if TYPE_CHECKING:
    from engine.pipeline import Restorer, UpsampleResult

log = logging.getLogger("jatsr")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _cutoff_arg(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"'{text}' is not 'auto' or a frequency in Hz") from e
    if not 0 < value < 22050:
        raise argparse.ArgumentTypeError("cutoff must be between 0 and 22050 Hz")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _add_restore_arguments(p: argparse.ArgumentParser) -> None:
    """Sampler, device and kept-band options shared by `upsample` and `eval`."""
    p.add_argument("--steps", type=_positive_int, default=SamplerConfig.steps,
                   help=f"sampler steps (default {SamplerConfig.steps}; each costs one network "
                        "call, two with heun)")
    p.add_argument("--solver", choices=["euler", "heun"], default="euler",
                   help="ODE solver (default euler)")
    p.add_argument("--prior-t", type=float, default=SamplerConfig.prior_t,
                   help="warm start: begin at this t from the DSP (SBR) estimate; 0 = always "
                        f"from noise (default {SamplerConfig.prior_t:g})")
    p.add_argument("--prior-flatness-below", type=float,
                   default=SamplerConfig.prior_flatness_below_hz, metavar="HZ",
                   help="inputs cut off at or below this start warm only when noise-like "
                        f"(default {SamplerConfig.prior_flatness_below_hz:g}); above it, all do")
    p.add_argument("--prior-min-flatness", type=float,
                   default=SamplerConfig.prior_min_flatness, metavar="F",
                   help="... noise-like: the kept band's top octave has at least this spectral "
                        f"flatness (0: every input; default {SamplerConfig.prior_min_flatness:g})")
    p.add_argument("--warm-one-shots", action="store_true",
                   help="warm-start one-shots too (a struck or plucked sound dying away, e.g. a "
                        "drum sample; by default they start from noise)")
    p.add_argument("--guidance", type=float, default=SamplerConfig.guidance,
                   help="classifier-free guidance weight (1: off; > 1 needs a model trained "
                        "with --cond-drop; runs the network twice per step)")
    p.add_argument("--phase-iters", type=int, default=PipelineConfig.phase_iters, metavar="N",
                   help="Griffin-Lim iterations for the generated band's phase (STFT codec)")
    p.add_argument("--transition-hz", type=float, default=PipelineConfig.transition_hz,
                   metavar="HZ", help="width of the crossfade from the kept band to the "
                                      "generated one, above the cutoff (0: a hard switch)")
    p.add_argument("--device", default="auto", help="auto (default: CUDA when present), cuda "
                                                     "or cpu")
    p.add_argument("--seed", type=int, default=0,
                   help="noise seed (default 0): the same seed gives the same output")
    p.add_argument("--replace-above-cutoff", action="store_true",
                   help="generate everything above the cutoff, even where the input is louder "
                        "there (by default such content, left by lossy encoders, is kept)")
    p.add_argument("--fill-holes", action="store_true",
                   help="fill the holes a lossy encoder (MP3, Vorbis) left in the band it kept "
                        "with generated content (by default the band below the cutoff is the "
                        "input's, untouched; for clean inputs leave this off)")
    p.add_argument("--hole-depth", type=_positive_float, default=HOLE_DEPTH_DB, metavar="DB",
                   help="with --fill-holes: a kept bin this far under the model's estimate is a "
                        f"hole (default {HOLE_DEPTH_DB:g})")


def _restorer(args: argparse.Namespace, model: Any, device: Any, **pipeline: Any) -> Restorer:
    """The Restorer that `_add_restore_arguments`' options (and `pipeline` fields) describe."""
    from engine.pipeline import Restorer

    sampler = SamplerConfig(steps=args.steps, solver=args.solver,
                            guidance=args.guidance, prior_t=args.prior_t,
                            prior_flatness_below_hz=args.prior_flatness_below,
                            prior_min_flatness=args.prior_min_flatness,
                            prior_skip_one_shots=not args.warm_one_shots, seed=args.seed)
    return Restorer(model, sampler, PipelineConfig(
        keep_louder_input=not args.replace_above_cutoff, phase_iters=args.phase_iters,
        fill_holes_db=args.hole_depth if args.fill_holes else None,
        transition_hz=args.transition_hz, **pipeline), device)


def build_parser() -> argparse.ArgumentParser:
    from engine.model.dit import PRESETS

    parser = argparse.ArgumentParser(
        prog="jatsr", description="JaT-SR: restore the missing high band of audio to 44.1 kHz.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command")

    up = sub.add_parser("upsample", help="restore audio files to full-band 44.1 kHz")
    up.add_argument("inputs", nargs="+", type=Path, metavar="IN",
                    help="input audio files or folders (walked recursively; with -o the "
                         "output folder mirrors their tree)")
    up.add_argument("-o", "--out-dir", type=Path, help="output folder (default: beside input)")
    up.add_argument("--model", default="default", help="'default' or a model file path")
    _add_restore_arguments(up)
    up.add_argument("--cutoff", type=_cutoff_arg, default=None, metavar="auto|HZ",
                    help="input band limit (default: detected from the spectrum)")
    up.add_argument("--format", choices=["wav", "flac"], default="wav",
                    help="output file format (default wav)")
    up.add_argument("--subtype", choices=["PCM_16", "PCM_24", "FLOAT"], default="PCM_24",
                    help="sample format (default PCM_24; FLOAT is WAV only and never clips; "
                         "PCM_16 is TPDF-dithered)")
    up.add_argument("--no-dither", action="store_true",
                    help="PCM_16 without dither (plain rounding)")
    up.add_argument("--rate", type=int, choices=OUTPUT_RATES, default=SAMPLE_RATE,
                    help="output sample rate (default 44100, the model's; 48000 for video "
                         "work: the restoration resampled, nothing above 22.05 kHz)")
    up.add_argument("--batch", type=_positive_int, default=PipelineConfig.batch_size,
                    help=f"chunks per model call (default {PipelineConfig.batch_size})")
    up.add_argument("--overwrite", action="store_true", help="replace existing outputs")

    info = sub.add_parser("info", help="architecture and parameter count of a preset or model")
    group = info.add_mutually_exclusive_group()
    group.add_argument("--preset", choices=sorted(PRESETS), default=None)
    group.add_argument("--model", default=None, help="a model file")

    from engine.training.cli import add_export_arguments, add_train_arguments

    add_train_arguments(sub.add_parser("train", help="train or fine-tune on folders of audio"))
    add_export_arguments(sub.add_parser("export", help="checkpoint -> model file"))

    ev = sub.add_parser("eval", help="score a model and the baselines on full-band audio")
    ev.add_argument("folders", nargs="+", type=Path, metavar="DIR",
                    help="folders of full-band reference audio (<category>/<source>/...)")
    ev.add_argument("--model", default="default",
                    help="'default', a model file path, or 'none' (baselines only)")
    ev.add_argument("--baselines", nargs="*", choices=["sinc", "dsp"], default=["sinc", "dsp"],
                    help="scored beside the model (default both; sinc: resampled only, dsp: "
                         "spectral band replication)")
    ev.add_argument("--conditions", nargs="+",
                    choices=["8k", "16k", "22.05k", "lp16k", "phone-ulaw", "phone-gsm",
                             "mp3-128k", "mp3-64k"],
                    default=["8k", "16k", "22.05k", "lp16k"],
                    help="simulated inputs (default the first four; phone-*: 8 kHz in the "
                         "300-3400 Hz voice band through G.711 mu-law or GSM 06.10; mp3-*: a "
                         "real constant-bitrate MP3 encode at 44.1 kHz)")
    ev.add_argument("--out", type=Path, default=None, help="default: runs/eval-<date>")
    _add_restore_arguments(ev)
    ev.add_argument("--max-files", type=_positive_int, default=None,
                    help="at most N files, spread over categories (deterministic)")
    ev.add_argument("--seconds", type=float, default=None,
                    help="score the centred S-second excerpt of each file")
    ev.add_argument("--examples", type=int, default=4,
                    help="spectrogram figures to draw (default 4; 0: none)")
    ev.add_argument("--categories-from-path", action=argparse.BooleanOptionalAction,
                    default=True, help="category = first folder under DIR (else 'all')")

    models = sub.add_parser("models", help="list models; download DAC weights on request")
    models_sub = models.add_subparsers(dest="models_command")
    models_sub.add_parser("list", help="list the shipped models")
    models_sub.add_parser("download-dac", help="download the DAC 44 kHz weights (internet)")
    return parser


def _report(r: UpsampleResult) -> None:
    note = "" if r.generated else " (already full-band: resampled only)"
    if r.warm_start:
        note += ", warm start from the DSP estimate"
    if r.clipped_samples:
        n = r.clipped_samples
        note += (f"; {n} sample{'s' if n > 1 else ''} beyond full scale clipped "
                 "(--subtype FLOAT keeps them)")
    print(f"{r.input_path} -> {r.output_path}  cutoff {r.cutoff_hz:.0f} Hz, {r.duration_s:.1f} s "
          f"in {r.elapsed_s:.1f} s (RTF {r.elapsed_s / max(r.duration_s, 1e-9):.2f}){note}")


def _cmd_upsample(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.audio.files import expand_paths
    from engine.audio.io import WRITE_SUBTYPES, AudioInputError, plan_outputs
    from engine.modelfile import load_model, resolve_model_path
    from engine.pipeline import resolve_device

    if args.subtype not in WRITE_SUBTYPES[args.format]:
        print(f"error: --subtype {args.subtype} cannot be written as {args.format} (it takes "
              f"{', '.join(WRITE_SUBTYPES[args.format])})", file=sys.stderr)
        return EXIT_ERROR
    try:  # before the model loads: a clash is refused with nothing written
        plan = plan_outputs(expand_paths(args.inputs, skip=args.out_dir), args.out_dir,
                            args.format)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    if not plan:
        print("error: no audio files in the folders given", file=sys.stderr)
        return EXIT_ERROR
    if args.out_dir is not None and args.out_dir.exists() and not args.out_dir.is_dir():
        print(f"error: {args.out_dir}: not a folder (-o takes the folder to write into)",
              file=sys.stderr)
        return EXIT_ERROR
    device = resolve_device(args.device)
    model = load_model(resolve_model_path(args.model), device=device)
    restorer = _restorer(args, model, device, batch_size=args.batch)
    inputs = [src for src, _ in plan]
    failures = 0
    for i, (in_path, out_path) in enumerate(plan, 1):
        bar = None  # made on the first progress message, so a bad file prints one line only
        desc = in_path.name if len(plan) == 1 else f"[{i}/{len(plan)}] {in_path.name}"
        try:
            if args.out_dir is not None:  # the input tree's folders, made as they fill
                out_path.parent.mkdir(parents=True, exist_ok=True)
            for p in restorer.iter_file(in_path, out_path, args.format, args.subtype,
                                        args.overwrite, args.cutoff, protect=inputs,
                                        out_rate=args.rate, dither=not args.no_dither):
                if bar is None:
                    bar = tqdm(total=1000, desc=desc, file=sys.stderr, bar_format=(
                        "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"))
                bar.n = int(1000 * p.fraction)
                bar.set_postfix_str(f"chunk {p.chunks_done}/{p.chunks_total}", refresh=True)
                if p.result is not None:
                    bar.close()
                    _report(p.result)
        except (AudioInputError, ValueError, OSError) as e:
            if bar is not None:
                bar.leave = False
                bar.close()
            where = "" if isinstance(e, AudioInputError) else f"{in_path}: "  # has its path
            print(f"error: {where}{e}", file=sys.stderr)
            failures += 1
        finally:
            if bar is not None:
                bar.close()
    if len(plan) > 1:
        print(f"{len(plan) - failures} of {len(plan)} files restored"
              + (f", {failures} failed (above)" if failures else ""), file=sys.stderr)
    return EXIT_ERROR if failures else EXIT_OK


def _eval_command_line(args: argparse.Namespace) -> str:
    """The evaluation's settings as a `jatsr eval` command line, for the report."""
    import shlex

    words = [*map(str, args.folders), "--model", args.model, "--baselines", *args.baselines,
             "--conditions", *args.conditions, "--steps", str(args.steps), "--solver",
             args.solver, "--seed", str(args.seed), "--examples", str(args.examples),
             "--prior-t", str(args.prior_t),
             "--prior-flatness-below", f"{args.prior_flatness_below:g}",
             "--prior-min-flatness", f"{args.prior_min_flatness:g}"]
    if args.warm_one_shots:
        words.append("--warm-one-shots")
    if args.seconds:
        words += ["--seconds", f"{args.seconds:g}"]
    if args.max_files:
        words += ["--max-files", str(args.max_files)]
    if not args.categories_from_path:
        words.append("--no-categories-from-path")
    if args.replace_above_cutoff:
        words.append("--replace-above-cutoff")
    if args.fill_holes:
        words += ["--fill-holes", "--hole-depth", f"{args.hole_depth:g}"]
    if args.guidance != SamplerConfig.guidance:
        words += ["--guidance", f"{args.guidance:g}"]
    if args.phase_iters != PipelineConfig.phase_iters:
        words += ["--phase-iters", str(args.phase_iters)]
    if args.transition_hz != PipelineConfig.transition_hz:
        words += ["--transition-hz", f"{args.transition_hz:g}"]
    return "jatsr eval " + shlex.join(words)


def _cmd_eval(args: argparse.Namespace) -> int:
    import datetime

    from engine.eval.evaluate import EvalConfig, hardware_summary, run_eval
    from engine.pipeline import resolve_device

    systems = tuple(args.baselines) + (() if args.model == "none" else ("model",))
    if not systems:
        print("error: nothing to evaluate (--model none and no --baselines)", file=sys.stderr)
        return EXIT_USAGE
    cfg = EvalConfig(tuple(args.folders), systems, tuple(args.conditions), args.seconds,
                     args.max_files, args.examples, args.categories_from_path)
    now = datetime.datetime.now()
    out_dir = args.out or Path("runs") / f"eval-{now:%Y-%m-%d-%H%M}"
    device = resolve_device(args.device)
    meta = {"model": "none (baselines only)", "date": f"{now:%Y-%m-%d %H:%M}",
            "hardware": f"{hardware_summary(str(device))}; device {device}",
            "excerpts": f"centred {args.seconds:g} s" if args.seconds else "whole files",
            "command": f"`{_eval_command_line(args)}`"}
    restorer = None
    if "model" in systems:
        from engine.modelfile import load_model, resolve_model_path

        model = load_model(resolve_model_path(args.model), device=device)
        restorer = _restorer(args, model, device)
        params = sum(p.numel() for p in model.net.parameters())
        path = Path(model.path or args.model).resolve()
        shown = path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path
        meta["model"] = (f"{model.name} (`{shown}`, {params / 1e6:.2f}M parameters, "
                         f"codec {model.codec.name})")
        meta["sampling"] = (f"{args.steps} {args.solver} steps, seed {args.seed}, "
                            + restorer.sampler.describe_start())
    for done in run_eval(cfg, out_dir, restorer, meta):
        head = f"[{done.index + 1}/{done.total}] {done.file.rel}"
        if done.skipped is not None:
            print(f"{head}: skipped ({done.skipped})")
            continue
        per_system: dict[str, list[float]] = {}
        for row in done.rows:
            value = row["lsd"] if row["lsd"] is not None else float("nan")
            per_system.setdefault(row["system"], []).append(value)
        scores = "  ".join(f"{s} {sum(v) / len(v):.2f}" for s, v in per_system.items())
        print(f"{head}: mean LSD {scores}", flush=True)
    print(f"report: {out_dir / 'report.md'}")
    return EXIT_OK


def _cmd_info(args: argparse.Namespace) -> int:
    from engine.model.dit import PRESETS, DiT, param_counts
    from engine.modelfile import load_model, resolve_model_path

    if args.model is not None:
        model = load_model(resolve_model_path(args.model))
        net, run, title = model.net, model.run, f"model {model.path}"
    else:
        preset = args.preset or "v2"
        run = PRESETS[preset]
        net, title = DiT(run.model), f"preset {preset}"
    m = run.model
    print(f"{title}: width {m.width}, depth {m.depth}, heads {m.heads}Q/{m.kv_heads}KV "
          f"(head dim {m.head_dim}), positions {m.positions}, patch {m.patch_len}, "
          f"bottleneck {m.bottleneck}, t-sampling {run.flow.t_sampling}, loss {run.flow.loss}")
    for name, count in param_counts(net).items():
        print(f"  {name:<16}{count:>14,}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from engine.modelfile import DEFAULT_MODEL_DIR, read_model_config

    if args.models_command == "download-dac":
        from engine.codecs.dac import download_dac_weights

        print(f"DAC weights saved to {download_dac_weights()}")
        return EXIT_OK
    found = sorted(DEFAULT_MODEL_DIR.glob("*.safetensors")) if DEFAULT_MODEL_DIR.is_dir() else []
    if not found:
        print(f"no models shipped in {DEFAULT_MODEL_DIR}")
    for path in found:
        meta = read_model_config(path)
        print(f"{path.stem}: codec {meta['codec']['name']}, "
              f"width {meta['run']['model']['width']}, depth {meta['run']['model']['depth']}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `jatsr` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:  # `jatsr` alone opens the app (app/cli.py); here: headless help
        parser.print_help()
        return EXIT_OK
    from engine.allocator import keep_freed_memory

    keep_freed_memory()
    from engine.codecs import CodecError
    from engine.modelfile import ModelFileError
    from engine.training.cli import run_export, run_train

    handlers = {"upsample": _cmd_upsample, "eval": _cmd_eval, "info": _cmd_info,
                "models": _cmd_models, "train": run_train, "export": run_export}
    try:
        return handlers[args.command](args)
    except (ModelFileError, CodecError, RuntimeError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cancelled", file=sys.stderr)
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())

"""`jatsr eval` output: the markdown report (tables of mean LSD, reductions, timing) and the
spectrogram figures of a few examples (matplotlib's Agg canvas: no GUI backend, no pyplot).
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import SAMPLE_RATE
from engine.eval.evaluate import CONDITIONS, FULL_BAND_MIN_HZ, SYSTEMS, Example
from engine.metrics import HOLE_FREE_MAX, lsd_bands

log = logging.getLogger(__name__)

SYSTEM_LABELS = {"sinc": "sinc", "dsp": "DSP (SBR)", "model": "model"}
TARGETS = {"8k": 70.0, "16k": 70.0, "22.05k": 65.0, "lp16k": 60.0}  # % below sinc (issue 5)
KEPT_BAND_MAX = 0.05  # LSD below the cutoff that counts as "untouched"
PLOT_N_FFT, PLOT_HOP = 2048, 512  # the metric's STFT
PLOT_RANGE_DB = 100.0  # colour scale: the reference's peak down to this much below it
PLOT_MAX_FRAMES = 480  # frames are max-pooled down to at most this many columns


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _reduction(value: float | None, base: float | None) -> str:
    if value is None or base is None or base <= 0:
        return "—"
    return f"{100.0 * (1.0 - value / base):.0f} %"


def _select(rows: Sequence[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(match[k] is None or r[k] == match[k] for k in match)]


def _stat(rows: Sequence[dict[str, Any]], key: str, **match: Any) -> float | None:
    return _mean(r[key] for r in _select(rows, **match))


def _rtf(rows: Sequence[dict[str, Any]], **match: Any) -> float | None:
    """Real-time factor of a set of inputs: total wall time / total audio duration."""
    chosen = _select(rows, **match)
    duration_s = sum(r["duration_s"] for r in chosen)
    return sum(r["elapsed_s"] for r in chosen) / duration_s if duration_s > 0 else None


def _present(rows: Sequence[dict[str, Any]], key: str, order: Sequence[str]) -> list[str]:
    found = {r[key] for r in rows}
    return [x for x in order if x in found] + sorted(found - set(order))


def _table(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return [*lines, ""]


def condition_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Mean LSD / above / below per condition x system, with reductions vs sinc and timing."""
    body = []
    for cond in [*_present(rows, "condition", list(CONDITIONS)), None]:
        for system in _present(rows, "system", SYSTEMS):
            def stat(key: str, sys_name: str = system, c: str | None = cond) -> float | None:
                return _stat(rows, key, condition=c, system=sys_name)
            body.append([
                cond or "**all**", SYSTEM_LABELS.get(system, system), _fmt(stat("lsd")),
                _fmt(stat("lsd_high")), _fmt(stat("lsd_low")), _fmt(stat("lsd_kept")),
                *(("—", "—") if system == "sinc" else (
                    _reduction(stat("lsd"), stat("lsd", "sinc")),
                    _reduction(stat("lsd_high"), stat("lsd_high", "sinc")))),
                _fmt(stat("elapsed_s"), 2),
                _fmt(_rtf(rows, condition=cond, system=system), 3)])
    return _table(["input", "system", "LSD", "LSD above cutoff", "LSD below cutoff",
                   "kept band vs input", "LSD vs sinc", "above vs sinc", "wall s / input",
                   "RTF (Σ wall / Σ audio)"], body)


def _group_table(title: str, groups: Sequence[tuple[str, Sequence[dict[str, Any]]]],
                 systems: Sequence[str]) -> list[str]:
    """Mean LSD per group x condition (and all) for every system, with reductions vs sinc."""
    others = [s for s in systems if s != "sinc"]
    body = []
    for label, group in groups:
        n_files = len({r["file"] for r in group})
        for cond in [*_present(group, "condition", list(CONDITIONS)), None]:
            means = {s: _stat(group, "lsd", condition=cond, system=s) for s in systems}
            body.append([label, str(n_files), cond or "all", *(_fmt(means[s]) for s in systems),
                         *(_reduction(means[s], means.get("sinc")) for s in others)])
    header = [title, "files", "input", *(f"LSD {SYSTEM_LABELS[s]}" for s in systems),
              *(f"{SYSTEM_LABELS[s]} vs sinc" for s in others)]
    return _table(header, body)


def category_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Mean LSD per category x condition for every system, with reductions vs sinc."""
    groups = [(c, _select(rows, category=c)) for c in _present(rows, "category", [])]
    return _group_table("category", groups, _present(rows, "system", SYSTEMS))


def target_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The default-model issue's targets per condition that has one (`TARGETS`), when model
    and both baselines ran."""
    if not {"model", "sinc", "dsp"} <= {r["system"] for r in rows}:
        return []
    body = []
    present = {r["condition"] for r in rows}
    for cond in [c for c in TARGETS if c in present]:
        model, sinc, dsp = (_stat(rows, "lsd", condition=cond, system=s)
                            for s in ("model", "sinc", "dsp"))
        low = _stat(rows, "lsd_low", condition=cond, system="model")
        kept = _stat(rows, "lsd_kept", condition=cond, system="model")
        reduction = None if model is None or not sinc else 100.0 * (1.0 - model / sinc)
        target = TARGETS[cond]
        body.append([
            cond, _fmt(reduction, 1) + " %", f"≥ {target:.0f} %",
            _yes(reduction is not None and reduction >= target),
            f"{_fmt(model)} vs {_fmt(dsp)}",
            _yes(model is not None and dsp is not None and model < dsp),
            _fmt(low), _yes(low is not None and low <= KEPT_BAND_MAX), _fmt(kept)])
    if not body:
        return []
    return _table(["input", "model vs sinc", "target", "met", "LSD model vs DSP",
                   "below DSP", "LSD below cutoff", f"≤ {KEPT_BAND_MAX}",
                   "kept band vs input"], body)


def _by_holes(rows: Sequence[dict[str, Any]], clean: bool) -> list[dict[str, Any]]:
    """Rows whose reference is hole-free (clean) or has encoder holes; unmeasured ones left out."""
    return [r for r in rows
            if (v := r.get("ref_holes")) is not None and (v <= HOLE_FREE_MAX) == clean]


def holes_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Mean LSD per condition on references with and without encoder holes (`ref_holes`)."""
    if all(r.get("ref_holes") is None for r in rows):  # None: band too narrow to count
        return []
    groups = [(label, _by_holes(rows, clean))
              for label, clean in (("hole-free", True), ("with holes", False))]
    return _group_table("references", [g for g in groups if g[1]],
                        _present(rows, "system", SYSTEMS))


def _holes_summary(rows: Sequence[dict[str, Any]]) -> str:
    shares = sorted(v for v in {r["file"]: r.get("ref_holes") for r in rows}.values()
                    if v is not None)
    holey = sum(v > HOLE_FREE_MAX for v in shares)
    return (f"Share of STFT bins (the metric's) from 10 kHz up to 20 kHz or the reference's own "
            f"band limit that sit below the metric's clamp in the reference's active frames "
            f"(`engine.metrics.hole_share`): bins a lossy encoder zeroed (a recording's noise "
            f"floor never gets there), which any system that fills the band is scored against. "
            f"{holey} of {len(shares)} references have more than {100 * HOLE_FREE_MAX:g} % "
            f"(median {100 * np.median(shares):.1f} %, most {100 * shares[-1]:.1f} %). Holes "
            f"come with how a reference was encoded, so the split below can coincide with "
            f"sources or categories (the per-input table gives each file's share).")


def _percent(share: float | None) -> str:
    return "—" if share is None else f"{100 * share:.0f} %"


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def per_input_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """One line per file x condition: cutoff, LSD (above / below) and RTF of every system."""
    systems = _present(rows, "system", SYSTEMS)
    timed = [s for s in systems if s != "sinc"]
    keys = sorted({(r["category"], r["file"], r["condition"]) for r in rows},
                  key=lambda k: (k[0], k[1], list(CONDITIONS).index(k[2])
                                 if k[2] in CONDITIONS else 99))
    body = []
    for category, file, cond in keys:
        found = {r["system"]: r for r in _select(rows, file=file, condition=cond)}
        first = next(iter(found.values()))
        cells = [f"{_fmt(r['lsd'], 2)} ({_fmt(r['lsd_high'], 2)} / {_fmt(r['lsd_low'], 3)})"
                 if (r := found.get(s)) else "—" for s in systems]
        rtfs = [_fmt(found[s]["rtf"], 3) if s in found else "—" for s in timed]
        body.append([f"`{file}`", category, cond, f"{first['cutoff_hz']:.0f}",
                     f"{first['ref_cutoff_hz']:.0f}", _percent(first.get("ref_holes")),
                     f"{first['duration_s']:.1f} × {first['channels']}", *cells, *rtfs])
    header = ["file", "category", "input", "cutoff Hz", "reference band Hz",
              "reference holes", "s × ch",
              *(f"{SYSTEM_LABELS[s]}: LSD (above / below)" for s in systems),
              *(f"RTF {SYSTEM_LABELS[s]}" for s in timed)]
    return _table(header, body)


def warm_summary(rows: Sequence[dict[str, Any]]) -> str:
    """How many of the model's inputs started from the DSP estimate, per condition ("" when
    the rows do not say)."""
    model = [r for r in rows if r["system"] == "model" and r.get("warm_start") is not None]
    if not model:
        return ""
    parts = []
    for cond in _present(model, "condition", list(CONDITIONS)):
        picked = _select(model, condition=cond)
        parts.append(f"{cond} {sum(r['warm_start'] for r in picked)} of {len(picked)}")
    return ("the model started from the DSP estimate on " + ", ".join(parts)
            + " inputs; from noise on the rest")


def _header(meta: dict[str, Any], rows: Sequence[dict[str, Any]],
            skipped: Sequence[tuple[str, str]]) -> list[str]:
    files = {r["file"]: r for r in rows}
    per_category: dict[str, list[float]] = {}
    for r in files.values():
        per_category.setdefault(r["category"], []).append(r["duration_s"])
    data = ", ".join(f"{c} {len(d)} files / {sum(d) / 60:.1f} min"
                     for c, d in sorted(per_category.items()))
    lines = ["# JaT-SR evaluation", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta.items()]
    narrow = sorted(f for f, r in files.items() if r["ref_cutoff_hz"] < FULL_BAND_MIN_HZ)
    lines += [f"- **scored**: {len(files)} files ({data}); {len(skipped)} skipped"]
    warm = warm_summary(rows)
    if warm:
        lines += [f"- **warm start**: {warm}"]
    if narrow:
        lines += [f"- **not full-band**: {len(narrow)} of {len(files)} references end below "
                  f"{FULL_BAND_MIN_HZ / 1000:g} kHz (their own detected band, see the per-input "
                  "table): LSD above the cutoff there scores against missing content"]
    lines.append("")
    lines += [
        "LSD as `engine/metrics.py` (log10 power, n_fft 2048, hop 512; lower is better), each "
        "system's 44.1 kHz output against the reference. *Above* / *below*: bins above / below "
        "the cutoff detected on the input (the pipeline's `detect_cutoff`; the nominal band "
        "limit when it finds no edge below 22 kHz). *vs sinc*: LSD reduction relative to the "
        "sinc baseline (higher is better). *Kept band vs input*: LSD below the cutoff against "
        "the input itself (sinc-resampled), 0 when a system leaves the input's band untouched; "
        "LSD below the cutoff against the reference also holds the roll-off the input got when "
        "it was resampled down, just below the detected cutoff, which no system undoes (the "
        "upsampler's own roll-off is undone). Means over files, each file "
        "weighted once. Wall time per input includes resampling and cutoff detection (sinc: "
        "only the resampling; the model: the whole `Restorer.iter_array`, after one warm-up "
        "run). RTF: total wall time / total audio duration (per input in the last table); "
        "short files pay fixed per-call costs.", ""]
    return lines


def write_report(path: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any],
                 figures: Sequence[tuple[str, str]], skipped: Sequence[tuple[str, str]]) -> Path:
    """Write the markdown report of an evaluation to `path`."""
    lines = _header(meta, rows, skipped)
    if rows:
        lines += ["## Per input condition", "", *condition_table(rows)]
        targets = target_table(rows)
        if targets:
            lines += ["## Targets of the default-model issue", "",
                      "LSD reduction vs sinc per input, the model below the DSP baseline, the "
                      "kept band untouched (mean LSD below the cutoff).", "", *targets]
        lines += ["## Per category", "", *category_table(rows)]
        holes = holes_table(rows)
        if holes:
            lines += ["## Encoder holes in the references", "", _holes_summary(rows), "",
                      *holes]
            clean, holey = _by_holes(rows, True), _by_holes(rows, False)
            clean_targets = target_table(clean) if holey else []
            if clean_targets:
                files = len({r["file"] for r in clean})
                lines += ["", f"The targets on the {files} hole-free references alone (the "
                          "genuinely full-band ones; a system that fills a band the encoder "
                          "emptied is scored down on the others):", "", *clean_targets]
    if figures:
        lines += ["## Examples", "",
                  "Input (sinc-resampled to 44.1 kHz), the restorations and the reference, "
                  "one shared colour scale (dB); dashed line: detected cutoff.", ""]
        for png, caption in figures:
            lines += [f"![{caption}]({png})", "", f"*{caption}*", ""]
    if rows:
        n = len({(r["file"], r["condition"]) for r in rows})
        lines += ["## Per input", "", f"<details><summary>{n} inputs (file × condition)"
                  "</summary>", "", *per_input_table(rows), "</details>", ""]
    if skipped:
        lines += ["## Skipped", "", *(f"- `{rel}`: {reason}" for rel, reason in skipped), ""]
    path.write_text("\n".join(lines))
    return path


def _spectrogram_db(x: np.ndarray) -> np.ndarray:
    """Channel-mean power spectrogram in dB `(F, T')` of `(Ch, S)`, frames max-pooled."""
    window = np.hanning(PLOT_N_FFT + 1)[:-1]
    pad = PLOT_N_FFT // 2
    padded = np.pad(x.astype(np.float64), ((0, 0), (pad, pad)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, PLOT_N_FFT, axis=1)[:, ::PLOT_HOP]
    power = (np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2).mean(axis=0).T  # (F, T)
    pool = max(1, math.ceil(power.shape[1] / PLOT_MAX_FRAMES))
    n = power.shape[1] // pool * pool
    if n:
        power = power[:, :n].reshape(power.shape[0], -1, pool).max(axis=2)
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def _panels(example: Example) -> list[tuple[str, np.ndarray]]:
    """(title, audio) per panel: input, model, DSP, reference (those present)."""
    out = example.outputs
    panels = []
    if "sinc" in out:
        panels.append((f"input ({example.condition}, sinc to 44.1 kHz)", out["sinc"]))
    for system in ("model", "dsp"):
        if system in out:
            scores = lsd_bands(example.reference, out[system], example.cutoff_hz)
            panels.append((f"{SYSTEM_LABELS[system]}: LSD {scores['lsd']:.2f} "
                           f"(above {scores['lsd_high']:.2f}, below {scores['lsd_low']:.3f})",
                           out[system]))
    panels.append(("reference", example.reference))
    return panels


def save_spectrogram_figure(path: Path, panels: Sequence[tuple[str, np.ndarray]],
                            cutoff_hz: float, title: str, scale_panel: int | None = None,
                            dpi: int = 64) -> None:
    """Stacked spectrograms of `(Ch, S)` 44.1 kHz panels, one dB scale topped by panel
    `scale_panel`'s loudest bin (None: the loudest panel's), a dashed line at the cutoff; saved
    as a 128-colour palette PNG (small)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    specs = [_spectrogram_db(audio) for _, audio in panels]
    top = float((specs[scale_panel] if scale_panel is not None else
                  max(specs, key=lambda s: float(s.max()))).max())
    duration_s = panels[0][1].shape[1] / SAMPLE_RATE
    fig = Figure(figsize=(8.0, 2.0 * len(panels) + 0.6), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    image = None
    for ax, (name, _), spec in zip(axes, panels, specs, strict=True):
        image = ax.imshow(spec, origin="lower", aspect="auto", cmap="magma",
                          vmin=top - PLOT_RANGE_DB, vmax=top, interpolation="nearest",
                          extent=(0.0, duration_s, 0.0, SAMPLE_RATE / 2000))
        ax.axhline(cutoff_hz / 1000, color="white", linestyle="--", linewidth=0.8)
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("kHz", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1].set_xlabel("s", fontsize=8)
    fig.colorbar(image, ax=list(axes), shrink=0.6, label="dB")
    fig.suptitle(title, fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        rendered.convert("RGB").quantize(colors=128).save(path, optimize=True)


def plot_example(example: Example, folder: Path, dpi: int = 64) -> tuple[str, str]:
    """Save a stacked spectrogram PNG of one example; returns (path relative to the report's
    folder, caption). The dB scale tops at the reference's loudest bin."""
    panels = _panels(example)
    name = re.sub(r"[^A-Za-z0-9._-]+", "_",
                  f"{example.file.category}-{example.condition}-{Path(example.file.rel).stem}")
    save_spectrogram_figure(folder / f"{name}.png", panels, example.cutoff_hz,
                            f"{example.file.category}: {example.file.rel}",
                            scale_panel=-1, dpi=dpi)  # the reference, last
    caption = (f"{example.file.category} — `{example.file.rel}`, input {example.condition}, "
               f"cutoff {example.cutoff_hz:.0f} Hz")
    return f"{folder.name}/{name}.png", caption

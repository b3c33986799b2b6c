"""`jatsr eval`: the DSP baseline, file selection, the simulated inputs and the CLI end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine import cli
from engine.eval.baselines import sbr_upsample, sinc_upsample
from engine.eval.evaluate import DEFAULT_CONDITIONS, EvalFile, find_files, mp3_lowpass, select_files
from engine.metrics import lsd, lsd_bands
from engine.sbr import SBRConfig
from tests.engine.conftest import band_limit, synth_clip, write_wav


@pytest.mark.parametrize("rate", [8000, 22050])
def test_dsp_baseline_beats_sinc_and_keeps_the_input_band(rate: int) -> None:
    ref = synth_clip(3.0, seed=3)[None]  # (1, S) harmonic tone + noise bursts, full band
    lr = band_limit(ref, rate)
    dsp, cutoff_hz = sbr_upsample(lr, rate)
    sinc = sinc_upsample(lr, rate)
    assert dsp.shape == sinc.shape and np.isfinite(dsp).all()
    assert 0.9 * rate / 2 < cutoff_hz <= rate / 2
    ours, base = lsd_bands(ref, dsp, cutoff_hz), lsd_bands(ref, sinc, cutoff_hz)
    assert ours["lsd"] < 0.6 * base["lsd"]
    assert ours["lsd_high"] < 0.6 * base["lsd_high"]
    # below the cutoff the output is the input: against the input itself, and against the
    # reference no worse than sinc (which holds the resampler's roll-off below the cutoff)
    assert lsd(sinc, dsp, high_hz=cutoff_hz) <= 0.05
    assert ours["lsd_low"] <= base["lsd_low"] + 0.005


def test_dsp_baseline_passes_full_band_input_through() -> None:
    x = synth_clip(1.0, seed=4)[None]
    out, cutoff_hz = sbr_upsample(x, 44100)
    assert cutoff_hz >= 21000
    np.testing.assert_array_equal(out, x)


def test_sbr_config_is_validated() -> None:
    with pytest.raises(ValueError, match="fit_low"):
        SBRConfig(fit_low=0.99)


def test_mp3_lowpass_is_steep_and_zero_phase() -> None:
    x = np.zeros((1, 8192), np.float32)
    x[0, 4096] = 1.0  # an impulse: the whole response fits, so Y / X is the filter
    y = mp3_lowpass(x, 16000.0)
    spec_x, spec_y = np.fft.rfft(x[0]), np.fft.rfft(y[0])
    freqs = np.fft.rfftfreq(x.shape[1], 1 / 44100)
    gain_db = 20 * np.log10(np.abs(spec_y) / np.abs(spec_x))
    assert np.abs(gain_db[(freqs > 20) & (freqs < 15800)]).max() < 0.1
    assert gain_db[freqs > 16200].max() < -60
    passband = (freqs > 20) & (freqs < 15800)
    assert np.abs(np.angle(spec_y[passband] / spec_x[passband])).max() < 1e-3  # no delay


def test_select_files_spreads_over_categories_deterministically() -> None:
    files = [EvalFile(Path(f"{c}/{s}/{i}.wav"), f"{c}/{s}/{i}.wav", c, s)
             for c, n in (("speech", 6), ("music", 2), ("effects", 1))
             for s in ("a", "b") for i in range(n)]
    picked = select_files(files, 5)
    assert [f.category for f in picked[:3]] == ["effects", "music", "speech"]
    assert picked == select_files(list(reversed(files)), 5)
    assert len(select_files(files, None)) == len(files)


def test_find_files_categories(tmp_path: Path) -> None:
    x = synth_clip(0.6, seed=1)
    write_wav(tmp_path / "loose.wav", x, 44100)
    (tmp_path / "speech" / "src").mkdir(parents=True)
    write_wav(tmp_path / "speech" / "src" / "a.wav", x, 44100)
    (tmp_path / "notes.txt").write_text("not audio")
    found = {f.rel: f for f in find_files([tmp_path])}
    assert set(found) == {"loose.wav", "speech/src/a.wav"}
    assert (found["loose.wav"].category, found["speech/src/a.wav"].category) == ("all", "speech")
    assert found["speech/src/a.wav"].source == "src"
    assert {f.category for f in find_files([tmp_path], categories_from_path=False)} == {"all"}


@pytest.fixture
def eval_folder(tmp_path: Path) -> Path:
    """Two short full-band files in category subfolders: mono speech, stereo music."""
    root = tmp_path / "refs"
    (root / "speech" / "voices").mkdir(parents=True)
    (root / "music" / "tracks").mkdir(parents=True)
    write_wav(root / "speech" / "voices" / "a.wav", synth_clip(1.5, seed=5), 44100)
    stereo = np.stack([synth_clip(2.0, seed=6), synth_clip(2.0, seed=7)])
    write_wav(root / "music" / "tracks" / "b.flac", stereo, 48000)
    return root


def _check_outputs(out: Path, systems: set[str], n_examples: int) -> list[dict]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * len(DEFAULT_CONDITIONS) * len(systems)
    assert {r["system"] for r in rows} == systems
    assert {r["condition"] for r in rows} == set(DEFAULT_CONDITIONS)
    assert {r["category"] for r in rows} == {"speech", "music"}
    assert all(r["lsd"] is not None and r["rtf"] >= 0 for r in rows)
    report = (out / "report.md").read_text()
    for name in [*DEFAULT_CONDITIONS, "speech", "music", "## Per category", "<details>", "RTF",
                 "## Encoder holes in the references", "hole-free"]:
        assert name in report
    assert all(r["ref_holes"] == 0.0 for r in rows)  # synthetic float references: no holes
    pngs = sorted((out / "examples").glob("*.png"))
    assert len(pngs) == n_examples
    assert all(p.stat().st_size < 200_000 for p in pngs)
    assert all(f"examples/{p.name}" in report for p in pngs)
    return rows


def test_cli_eval_baselines_only(eval_folder: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    rc = cli.main(["eval", str(eval_folder), "--model", "none", "--out", str(out),
                   "--examples", "2", "--seconds", "1.0"])
    assert rc == cli.EXIT_OK
    rows = _check_outputs(out, {"sinc", "dsp"}, n_examples=2)
    by = {(r["file"], r["condition"], r["system"]): r for r in rows}
    for (file, cond, system), r in by.items():
        assert r["duration_s"] == pytest.approx(1.0, abs=1e-3)
        if system == "dsp":
            assert r["lsd"] < by[(file, cond, "sinc")]["lsd"]
    assert "report:" in capsys.readouterr().out


def test_cli_eval_with_a_model(eval_folder: Path, tmp_path: Path, tiny_model_path: Path) -> None:
    out = tmp_path / "eval"
    rc = cli.main(["eval", str(eval_folder), "--model", str(tiny_model_path), "--out", str(out),
                   "--steps", "2", "--device", "cpu", "--examples", "1", "--max-files", "2"])
    assert rc == cli.EXIT_OK
    rows = _check_outputs(out, {"sinc", "dsp", "model"}, n_examples=1)
    for r in rows:
        if r["system"] == "model":
            assert r["lsd_kept"] <= 0.05 and r["elapsed_s"] > 0
            assert isinstance(r["warm_start"], bool)
        else:
            assert r["warm_start"] is None
    report = (out / "report.md").read_text()
    assert "## Targets of the default-model issue" in report and tiny_model_path.stem in report
    assert "- **warm start**: the model started from the DSP estimate on 8k " in report


def test_cli_eval_needs_something_to_evaluate(eval_folder: Path, tmp_path: Path) -> None:
    rc = cli.main(["eval", str(eval_folder), "--model", "none", "--baselines",
                   "--out", str(tmp_path / "eval")])
    assert rc == cli.EXIT_USAGE


def test_holes_section_splits_references_and_skips_unmeasured_ones() -> None:
    from engine.eval.report import holes_table

    def row(file: str, holes: float | None, system: str, value: float) -> dict:
        return {"file": file, "ref_holes": holes, "condition": "8k", "system": system,
                "lsd": value, "category": "speech"}

    rows = [row(f, h, s, v) for f, h in (("a", 0.0, ), ("b", 0.2), ("c", None))
            for s, v in (("sinc", 4.0), ("model", 1.0 if f == "a" else 2.0))]
    lines = holes_table(rows)
    body = [line for line in lines if line.startswith("| hole") or line.startswith("| with")]
    assert len(body) == 4  # two groups x (8k, all)
    assert body[0].startswith("| hole-free | 1 | 8k | 4.000 | 1.000 | 75 % |")
    assert body[2].startswith("| with holes | 1 | 8k | 4.000 | 2.000 | 50 % |")  # "c" left out
    assert holes_table([row("c", None, "sinc", 4.0)]) == []


def test_target_table_does_not_round_a_miss_up_to_the_target():
    from engine.eval.report import target_table

    rows = [{"system": s, "condition": "8k", "lsd": v, "lsd_low": 0.03, "lsd_kept": 0.0}
            for s, v in (("sinc", 4.281), ("dsp", 1.453), ("model", 1.298))]
    line = next(r for r in target_table(rows) if r.startswith("| 8k"))
    assert "| 69.7 % | ≥ 70 % | **no** |" in line  # 1 - 1.298 / 4.281 = 69.68 %
    phone = [{**r, "condition": "phone-gsm"} for r in rows]  # no target: not in the table
    assert [r for r in target_table(rows + phone) if "phone" in r] == []
    assert target_table(phone) == []


def test_report_adds_the_targets_on_hole_free_references(tmp_path) -> None:
    from engine.eval.report import write_report

    rows = [{"file": f, "ref_holes": h, "category": "speech", "condition": "8k", "system": s,
             "lsd": v * (1.0 if f == "clean" or s == "sinc" else 1.5), "lsd_low": 0.03,
             "lsd_high": 2.0, "lsd_kept": 0.0, "elapsed_s": 0.1, "duration_s": 1.0, "rtf": 0.1,
             "channels": 1, "cutoff_hz": 3800.0, "ref_cutoff_hz": 22050.0}
            for f, h in (("clean", 0.0), ("holey", 0.2))
            for s, v in (("sinc", 4.0), ("dsp", 1.5), ("model", 1.0))]
    text = write_report(tmp_path / "r.md", rows, {}, [], []).read_text()
    clean = text.split("The targets on the 1 hole-free references alone")[1]
    assert "| 8k | 75.0 % | ≥ 70 % | yes |" in clean  # the holey file (62.5 %) left out
    assert "| 8k | 68.8 % | ≥ 70 % | **no** |" in text  # both files: (75 + 62.5) / 2
    only_clean = [r for r in rows if r["file"] == "clean"]
    assert "hole-free references alone" not in write_report(
        tmp_path / "c.md", only_clean, {}, [], []).read_text()


def test_report_counts_the_inputs_that_started_warm() -> None:
    from engine.eval.report import warm_summary

    def row(cond: str, system: str, warm: bool | None) -> dict:
        return {"condition": cond, "system": system, "warm_start": warm}

    rows = [row("8k", "model", False), row("8k", "model", True), row("8k", "sinc", None),
            row("lp16k", "model", True), row("lp16k", "dsp", None)]
    assert warm_summary(rows) == ("the model started from the DSP estimate on 8k 1 of 2, "
                                  "lp16k 1 of 1 inputs; from noise on the rest")
    assert warm_summary([row("8k", "sinc", None)]) == ""  # baselines only
    assert warm_summary([{"condition": "8k", "system": "model"}]) == ""  # older results

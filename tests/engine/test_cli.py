"""`jatsr` end to end on generated audio: rates, channels, lengths, naming and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.cli import main
from engine.config import SAMPLE_RATE
from tests.engine.conftest import band_limit, lowpass, synth_clip, write_wav


def _input(tmp_path, rate: int, channels: int, seconds: float, name: str = "in"):
    x = np.stack([synth_clip(seconds, seed=c) for c in range(channels)])
    x = lowpass(x, 16000) if rate == SAMPLE_RATE else band_limit(x, rate)
    return write_wav(tmp_path / f"{name}.wav", x if channels > 1 else x[0], rate)


@pytest.mark.parametrize("rate", [4000, 6000, 8000, 16000, 22050, 44100])
@pytest.mark.parametrize("channels", [1, 2])
def test_upsample_short_files_at_every_rate(tmp_path, tiny_model_path, rate, channels):
    src = _input(tmp_path, rate, channels, 0.2)
    out_dir = tmp_path / "out"
    rc = main(["upsample", str(src), "-o", str(out_dir), "--model", str(tiny_model_path),
               "--steps", "2", "--device", "cpu"])
    assert rc == 0
    info_in, info_out = sf.info(src), sf.info(out_dir / "in.wav")
    assert info_out.samplerate == SAMPLE_RATE and info_out.channels == channels
    assert abs(info_out.frames - round(info_in.frames * SAMPLE_RATE / rate)) <= 1


@pytest.mark.slow
def test_upsample_70_second_stereo_file(tmp_path, tiny_model_path):
    src = _input(tmp_path, 16000, 2, 70.0)
    rc = main(["upsample", str(src), "--model", str(tiny_model_path), "--steps", "1",
               "--format", "flac", "--subtype", "PCM_16"])
    assert rc == 0
    out = tmp_path / "in.jatsr.flac"
    info = sf.info(out)
    assert (info.samplerate, info.channels) == (SAMPLE_RATE, 2)
    assert abs(info.frames - 70 * SAMPLE_RATE) <= 1
    y, _ = sf.read(out)
    assert np.isfinite(y).all() and np.abs(y).max() > 0.1


def test_refuses_existing_output_without_overwrite(tmp_path, tiny_model_path, capsys):
    src = _input(tmp_path, 16000, 1, 0.3)
    args = ["upsample", str(src), "--model", str(tiny_model_path), "--steps", "1"]
    assert main(args) == 0
    before = (tmp_path / "in.jatsr.wav").read_bytes()
    assert main(args) == 1
    assert "exists" in capsys.readouterr().err
    assert (tmp_path / "in.jatsr.wav").read_bytes() == before
    assert main([*args, "--overwrite"]) == 0


def test_never_overwrites_the_input(tmp_path, tiny_model_path):
    src = _input(tmp_path, SAMPLE_RATE, 1, 0.3)
    before = src.read_bytes()
    rc = main(["upsample", str(src), "-o", str(tmp_path), "--model", str(tiny_model_path),
               "--steps", "1", "--overwrite"])
    assert rc == 1 and src.read_bytes() == before


def test_a_batch_never_writes_over_its_other_inputs(tmp_path, tiny_model_path, capsys):
    # x.wav's result would be x.jatsr.wav, which is itself an input of the same run
    first = _input(tmp_path, 16000, 1, 0.3, name="x")
    second = _input(tmp_path, 16000, 1, 0.3, name="x.jatsr")
    before = second.read_bytes()
    rc = main(["upsample", str(first), str(second), "--model", str(tiny_model_path),
               "--steps", "1", "--overwrite"])
    assert rc == 1 and "would overwrite the input" in capsys.readouterr().err
    assert second.read_bytes() == before
    assert (tmp_path / "x.jatsr.jatsr.wav").exists()  # the rest of the batch still ran


def test_two_inputs_with_one_output_name_are_refused_before_anything_runs(
        tmp_path, tiny_model_path, capsys):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = _input(tmp_path / "a", 16000, 1, 0.3, name="x")
    b = _input(tmp_path / "b", 8000, 1, 0.3, name="x")
    out_dir = tmp_path / "out"
    rc = main(["upsample", str(a), str(b), "-o", str(out_dir), "--model", str(tiny_model_path),
               "--steps", "1", "--overwrite"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1
    assert str(a) in err and str(b) in err and "both" in err
    assert not out_dir.exists()


def test_a_folder_is_restored_into_a_mirrored_tree(tmp_path, tiny_model_path, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    _input(src, 16000, 1, 0.3, name="x")
    _input(src / "sub", 8000, 2, 0.3, name="x")  # same name, another folder: kept apart
    out_dir = src / "restored"  # inside the input tree: never read back as input
    for _ in range(2):
        rc = main(["upsample", str(src), "-o", str(out_dir), "--model", str(tiny_model_path),
                   "--steps", "1", "--overwrite"])
        captured = capsys.readouterr()
        assert rc == 0 and captured.out.count("->") == 2
        assert "2 of 2 files restored" in captured.err
    assert sf.info(out_dir / "x.wav").channels == 1
    assert sf.info(out_dir / "sub" / "x.wav").channels == 2
    assert sorted(p.name for p in out_dir.rglob("*.wav")) == ["x.wav", "x.wav"]


def test_an_output_folder_that_is_a_file_is_one_clear_line(tmp_path, tiny_model_path, capsys):
    src = _input(tmp_path, 16000, 1, 0.3)
    taken = tmp_path / "taken.wav"
    taken.write_bytes(b"keep")
    assert main(["upsample", str(src), "-o", str(taken), "--model", str(tiny_model_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: {taken}: not a folder (-o takes the folder to write into)")
    assert taken.read_bytes() == b"keep"


def test_float_flac_is_refused_before_the_model_loads(tmp_path, capsys):
    src = _input(tmp_path, 16000, 1, 0.3)
    rc = main(["upsample", str(src), "--format", "flac", "--subtype", "FLOAT",
               "--model", str(tmp_path / "no-such-model.safetensors")])
    assert rc == 1 and capsys.readouterr().err.strip() == (
        "error: --subtype FLOAT cannot be written as flac (it takes PCM_16, PCM_24)")


def test_a_folder_without_audio_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["upsample", str(tmp_path / "empty")]) == 1
    assert capsys.readouterr().err.strip() == "error: no audio files in the folders given"


def test_the_inputs_text_metadata_is_kept(tmp_path, tiny_model_path):
    src = _input(tmp_path, 16000, 1, 0.3)
    with sf.SoundFile(src, "r+") as f:
        f.title, f.artist = "Take 3", "Someone"
    assert main(["upsample", str(src), "--model", str(tiny_model_path), "--steps", "1",
                 "--format", "flac"]) == 0
    tags = sf.SoundFile(tmp_path / "in.jatsr.flac").copy_metadata()
    assert tags["title"] == "Take 3" and tags["artist"] == "Someone"
    assert tags["software"].startswith("JaT-SR")


def test_the_report_line_says_how_much_was_clipped(capsys):
    from pathlib import Path

    from engine.cli import _report
    from engine.pipeline import UpsampleResult

    r = UpsampleResult(Path("in.wav"), Path("out.wav"), 8000, 1, 2.0, 3800.0, True, 0.5,
                       clipped_samples=12)
    _report(r)
    assert "12 samples beyond full scale clipped (--subtype FLOAT keeps them)" in \
        capsys.readouterr().out


def test_rate_48000_writes_48_khz_of_the_same_duration(tmp_path, tiny_model_path):
    src = _input(tmp_path, 22050, 2, 0.5)
    assert main(["upsample", str(src), "--model", str(tiny_model_path), "--steps", "1",
                 "--rate", "48000"]) == 0
    info = sf.info(tmp_path / "in.jatsr.wav")
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 24000)


def test_no_dither_reaches_the_16_bit_writer(tmp_path, tiny_model_path):
    src = _input(tmp_path, 16000, 1, 0.3)
    outs = []
    for flags in ([], ["--no-dither"]):
        out_dir = tmp_path / ("plain" if flags else "dithered")
        assert main(["upsample", str(src), "-o", str(out_dir), "--model", str(tiny_model_path),
                     "--steps", "1", "--subtype", "PCM_16", *flags]) == 0
        outs.append(sf.read(out_dir / "in.wav", dtype="int16")[0].astype(int))
    difference = np.abs(outs[0] - outs[1])
    assert 0 < difference.max() <= 2  # the same restoration, its LSBs dithered or not


def test_a_file_listed_twice_is_restored_once(tmp_path, tiny_model_path, capsys):
    src = _input(tmp_path, 16000, 1, 0.3)
    rc = main(["upsample", str(src), str(tmp_path / ".." / tmp_path.name / "in.wav"),
               "--model", str(tiny_model_path), "--steps", "1"])
    assert rc == 0 and capsys.readouterr().out.count("->") == 1


def test_silence_is_valid_input(tmp_path, tiny_model_path):
    src = write_wav(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 8000)
    assert main(["upsample", str(src), "--model", str(tiny_model_path), "--steps", "1"]) == 0
    y, rate = sf.read(tmp_path / "quiet.jatsr.wav")
    assert rate == SAMPLE_RATE and np.isfinite(y).all()


def _bad_inputs(tmp_path):
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x01garbage" * 50)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.float32), 16000)
    nan = np.zeros(1600, np.float32)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    return ["corrupt.wav", "empty.wav", "nan.wav", "missing.wav"]


def test_bad_inputs_give_one_line_and_nonzero_exit(tmp_path, tiny_model_path, capsys):
    good = _input(tmp_path, 16000, 1, 0.3, name="good")
    for name in _bad_inputs(tmp_path):
        rc = main(["upsample", str(tmp_path / name), "--model", str(tiny_model_path)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 1 and len(err) == 1 and name in err[0], (name, err)
    assert not list(tmp_path.glob("*.jatsr.*"))
    # A bad file among good ones: the good one is still processed, the exit code still says 1.
    rc = main(["upsample", str(tmp_path / "nan.wav"), str(good), "--model", str(tiny_model_path),
               "--steps", "1"])
    assert rc == 1 and (tmp_path / "good.jatsr.wav").exists()


def test_unknown_model_file_is_one_clear_line(tmp_path, capsys):
    src = _input(tmp_path, 16000, 1, 0.3)
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    for model in [str(tmp_path / "nope.safetensors"), str(tmp_path / "junk.safetensors")]:
        assert main(["upsample", str(src), "--model", model]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:"), err


def test_info_prints_v2_parameter_count(capsys):
    assert main(["info", "--preset", "v2"]) == 0
    out = capsys.readouterr().out
    assert "289,637,888" in out and "blocks.attn" in out


def test_no_arguments_prints_help(capsys):
    assert main([]) == 0
    assert "upsample" in capsys.readouterr().out


def test_default_model_is_shipped_and_restores_a_phone_clip(tmp_path):
    src = _input(tmp_path, 8000, 1, 1.0)
    assert main(["upsample", str(src), "--model", "default", "--steps", "2", "--device",
                 "cpu"]) == 0
    y, rate = sf.read(tmp_path / "in.jatsr.wav")
    assert rate == SAMPLE_RATE and abs(len(y) - SAMPLE_RATE) <= 1


def test_transition_flag_reaches_the_pipeline(tmp_path, tiny_model_path, monkeypatch):
    from engine import pipeline

    seen = []
    real = pipeline.Restorer.__init__

    def spy(self, model, sampler=None, cfg=None, device="cpu"):
        seen.append(cfg.transition_hz)
        real(self, model, sampler, cfg, device)

    monkeypatch.setattr(pipeline.Restorer, "__init__", spy)
    src = _input(tmp_path, 16000, 1, 0.2)
    rc = main(["upsample", str(src), "-o", str(tmp_path / "out"), "--model",
               str(tiny_model_path), "--steps", "1", "--device", "cpu", "--transition-hz", "0"])
    assert rc == 0 and seen == [0.0] and (tmp_path / "out" / "in.wav").exists()
    rc = main(["upsample", str(src), "-o", str(tmp_path / "bad"), "--model",
               str(tiny_model_path), "--transition-hz", "-5"])
    assert rc != 0


def test_fill_holes_reaches_the_pipeline_and_the_eval_command_line(tiny_model):
    from engine.cli import _eval_command_line, _restorer, build_parser
    from engine.config import HOLE_DEPTH_DB

    parser = build_parser()
    off = parser.parse_args(["upsample", "a.wav"])
    assert _restorer(off, tiny_model, "cpu").pipeline.fill_holes_db is None  # the default
    on = parser.parse_args(["upsample", "a.wav", "--fill-holes"])
    assert _restorer(on, tiny_model, "cpu").pipeline.fill_holes_db == HOLE_DEPTH_DB
    deep = parser.parse_args(["upsample", "a.wav", "--fill-holes", "--hole-depth", "12"])
    assert _restorer(deep, tiny_model, "cpu").pipeline.fill_holes_db == 12.0
    with pytest.raises(SystemExit):
        parser.parse_args(["upsample", "a.wav", "--hole-depth", "0"])
    ev = parser.parse_args(["eval", "refs", "--fill-holes"])
    assert "--fill-holes --hole-depth 20" in _eval_command_line(ev)
    assert "--fill-holes" not in _eval_command_line(parser.parse_args(["eval", "refs"]))

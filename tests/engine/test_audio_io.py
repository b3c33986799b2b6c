"""engine.audio.io on synthetic files in tmp_path: validation, resampling, streaming, writing."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from engine.audio import io as audio_io
from engine.audio.cutoff import detect_cutoff_file
from engine.audio.io import (
    AtomicWriter,
    AudioInputError,
    AudioOutputError,
    EmptyAudio,
    NonFiniteAudio,
    OutputExistsError,
    SameAsInputError,
    TooShortAudio,
    UnreadableAudio,
    UnsupportedChannels,
    UnsupportedRate,
    iter_blocks,
    load,
    output_path,
    probe,
    read_segments,
    resample,
    resampled_length,
)
from engine.audio.rolloff import precompensate


def _write(path: Path, data: np.ndarray, sample_rate: int, subtype: str = "FLOAT",
           format: str | None = None) -> Path:
    """Write `(Ch, S)` data; returns the path."""
    sf.write(path, np.ascontiguousarray(data.T), sample_rate, subtype=subtype, format=format)
    return path


def _noise(channels: int, frames: int, seed: int = 0, scale: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.uniform(-1, 1, (channels, frames))).astype(np.float32)


def _sine(freq_hz: float, sample_rate: int, duration_s: float) -> np.ndarray:
    t = np.arange(round(duration_s * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)[None]


# --- probe / load: validation -----------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 8])
def test_probe_reports_header(tmp_path: Path, channels: int) -> None:
    path = _write(tmp_path / "a.wav", _noise(channels, 4410), 44100, "PCM_16")
    info = probe(path)
    assert (info.sample_rate, info.channels, info.frames) == (44100, channels, 4410)
    assert info.duration_s == pytest.approx(0.1)
    assert (info.format, info.subtype, info.path) == ("WAV", "PCM_16", str(path))


@pytest.mark.parametrize("sample_rate", [8000, 11025, 37800, 96000, 192000])
def test_odd_rates_load(tmp_path: Path, sample_rate: int) -> None:
    data = _noise(2, sample_rate // 5)
    path = _write(tmp_path / "a.flac", data, sample_rate, "PCM_24")
    x, rate = load(path)
    assert rate == sample_rate and x.shape == data.shape and x.dtype == np.float32
    np.testing.assert_allclose(x, data, atol=2**-22)


def test_nine_channels_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "nine.wav", _noise(9, 4410), 44100)
    with pytest.raises(UnsupportedChannels, match="9 channels") as err:
        load(path)
    assert err.value.path == str(path) and str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize("sample_rate", [3000, 384000])
def test_rate_out_of_range_rejected(tmp_path: Path, sample_rate: int) -> None:
    path = _write(tmp_path / "r.wav", _noise(1, sample_rate // 5), sample_rate)
    with pytest.raises(UnsupportedRate, match=f"{sample_rate} Hz"):
        probe(path)


def test_zero_length_is_empty(tmp_path: Path) -> None:
    path = _write(tmp_path / "empty.wav", np.zeros((1, 0), np.float32), 44100)
    with pytest.raises(EmptyAudio):
        load(path)
    with pytest.raises(EmptyAudio):
        iter_blocks(path, 1024)


def test_too_short(tmp_path: Path) -> None:
    path = _write(tmp_path / "short.wav", _noise(1, 100), 44100)
    with pytest.raises(TooShortAudio, match="ms"):
        load(path)
    x, _ = load(path, min_duration_s=0.0)
    assert x.shape == (1, 100)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableAudio, match="not found"):
        probe(tmp_path / "nope.wav")
    with pytest.raises(UnreadableAudio, match="directory"):
        load(tmp_path)


def test_random_bytes_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(UnreadableAudio) as err:
        load(path)
    assert isinstance(err.value, AudioInputError) and "\n" not in str(err.value)


def test_truncated_header_unreadable(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", _noise(2, 44100), 44100, "PCM_16")
    bad = tmp_path / "truncated.wav"
    bad.write_bytes(good.read_bytes()[:20])
    with pytest.raises(UnreadableAudio):
        probe(bad)


def test_truncated_data_loads_what_is_there(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.wav", _noise(1, 44100), 44100, "PCM_16")
    bad = tmp_path / "cut.wav"
    bad.write_bytes(good.read_bytes()[:44 + 2 * 20000])  # header + 20000 frames
    x, _ = load(bad)
    assert 0 < x.shape[1] <= 44100


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_named_with_time(tmp_path: Path, bad: float) -> None:
    data = _noise(2, 3 * 8000)
    data[1, 12000] = bad  # 1.5 s
    path = _write(tmp_path / "nan.wav", data, 8000)
    with pytest.raises(NonFiniteAudio, match=r"1\.500 s"):
        load(path)
    with pytest.raises(NonFiniteAudio, match=r"1\.500 s"):
        list(iter_blocks(path, 1000))
    with pytest.raises(NonFiniteAudio, match=r"1\.500 s"):
        list(iter_blocks(path, 1000, sample_rate=44100))


def test_errors_pickle_and_format(tmp_path: Path) -> None:
    err = UnsupportedChannels(tmp_path / "x.wav", "9 channels")
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == str(err) == f"{tmp_path / 'x.wav'}: 9 channels"
    assert again.reason == "9 channels" and isinstance(again, AudioInputError)
    # output-side errors share the base, so one `except AudioInputError` marks any failed file
    assert issubclass(OutputExistsError, AudioOutputError)
    assert issubclass(SameAsInputError, AudioInputError)


# --- load: levels and resampling ----------------------------------------------------------------


def test_silence_is_valid_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path / "silence.wav", np.zeros((2, 4410), np.float32), 44100, "PCM_16")
    with caplog.at_level(logging.INFO, logger=audio_io.__name__):
        x, _ = load(path)
    assert not x.any() and "silence" in caplog.text


def test_quiet_and_clipped_are_logged_not_raised(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    quiet = _write(tmp_path / "quiet.wav", _noise(1, 4410, scale=1e-4), 44100)
    loud = _write(tmp_path / "loud.wav", np.clip(_noise(1, 4410, scale=3.0), -1, 1), 44100)
    with caplog.at_level(logging.WARNING, logger=audio_io.__name__):
        load(quiet)
        load(loud)
    assert "near-silent" in caplog.text and "clipped" in caplog.text


def test_pcm16_values_and_layout(tmp_path: Path) -> None:
    data = np.stack([np.linspace(-0.5, 0.5, 1000), np.zeros(1000)]).astype(np.float32)
    x, rate = load(_write(tmp_path / "a.wav", data, 22050, "PCM_16"), min_duration_s=0)
    assert rate == 22050 and x.shape == (2, 1000) and x.flags.c_contiguous
    np.testing.assert_allclose(x, data, atol=1 / 32768)


@pytest.mark.parametrize("sample_rate", [8000, 11025, 37800, 48000, 96000])
def test_load_resamples_with_exact_length(tmp_path: Path, sample_rate: int) -> None:
    data = _sine(1000.0, sample_rate, 0.5) + _noise(1, round(0.5 * sample_rate), scale=0.01)
    path = _write(tmp_path / "s.wav", data, sample_rate)
    x, rate = load(path, sample_rate=44100)
    assert rate == 44100 and x.dtype == np.float32
    assert x.shape == (1, resampled_length(data.shape[1], sample_rate, 44100))
    # upsampling first undoes soxr's own roll-off at the top of the input's band
    pre = precompensate(data, sample_rate, 44100)[0]
    expected = soxr.resample(pre, sample_rate, 44100, quality="VHQ")
    np.testing.assert_allclose(x[0, : len(expected)], expected[: x.shape[1]], atol=1e-6)
    spectrum = np.abs(np.fft.rfft(x[0] * np.hanning(x.shape[1])))
    assert np.argmax(spectrum) * 44100 / x.shape[1] == pytest.approx(1000, abs=5)


def test_resampled_length_is_python_round(tmp_path: Path) -> None:
    assert resampled_length(40, 8000, 44100) == round(220.5) == 220  # halves to even
    assert resampled_length(100003, 44100, 48000) == round(100003 * 48000 / 44100)
    path = _write(tmp_path / "odd.wav", _noise(2, 440), 8000)  # 2425.5 frames at 44.1 kHz
    streamed = np.concatenate(list(iter_blocks(path, 100, sample_rate=44100)), axis=1)
    assert streamed.shape == load(path, 44100)[0].shape == (2, 2426)


def test_resample_array() -> None:
    x = _noise(3, 1000)
    y = resample(x, 48000, 44100)
    assert y.shape == (3, 919) and y.dtype == np.float32
    np.testing.assert_array_equal(resample(x, 8000, 8000), x)
    with pytest.raises(ValueError, match="Ch, S"):
        resample(x[0], 48000, 44100)


# --- iter_blocks / read_segments ------------------------------------------------------------


def test_iter_blocks_plain_matches_load(tmp_path: Path) -> None:
    data = _noise(2, 10_000)
    path = _write(tmp_path / "a.wav", data, 44100)
    blocks = list(iter_blocks(path, 3000))
    assert [b.shape for b in blocks] == [(2, 3000)] * 3 + [(2, 1000)]
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), load(path)[0])


@pytest.mark.parametrize(("sample_rate", "frames", "block_frames"), [
    (8000, 16_000, 1000),  # length a multiple of the block size
    (11025, 12_345, 4096),
    (37800, 37_801, 777),
    (48000, 48_000, 48_000),
    (96000, 50_001, 8192),
    (192000, 77_777, 5000),
    (8000, 400, 1000),  # shorter than the roll-off FIR's delay (740 samples at 8 kHz)
    (22050, 2000, 512),  # blocks shorter than that delay
])
def test_iter_blocks_stream_matches_whole_resample(tmp_path: Path, sample_rate: int, frames: int,
                                                   block_frames: int) -> None:
    path = _write(tmp_path / "a.flac", _noise(2, frames), sample_rate, "PCM_24")
    whole, _ = load(path, sample_rate=44100)
    blocks = list(iter_blocks(path, block_frames, sample_rate=44100))
    streamed = np.concatenate(blocks, axis=1)
    assert streamed.shape == whole.shape == (2, resampled_length(frames, sample_rate, 44100))
    assert all(b.dtype == np.float32 and b.shape[1] > 0 for b in blocks)
    # bounded: a block's worth plus, in the last block, the flushed filter delay
    assert max(b.shape[1] for b in blocks) <= block_frames * 44100 / sample_rate + 4096
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_iter_blocks_mp3_length(tmp_path: Path) -> None:
    path = tmp_path / "a.mp3"
    sf.write(path, _noise(1, 22050)[0], 22050, format="MP3", subtype="MPEG_LAYER_III")
    whole, _ = load(path, sample_rate=44100)
    streamed = np.concatenate(list(iter_blocks(path, 2048, sample_rate=44100)), axis=1)
    assert streamed.shape == whole.shape
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_iter_blocks_eight_channels(tmp_path: Path) -> None:
    data = _noise(8, 9600)
    path = _write(tmp_path / "surround.wav", data, 48000)
    streamed = np.concatenate(list(iter_blocks(path, 1024, sample_rate=44100)), axis=1)
    assert streamed.shape == (8, 8820)
    np.testing.assert_allclose(streamed, load(path, sample_rate=44100)[0], atol=1e-5)


def test_iter_blocks_validates_eagerly(tmp_path: Path) -> None:
    path = _write(tmp_path / "nine.wav", _noise(9, 4410), 44100)
    with pytest.raises(UnsupportedChannels):
        iter_blocks(path, 1024)  # no iteration needed
    with pytest.raises(ValueError, match="block_frames"):
        iter_blocks(path, 0)


def test_read_segments_spread_over_file(tmp_path: Path) -> None:
    data = np.tile(np.arange(100_000, dtype=np.float32) / 100_000, (2, 1))
    path = _write(tmp_path / "ramp.wav", data, 8000)
    segments = list(read_segments(path, 1000, 5))
    assert len(segments) == 5 and all(s.shape == (2, 1000) for s in segments)
    firsts = [s[0, 0] * 100_000 for s in segments]
    np.testing.assert_allclose(firsts, [0, 24_750, 49_500, 74_250, 99_000], atol=1)
    short = list(read_segments(path, 30_000, 5))  # shorter than 5 segments: read whole
    assert sum(s.shape[1] for s in short) == 100_000


# --- writing ---------------------------------------------------------------------------------


def test_output_path(tmp_path: Path) -> None:
    src = tmp_path / "in" / "song.mp3"
    assert output_path(src, None, "flac") == tmp_path / "in" / "song.jatsr.flac"
    assert output_path(src, tmp_path / "out", "WAV") == tmp_path / "out" / "song.wav"
    with pytest.raises(ValueError, match="fmt"):
        output_path(src, None, "mp3")


@pytest.mark.parametrize(("format", "subtype", "atol"), [  # 16-bit: +-1 LSB of dither on top
    ("wav", "PCM_16", 2 / 32768), ("wav", "PCM_24", 2**-23), ("wav", "FLOAT", 0.0),
    ("flac", "PCM_16", 2 / 32768), ("flac", "PCM_24", 2**-23),
])
def test_atomic_writer_round_trip(tmp_path: Path, format: str, subtype: str, atol: float) -> None:
    data = _noise(2, 5000)
    target = tmp_path / f"out.{format}"
    with AtomicWriter(target, 44100, 2, format=format, subtype=subtype) as writer:
        writer.write(data[:, :3000])
        assert not target.exists() and len(list(tmp_path.iterdir())) == 1  # the temp file
        writer.write(data[:, 3000:])
    assert writer.frames_written == 5000 and os.listdir(tmp_path) == [target.name]
    x, rate = load(target)
    assert rate == 44100
    np.testing.assert_allclose(x, data, atol=atol)


def test_pcm_is_clipped_float_is_not(tmp_path: Path) -> None:
    block = np.array([[1.5, -1.5, 0.25] * 100], np.float32)
    for subtype, expected in (("PCM_16", 1.0), ("FLOAT", 1.5)):
        target = tmp_path / f"{subtype}.wav"
        with AtomicWriter(target, 8000, 1, subtype=subtype) as writer:
            writer.write(block)
        x, _ = load(target, min_duration_s=0)
        assert x[0, 0] == pytest.approx(expected, abs=1e-4)
        assert x[0, 1] == pytest.approx(-expected, abs=1e-4)


class _Cancelled(Exception):
    pass


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, _Cancelled])
def test_exception_removes_temp_and_keeps_target(tmp_path: Path,
                                                 exc_type: type[BaseException]) -> None:
    target = tmp_path / "out.wav"
    with pytest.raises(exc_type), AtomicWriter(target, 44100, 1) as writer:
        writer.write(_noise(1, 1000))
        raise exc_type("stop")
    assert os.listdir(tmp_path) == []
    _write(target, _noise(1, 500), 44100)
    before = target.read_bytes()
    with pytest.raises(exc_type), AtomicWriter(target, 44100, 1, overwrite=True) as writer:
        writer.write(_noise(1, 1000, seed=1))
        raise exc_type("stop")
    assert os.listdir(tmp_path) == ["out.wav"] and target.read_bytes() == before


def test_existing_target_needs_overwrite(tmp_path: Path) -> None:
    target = _write(tmp_path / "out.wav", _noise(1, 500), 44100)
    with pytest.raises(OutputExistsError, match="exists"):
        AtomicWriter(target, 44100, 1)
    with AtomicWriter(target, 44100, 1, overwrite=True) as writer:
        writer.write(np.zeros((1, 700), np.float32))
    assert sf.info(target).frames == 700


def test_target_appearing_while_writing(tmp_path: Path) -> None:
    target = tmp_path / "out.wav"
    with pytest.raises(OutputExistsError), AtomicWriter(target, 44100, 1) as writer:
        writer.write(np.zeros((1, 100), np.float32))
        target.write_bytes(b"someone else")
    assert target.read_bytes() == b"someone else" and os.listdir(tmp_path) == ["out.wav"]


def test_refuses_to_write_onto_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = _write(tmp_path / "in.wav", _noise(1, 500), 44100)
    with pytest.raises(SameAsInputError):
        AtomicWriter(src, 44100, 1, overwrite=True, inputs=[src])
    link = tmp_path / "link.wav"
    link.symlink_to(src)
    with pytest.raises(SameAsInputError):
        AtomicWriter(link, 44100, 1, overwrite=True, inputs=[str(src)])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SameAsInputError):
        AtomicWriter(Path("in.wav"), 44100, 1, overwrite=True,
                     inputs=[tmp_path / "x" / ".." / "in.wav"])


def test_writer_argument_checks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flac"):
        AtomicWriter(tmp_path / "a.flac", 44100, 1, format="flac", subtype="FLOAT")
    with pytest.raises(ValueError, match="format"):
        AtomicWriter(tmp_path / "a.ogg", 44100, 1, format="ogg")
    with pytest.raises(OutputExistsError, match="directory"):
        AtomicWriter(tmp_path, 44100, 1, overwrite=True)
    with pytest.raises(AudioOutputError, match="does not exist"), \
            AtomicWriter(tmp_path / "no" / "a.wav", 44100, 1):
        pass
    target = tmp_path / "a.wav"
    with pytest.raises(ValueError, match="shape"), AtomicWriter(target, 44100, 2) as writer:
        writer.write(np.zeros((1, 10), np.float32))
    with pytest.raises(ValueError, match="NaN"), AtomicWriter(target, 44100, 1) as writer:
        writer.write(np.full((1, 10), np.nan, np.float32))
    assert os.listdir(tmp_path) == []
    with pytest.raises(RuntimeError, match="with"):
        AtomicWriter(target, 44100, 1).write(np.zeros((1, 10), np.float32))


def test_long_wav_becomes_rf64_or_fails_cleanly(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.audio import io as audio_io

    monkeypatch.setattr(audio_io, "WAV_MAX_DATA_BYTES", 40_000)  # 10,000 stereo 16-bit frames
    block = (0.5 * np.sin(np.arange(6000) / 7.0)).astype(np.float32)[None].repeat(2, 0)  # (2, n)
    fits = tmp_path / "fits.wav"
    with AtomicWriter(fits, 44100, 2, expected_frames=6000) as writer:
        writer.write(block)
    assert sf.info(str(fits)).format == "WAV"
    long = tmp_path / "long.wav"
    with AtomicWriter(long, 44100, 2, expected_frames=12000) as writer:
        writer.write(block)
        writer.write(block)
    assert sf.info(str(long)).format == "RF64" and long.suffix == ".wav"
    back, rate = sf.read(str(long), dtype="float32")
    assert rate == 44100 and back.shape == (12000, 2)
    np.testing.assert_allclose(back[:6000].T, block, atol=2 / 32768)  # 16-bit, dithered
    unknown = tmp_path / "unknown.wav"
    with pytest.raises(AudioOutputError, match="4 GiB"), AtomicWriter(unknown, 44100, 2) as w:
        w.write(block)
        w.write(block)  # past the RIFF limit without the length known up front
    assert not unknown.exists() and not list(tmp_path.glob(".unknown*"))
    flac = tmp_path / "long.flac"
    with AtomicWriter(flac, 44100, 2, format="flac", expected_frames=12000) as writer:
        writer.write(block)
        writer.write(block)  # FLAC has no such limit
    assert sf.info(str(flac)).frames == 12000


def test_read_segments_reads_through_a_file_that_cannot_seek(tmp_path):
    # raw GSM 6.10 (telephone prompts) decodes but cannot seek: the excerpts come from reading
    # through the file; they match the whole decode where a seeking reader would have landed
    rng = np.random.default_rng(4)
    path = tmp_path / "prompt.gsm"
    sf.write(path, (0.2 * rng.standard_normal(8000 * 3)).astype(np.float32), 8000,
             format="RAW", subtype="GSM610")
    with sf.SoundFile(path) as f:
        assert not f.seekable()
    whole = sf.read(path, dtype="float32")[0]
    segments = list(read_segments(path, 800, 4))
    last = whole.shape[0] - 800
    starts = [round(i * last / 3) for i in range(4)]
    assert len(segments) == 4
    for start, seg in zip(starts, segments, strict=True):
        np.testing.assert_array_equal(seg[0], whole[start:start + 800])
    assert 3000 < detect_cutoff_file(path) <= 4000


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_writer_carries_text_metadata_and_leaves_out_only_an_overlong_field(tmp_path, fmt,
                                                                            caplog):
    tags = {"title": "Sóng", "artist": "Band", "album": "A", "date": "1999",
            "comment": "x" * (audio_io.MAX_TAG_CHARS + 1)}  # alone would lose them all in WAV
    out = tmp_path / f"o.{fmt}"
    with caplog.at_level(logging.WARNING), audio_io.AtomicWriter(
            out, 44100, 1, format=fmt, subtype="PCM_16", tags=tags) as w:
        w.write(np.zeros((1, 4410), np.float32))
    kept = audio_io.read_tags(out)
    assert {k: kept.get(k) for k in ("title", "artist", "album", "date")} == {
        "title": "Sóng", "artist": "Band", "album": "A", "date": "1999"}
    assert "comment" not in kept and "comment left out" in caplog.text


def test_read_tags_of_an_unreadable_file_is_empty(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    assert audio_io.read_tags(bad) == {} and audio_io.read_tags(tmp_path / "missing.wav") == {}


def test_writer_counts_what_it_clips_in_pcm_only(tmp_path):
    block = np.array([[0.5, 1.2, -1.5, 1.0]], np.float32)  # two samples beyond full scale
    for subtype, clipped in (("PCM_16", 2), ("FLOAT", 0)):
        with audio_io.AtomicWriter(tmp_path / f"{subtype}.wav", 44100, 1,
                                   subtype=subtype) as w:
            w.write(block)
            w.write(block)
        assert w.clipped_samples == 2 * clipped


def test_16_bit_output_is_dithered_reproducibly_and_silence_stays_silent(tmp_path):
    t = np.arange(44100, dtype=np.float32) / 44100
    quiet = (0.4 / 32768 * np.sin(2 * np.pi * 1000 * t))[None]  # under half an LSB
    block = np.concatenate([quiet, np.zeros((1, 4410), np.float32)], axis=1)
    written = {}
    for name, dither in (("a", True), ("b", True), ("plain", False)):
        with audio_io.AtomicWriter(tmp_path / f"{name}.wav", 44100, 1, subtype="PCM_16",
                                   dither=dither) as w:
            w.write(block)
        written[name] = sf.read(tmp_path / f"{name}.wav", dtype="int16")[0]
    assert len(np.unique(written["plain"])) <= 2  # rounding alone: one step of distortion
    assert len(np.unique(written["a"][:44100])) >= 3
    tone, silence = written["a"][:44100].astype(float), written["a"][44100:]
    assert np.abs(tone).max() <= 2 and not silence.any()
    # the tone survives in the dithered file: it correlates with the signal
    assert np.corrcoef(tone, quiet[0])[0, 1] > 0.2
    np.testing.assert_array_equal(written["a"], written["b"])


def test_a_block_already_on_the_16_bit_grid_is_written_exactly(tmp_path):
    rng = np.random.default_rng(0)
    ints = rng.integers(-20000, 20000, size=(2, 3000))
    with audio_io.AtomicWriter(tmp_path / "o.wav", 44100, 2, subtype="PCM_16") as w:
        w.write((ints / audio_io.PCM16_FULL_SCALE).astype(np.float32))  # a 16-bit input
    np.testing.assert_array_equal(sf.read(tmp_path / "o.wav", dtype="int16")[0].T, ints)

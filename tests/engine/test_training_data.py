"""engine.training.corpus + data: scan + report, split by file, cache, crop stream, validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from engine.audio import io as audio_io
from engine.config import SAMPLE_RATE
from engine.training import corpus as corpus_mod
from engine.training.corpus import AudioCache, scan
from engine.training.data import (
    CropDataset,
    ValidationSet,
    active_rms_db,
    crop_samples,
    spectral_tilt,
)
from engine.training.dataconfig import DataConfig
from engine.training.degrade import DegradeConfig
from tests.engine.conftest import lowpass, synth_clip, write_wav

CROP_S = 2.0
GOOD = ["a.wav", "b.flac", "sub/c.wav", "sub/deep/d.flac", "e.wav", "f.wav", "padded.wav"]
BAD = {  # name -> (category, text in the reason)
    "fake44.wav": ("low_bandwidth", "content stops at 11."),
    "corrupt.wav": ("unreadable", "not a readable audio file"),
    "zero_bytes.wav": ("unreadable", "not a readable audio file"),
    "no_frames.wav": ("empty", "no audio frames"),
    "short.wav": ("too_short", "0.30 s"),
    "nan.wav": ("non_finite", "NaN/Inf sample at 0:01.000"),
    "nine.wav": ("unsupported_channels", "9 channels"),
    "sub/readme.txt": ("unreadable", "not a readable audio file"),
}


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("audio")
    (root / "sub" / "deep").mkdir(parents=True)
    write_wav(root / "a.wav", synth_clip(3.0, seed=1), SAMPLE_RATE)
    stereo = np.stack([synth_clip(2.5, seed=2, sample_rate=48000),
                       synth_clip(2.5, seed=3, sample_rate=48000)])
    sf.write(root / "b.flac", stereo.T, 48000, subtype="PCM_24")
    write_wav(root / "sub/c.wav", synth_clip(2.5, seed=4), SAMPLE_RATE, subtype="FLOAT")
    sf.write(root / "sub/deep/d.flac", synth_clip(3.0, seed=5), SAMPLE_RATE)
    write_wav(root / "e.wav", 0.5 * synth_clip(2.5, seed=6), SAMPLE_RATE)
    write_wav(root / "f.wav", synth_clip(2.5, seed=7), SAMPLE_RATE)
    write_wav(root / "padded.wav", synth_clip(1.4, seed=8), SAMPLE_RATE)  # 1 s <= 1.4 s < crop
    write_wav(root / "fake44.wav", lowpass(synth_clip(3.0, seed=9), 11200.0), SAMPLE_RATE)
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(200)))
    (root / "zero_bytes.wav").write_bytes(b"")
    sf.write(root / "no_frames.wav", np.zeros((0, 1), np.float32), SAMPLE_RATE)
    write_wav(root / "short.wav", synth_clip(0.3, seed=10), SAMPLE_RATE)
    nan = synth_clip(2.0, seed=11)
    nan[SAMPLE_RATE] = np.nan
    write_wav(root / "nan.wav", nan, SAMPLE_RATE, subtype="FLOAT")
    write_wav(root / "nine.wav", np.tile(synth_clip(1.0, seed=12), (9, 1)), SAMPLE_RATE,
              subtype="FLOAT")
    (root / "sub/readme.txt").write_text("not audio\n")
    return root


def _cfg(root: Path, cache: Path, **kw: object) -> DataConfig:
    return DataConfig(folders=(str(root),), crop_s=CROP_S, cache_dir=str(cache), **kw)


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> corpus_mod.Corpus:
    return scan(_cfg(corpus_dir, tmp_path_factory.mktemp("cache")))


def _rel(root: Path, paths: list[str]) -> set[str]:
    return {Path(p).relative_to(root).as_posix() for p in paths}


def test_scan_reports_every_bad_file(corpus_dir: Path, corpus: corpus_mod.Corpus) -> None:
    kept = _rel(corpus_dir, [e.path for e in corpus.train + corpus.val])
    assert kept == set(GOOD)
    skipped = {Path(s.path).relative_to(corpus_dir).as_posix(): s for s in corpus.skipped}
    assert set(skipped) == set(BAD)
    for name, (category, text) in BAD.items():
        assert skipped[name].category == category, (name, skipped[name])
        assert text in skipped[name].reason, (name, skipped[name].reason)
    summary = corpus.summary()
    assert summary["skipped_files"] == len(BAD)
    assert summary["skip_reasons"]["unreadable"] == 3
    assert summary["train_files"] + summary["val_files"] == len(GOOD)
    assert summary["train_minutes"] > 0.1
    by_name = {Path(e.path).name: e for e in corpus.train + corpus.val}
    assert by_name["b.flac"].sample_rate == 48000 and by_name["b.flac"].channels == 2
    assert all(e.cutoff_hz >= 18000 for e in by_name.values())


def test_split_is_by_file_and_stable(corpus_dir: Path, corpus: corpus_mod.Corpus,
                                     tmp_path: Path) -> None:
    assert len(corpus.val) == 1  # 5 % of 7 files, at least one
    assert not {e.path for e in corpus.val} & {e.path for e in corpus.train}
    moved = shutil.copytree(corpus_dir, tmp_path / "moved")  # new place, new cache
    again = scan(_cfg(moved, tmp_path / "cache2"))
    assert _rel(moved, [e.path for e in again.val]) == _rel(corpus_dir, [e.path for e in
                                                                         corpus.val])
    inside = scan(_cfg(moved, moved / "cache"))  # a cache inside the data is not scanned
    assert [e.path for e in inside.val] == [e.path for e in again.val]
    assert not [s for s in inside.skipped if "/cache/" in s.path]
    three = scan(_cfg(moved, tmp_path / "cache2", val_files=3))
    assert len(three.val) == 3 and len(three.train) == len(GOOD) - 3
    splits = {frozenset(_rel(moved, [e.path for e in scan(_cfg(
        moved, tmp_path / "cache2", val_files=3, seed=s)).val])) for s in range(4)}
    assert len(splits) > 1  # the seed picks the files


def test_cache_reused_without_decoding(corpus_dir: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(corpus_dir, tmp_path / "cache")
    first = scan(cfg)
    arrays = sorted((tmp_path / "cache").glob("*.npy"))
    assert len(arrays) == len(GOOD)  # excluded files are not decoded into the cache
    mtimes = {p: p.stat().st_mtime_ns for p in arrays}

    def boom(*args: object, **kw: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(audio_io, "iter_blocks", boom)
    monkeypatch.setattr(audio_io, "probe", boom)
    monkeypatch.setattr(corpus_mod, "detect_cutoff_file", boom)
    second = scan(cfg)
    assert {p: p.stat().st_mtime_ns for p in arrays} == mtimes
    assert second.train == first.train and second.val == first.val
    assert [(s.path, s.reason) for s in second.skipped] == [(s.path, s.reason)
                                                            for s in first.skipped]
    monkeypatch.undo()
    entry = next(e for e in first.train + first.val if e.path.endswith("b.flac"))
    cached = AudioCache.open(entry)  # (2, S) memory-mapped
    assert isinstance(cached.base, np.memmap) or isinstance(cached, np.memmap)
    np.testing.assert_allclose(cached, audio_io.load(entry.path, SAMPLE_RATE)[0], atol=1e-6)


def test_scan_threads_agree_with_one(corpus_dir: Path, tmp_path: Path,
                                     corpus: corpus_mod.Corpus) -> None:
    one = scan(_cfg(corpus_dir, tmp_path / "one"), workers=1)
    many = scan(_cfg(corpus_dir, tmp_path / "many"), workers=4)
    for got in (one, many):  # same files, same order, same split, same skips as the default
        assert [(e.path, e.cutoff_hz, e.cached_frames) for e in got.train + got.val] == [
            (e.path, e.cutoff_hz, e.cached_frames) for e in corpus.train + corpus.val]
        assert [(s.path, s.reason) for s in got.skipped] == [(s.path, s.reason)
                                                             for s in corpus.skipped]
    for a, b in zip(one.train, many.train, strict=True):
        np.testing.assert_array_equal(AudioCache.open(a), AudioCache.open(b))


def test_scan_threads_default_to_the_usable_cores(corpus_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    real = corpus_mod.ThreadPoolExecutor

    def recording(n: int, **kw: object) -> object:
        sizes.append(n)
        return real(n, **kw)

    monkeypatch.setattr(corpus_mod, "ThreadPoolExecutor", recording)
    monkeypatch.setattr(corpus_mod, "usable_cores", lambda: 3)  # e.g. a cgroup quota of 3
    scan(_cfg(corpus_dir, tmp_path / "quota"))
    assert sizes == [3]


def test_new_detector_remeasures_cutoffs_but_keeps_the_arrays(
        corpus_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cached band limits from an older detector are measured again (a changed detector can
    move a file across the bandwidth threshold); the decoded arrays are not touched."""
    cfg = _cfg(corpus_dir, tmp_path / "cache")
    first = scan(cfg)
    arrays = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy")}

    def boom(*args: object, **kw: object) -> None:
        raise AssertionError("decoded again")

    measured: list[str] = []
    monkeypatch.setattr(audio_io, "iter_blocks", boom)
    monkeypatch.setattr(corpus_mod, "detect_cutoff_file",
                        lambda path: measured.append(path) or 2000.0)  # a detector that cuts all
    assert scan(cfg).train == first.train  # same detector version: nothing measured
    assert measured == []
    monkeypatch.setattr(corpus_mod, "DETECTOR_VERSION", corpus_mod.DETECTOR_VERSION + 1)
    second = scan(cfg)
    assert len(measured) == len(set(measured))  # each readable file measured again, once
    assert set(measured) >= {e.path for e in first.train + first.val}
    assert second.train == [] and second.val == []  # ... and now all low-band
    assert "low_bandwidth" in {s.category for s in second.skipped}
    assert {p: p.stat().st_mtime_ns for p in arrays} == arrays
    measured.clear()
    scan(cfg)
    assert measured == []  # the new measurements were stored


def test_cache_resumes_and_catches_late_nan(corpus_dir: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _cfg(corpus_dir, tmp_path / "cache")
    first = scan(cfg)
    victim = Path(first.train[0].cache_path)
    victim.write_bytes(victim.read_bytes()[:1000])  # an interrupted copy / disk trouble
    others = {p: p.stat().st_mtime_ns for p in (tmp_path / "cache").glob("*.npy") if p != victim}
    second = scan(cfg)
    assert second.train == first.train
    assert {p: p.stat().st_mtime_ns for p in others} == others
    assert np.load(victim, mmap_mode="r").shape[1] == first.train[0].cached_frames
    # NaN beyond what the band-limit check reads is found while caching, and reported
    monkeypatch.setattr(corpus_mod, "detect_cutoff_file", lambda path: 22050.0)
    late = scan(_cfg(corpus_dir, tmp_path / "fresh"))
    nan = next(s for s in late.skipped if s.path.endswith("nan.wav"))
    assert nan.category == "non_finite" and "NaN" in nan.reason
    assert not list((tmp_path / "fresh").glob(".*.part"))


def test_crops_shapes_levels_and_padding(corpus: corpus_mod.Corpus) -> None:
    cfg = DataConfig(folders=("unused",), crop_s=CROP_S, gain_db=(-3.0, 3.0))
    size = crop_samples(CROP_S)
    assert size == round(CROP_S * SAMPLE_RATE / 512) * 512
    ds = CropDataset(corpus.train, cfg, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(24):
        s = ds.sample(rng)
        assert s["hr"].shape == s["lr"].shape == (1, size)
        assert s["hr"].dtype == s["lr"].dtype == torch.float32
        hr = s["hr"][0].numpy()
        assert np.abs(hr).max() <= 0.99 + 1e-6 and np.isfinite(s["lr"].numpy()).all()
        level = active_rms_db(hr)
        assert level is not None and level <= -20.0 + 3.0 + 0.01
        assert level >= -20.0 - 3.0 - 0.01 or np.abs(hr).max() > 0.98  # peak-limited
        assert 1900.0 <= s["cutoff_hz"] <= 16000.0 and s["failed_crops"] == 0
    padded = [e for e in corpus.train + corpus.val if e.path.endswith("padded.wav")]
    short = CropDataset(padded, cfg).sample(rng)["hr"][0].numpy()
    assert np.count_nonzero(short == 0) >= size - padded[0].cached_frames


def _band_db(x: np.ndarray, lo: float, hi: float) -> float:
    """Mean power (dB) of x's spectrum between lo and hi Hz."""
    p = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.shape[0], 1.0 / SAMPLE_RATE)
    return float(10 * np.log10(p[(f >= lo) & (f < hi)].mean()))


@pytest.mark.parametrize("slope", [-4.0, 3.0, 6.0])
def test_spectral_tilt_is_flat_below_the_pivot_and_sloped_above(slope: float) -> None:
    noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 2).astype(np.float32)
    y = spectral_tilt(noise, slope, 1000.0)
    assert y.dtype == np.float32 and y.shape == noise.shape
    gain = {b: _band_db(y, *b) - _band_db(noise, *b)
            for b in [(100, 900), (1900, 2100), (3900, 4100), (15500, 16500)]}
    assert abs(gain[(100, 900)]) < 0.01
    assert gain[(1900, 2100)] == pytest.approx(slope * np.log2(2000 / 1000), abs=0.05)
    assert gain[(3900, 4100)] == pytest.approx(slope * 2, abs=0.05)  # two octaves up
    assert gain[(15500, 16500)] == pytest.approx(slope * 4, abs=0.05)


def test_tilted_crops_vary_in_brightness_within_the_range(corpus: corpus_mod.Corpus) -> None:
    plain = DataConfig(folders=("unused",), crop_s=CROP_S, gain_db=(0.0, 0.0))
    tilted = DataConfig(folders=("unused",), crop_s=CROP_S, gain_db=(0.0, 0.0), tilt_prob=1.0,
                        tilt_db_per_octave=(-6.0, 6.0), tilt_pivot_hz=(1000.0, 1000.0))
    entries = [e for e in corpus.train if e.path.endswith("a.wav")]  # one mono file
    rel = []
    for seed in range(6):  # same crop (position and channel) with and without the tilt
        a = CropDataset(entries, plain).sample(np.random.default_rng(seed))["hr"][0].numpy()
        b = CropDataset(entries, tilted).sample(np.random.default_rng(seed))["hr"][0].numpy()
        # the levels differ (each crop is levelled after its tilt); compare slopes 1 -> 8 kHz
        rel.append((_band_db(b, 7800, 8200) - _band_db(b, 400, 900))
                   - (_band_db(a, 7800, 8200) - _band_db(a, 400, 900)))
    assert all(-6.0 * 3 - 0.2 <= r <= 6.0 * 3 + 0.2 for r in rel)  # 3 octaves at <= 6 dB each
    assert max(rel) - min(rel) > 6.0  # random slopes, not one


def _take(ds: CropDataset, n: int, workers: int = 0) -> list[np.ndarray]:
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    out = []
    for i, s in enumerate(loader):
        out.append(s["hr"][0].numpy().copy())
        if i + 1 == n:
            break
    return out


def test_streams_differ_by_rank_worker_epoch_and_repeat(corpus: corpus_mod.Corpus) -> None:
    cfg = DataConfig(folders=("unused",), crop_s=1.0)
    r0 = _take(CropDataset(corpus.train, cfg, rank=0, world_size=2, seed=5), 3)
    r1 = _take(CropDataset(corpus.train, cfg, rank=1, world_size=2, seed=5), 3)
    assert not any(np.array_equal(a, b) for a in r0 for b in r1)
    again = _take(CropDataset(corpus.train, cfg, rank=0, world_size=2, seed=5), 3)
    assert all(np.array_equal(a, b) for a, b in zip(r0, again, strict=True))
    ds = CropDataset(corpus.train, cfg, rank=0, world_size=2, seed=5)
    ds.set_epoch(1)
    assert not np.array_equal(_take(ds, 1)[0], r0[0])
    two = _take(CropDataset(corpus.train, cfg, seed=5), 4, workers=2)  # w0, w1, w0, w1
    assert not np.array_equal(two[0], two[1])
    assert all(np.array_equal(a, b) for a, b in zip(two, _take(
        CropDataset(corpus.train, cfg, seed=5), 4, workers=2), strict=True))
    finite = CropDataset(corpus.train, cfg, seed=5, epoch_len=5)
    assert len(list(DataLoader(finite, batch_size=None, num_workers=2))) == 5


def test_failed_crops_are_counted(corpus: corpus_mod.Corpus, tmp_path: Path) -> None:
    broken = [corpus_mod.FileEntry(**{**corpus.train[0].__dict__,
                                    "cache_path": str(tmp_path / "gone.npy")})]
    cfg = DataConfig(folders=("unused",), crop_s=1.0)
    ds = CropDataset([*broken, *corpus.train], cfg)
    rng = np.random.default_rng(0)
    total = sum(ds.sample(rng)["failed_crops"] for _ in range(20))
    assert total == ds.counts["failed_crops"] > 0
    with pytest.raises(RuntimeError, match="crop attempts"):
        CropDataset(broken, cfg).sample(rng)


def test_validation_set_is_fixed(corpus: corpus_mod.Corpus, tmp_path: Path) -> None:
    cfg = DataConfig(folders=("unused",), crop_s=CROP_S, degrade=DegradeConfig())
    entries = corpus.train[:3]
    a = ValidationSet.build(entries, AudioCache(tmp_path), cfg, crops_per_file=2, max_crops=5)
    b = ValidationSet.build(entries, cfg, crops_per_file=2, max_crops=5)  # trainer's call form
    assert len(a) == len(b) == 5 * 3
    assert {it.cutoff_hz for it in a} == {4000.0, 8000.0, 11025.0}
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.lr, y.lr)
        assert x.hr.shape == (crop_samples(CROP_S),)
        assert abs(active_rms_db(x.hr) + 20.0) < 0.01 or np.abs(x.hr).max() > 0.98
    first = [it for it in a if it.path == a.items[0].path and it.start_s == a.items[0].start_s]
    assert [it.hr is first[0].hr for it in first] == [True] * 3  # same crop at every cutoff
    assert len(ValidationSet.build([], cfg)) == 0


@pytest.mark.parametrize(("field", "value"), [
    ("crop_s", 0.1), ("min_bandwidth_hz", 30000.0), ("val_fraction", 1.0), ("val_files", -1),
    ("gain_db", (6.0, -6.0)), ("mixdown_prob", 2.0), ("target_rms_db", 0.0), ("folders", "x"),
    ("tilt_prob", 1.5), ("tilt_db_per_octave", (3.0, -3.0)), ("tilt_db_per_octave", (0, 20)),
    ("tilt_pivot_hz", (10.0, 1000.0)), ("tilt_pivot_hz", (2000.0, 1000.0)),
])
def test_config_errors_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        DataConfig(**{"folders": ("a",), field: value})


def test_config_from_plain_data() -> None:
    cfg = DataConfig(folders=["a", "b"], gain_db=[-3, 3],
                     degrade={"named_prob": 0.2, "iir_orders": [4, 8]})
    assert cfg.folders == ("a", "b") and cfg.gain_db == (-3, 3)
    assert cfg.degrade == DegradeConfig(named_prob=0.2, iir_orders=(4, 8))
    assert hash(cfg)  # frozen and hashable again


def test_validation_spreads_over_files(corpus: corpus_mod.Corpus) -> None:
    entries = sorted(corpus.train, key=lambda e: e.path)
    cfg = DataConfig(folders=("unused",), crop_s=CROP_S)
    val = ValidationSet.build(entries, cfg, crops_per_file=2, max_crops=4, cutoffs_hz=(8000.0,))
    paths = [e.path for e in entries]
    used = sorted({paths.index(item.path) for item in val})
    # the 4 crops come from files spread over the sorted list, not from its first two files
    # (a corpus sorted by category would otherwise validate on one category alone)
    assert len(val) == 4 and used[0] == 0 and used[-1] >= len(entries) // 2


def test_group_exponent_evens_out_top_level_folders(corpus: corpus_mod.Corpus) -> None:
    from engine.training.data import file_weights

    # the fixture's files sit in "" (top level) and "sub" (c.wav, deep/d.flac)
    entries = corpus.train + corpus.val
    assert {e.group for e in entries} == {"", "sub"}
    frames = np.array([e.cached_frames for e in entries], np.float64)
    in_sub = np.array([e.group == "sub" for e in entries])
    by_duration = file_weights(entries, 1.0)
    np.testing.assert_allclose(by_duration, frames / frames.sum())
    equal = file_weights(entries, 0.0)
    np.testing.assert_allclose([equal[in_sub].sum(), equal[~in_sub].sum()], [0.5, 0.5])
    # within a folder, files keep their duration ratio
    sub = frames[in_sub]
    np.testing.assert_allclose(equal[in_sub] / equal[in_sub].sum(), sub / sub.sum())
    half = file_weights(entries, 0.5)
    share = np.sqrt(sub.sum()) / (np.sqrt(sub.sum()) + np.sqrt(frames[~in_sub].sum()))
    np.testing.assert_allclose(half[in_sub].sum(), share)
    crops = CropDataset(entries, DataConfig(folders=("x",), crop_s=CROP_S, group_exponent=0.0))
    np.testing.assert_allclose(np.diff(crops._cum, prepend=0.0), equal)  # what sample() draws
    with pytest.raises(ValueError, match="group_exponent"):
        DataConfig(folders=("x",), group_exponent=1.5)

"""scripts/build_corpus.py on synthetic packages in tmp_path (no apt, no network)."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio.cutoff import detect_cutoff_file
from tests.engine.conftest import lowpass, synth_clip

RATE = 44100
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "build_corpus.py"
COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: someone
License: GPL-2+

Files: sounds/*.ogg
 sounds/extra/*
Copyright: someone else
License: CC-BY-SA-3.0

Files: debian/*
Copyright: packager
License: GPL-2+
"""


def _load_script():
    spec = importlib.util.spec_from_file_location("build_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_corpus"] = module
    spec.loader.exec_module(module)
    return module


bc = _load_script()


def _write(path: Path, x: np.ndarray, subtype: str = "PCM_16", fmt: str = "WAV") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.T if x.ndim == 2 else x, RATE, format=fmt, subtype=subtype)
    return path


def _gated_tone_with_hiss(seconds: float) -> np.ndarray:
    """Tone bursts below 8 kHz switched on and off, over a steady 10-20 kHz noise bed."""
    rng = np.random.default_rng(3)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    tone = sum(np.sin(2 * np.pi * f * t) for f in (300.0, 1200.0, 4000.0, 7000.0)) / 4
    gate = (t % 0.5) < 0.25
    noise = lowpass(rng.standard_normal(n), 20000.0) - lowpass(rng.standard_normal(n), 10000.0)
    return (0.5 * tone * gate + 0.003 * noise).astype(np.float32)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, Path]:
    """A fake extracted package `<work>/x/pkg` with full-band, low-passed, short and OGG files."""
    work = tmp_path / "work"
    root = work / "x" / "pkg"
    (root / "usr/share/doc/pkg").mkdir(parents=True)
    (root / "usr/share/doc/pkg/copyright").write_text(COPYRIGHT)
    snd = root / "usr/share/snd"
    for i in range(6):
        _write(snd / f"music/full_{i}.wav", synth_clip(2.0 + 0.25 * i, seed=i))
    stereo = np.stack([synth_clip(1.5, seed=10), synth_clip(1.5, seed=11)])
    _write(snd / "music/full_24bit.wav", stereo, subtype="PCM_24")
    _write(snd / "music/lowpassed.wav", lowpass(synth_clip(2.0, seed=20), 11000.0))
    _write(snd / "music/short.wav", synth_clip(0.5, seed=21))
    rng = np.random.default_rng(0)
    for i in range(3):
        noise = (0.1 * rng.standard_normal((2, RATE * 2))).astype(np.float32)
        _write(snd / f"fx/noise_{i}.ogg", noise, subtype="VORBIS", fmt="OGG")
    return work, root


def _sources() -> list:
    return [bc.Source("pkg-music", "pkg", "1.0", "music", ("usr/share/snd/music/*.wav",)),
            bc.Source("pkg-fx", "pkg", "1.0", "effects", ("usr/share/snd/*.ogg",),
                      licence_path=("^usr/share/snd/fx/", "sounds/"))]


def _fetch(package: str, version: str, work: Path) -> Path:
    return work / "x" / package


def _build(work: Path, out: Path, **kwargs):
    settings = bc.Settings(shard_mb=kwargs.pop("shard_mb", 0.6), min_val_files=1)
    return bc.build(_sources(), work, out, settings, jobs=1, fetch_fn=_fetch, **kwargs)


def test_full_band_kept_and_lowpassed_rejected_with_its_cutoff(package):
    _, root = package
    settings = bc.Settings()
    full = str(root / "usr/share/snd/music/full_0.wav")
    low = str(root / "usr/share/snd/music/lowpassed.wav")
    m_full = bc.measure_file(full, settings.segment_s, settings.max_segments)
    m_low = bc.measure_file(low, settings.segment_s, settings.max_segments)
    assert bc.rejection(m_full, settings) is None
    assert bc.rejection(m_low, settings) == "low_bandwidth"
    assert abs(m_low["cutoff_hz"] - 11000.0) < 500.0
    for path, m in ((full, m_full), (low, m_low)):  # the same number detect_cutoff_file gives
        assert m["cutoff_hz"] == pytest.approx(
            detect_cutoff_file(path, settings.max_segments, settings.segment_s), abs=1e-6)


def test_short_silent_and_steady_hiss_are_rejected(tmp_path):
    settings = bc.Settings()
    cases = {"short": (synth_clip(0.5), "too_short"),
             "silent": (np.zeros(RATE * 2, np.float32), "silent"),
             "hiss": (_gated_tone_with_hiss(3.0), "hf_steady_hiss")}
    for name, (x, reason) in cases.items():
        path = _write(tmp_path / f"{name}.wav", x)
        m = bc.measure_file(str(path), settings.segment_s, settings.max_segments)
        assert bc.rejection(m, settings) == reason, (name, m)


def test_hf_drop_flags_a_spectrum_that_collapses_above_the_cutoff():
    flat = [0.0] * 10 + [-40.0] * 12  # 1 kHz bands 0..21 kHz
    assert bc.hf_drop_db(flat, 18000.0) == pytest.approx(0.0)
    collapsed = [*flat[:17], -120.0, -120.0, -120.0, -120.0, -120.0]
    assert bc.hf_drop_db(collapsed, 18000.0) == pytest.approx(80.0)
    assert bc.hf_drop_db(flat[:16], 18000.0) > 100  # a 32 kHz file has no 18-20 kHz at all


def test_split_is_by_file_deterministic_and_independent_of_the_rest():
    source = bc.Source("s", "pkg", "1", "speech", ("*",))
    names = [f"usr/share/a/{i:04d}.ogg" for i in range(2000)]
    first = [bc.Candidate(source, n, n) for n in names]
    bc.assign_splits(first, 0.05)
    again = [bc.Candidate(source, n, n) for n in reversed(names[::3])]
    bc.assign_splits(again, 0.05)
    by_name = {c.rel: c.split for c in first}
    assert all(by_name[c.rel] == c.split for c in again)
    n_val = sum(c.split == "val" for c in first)
    assert 0.03 * len(names) < n_val < 0.07 * len(names)

    few = [bc.Candidate(source, n, n) for n in names[:10]]
    bc.assign_splits(few, 0.0)
    for c in few:
        c.reason = None if c.rel.endswith(("1.ogg", "3.ogg", "5.ogg", "7.ogg")) else "too_short"
    promoted = bc.promote_val(few, 3)
    assert len(promoted) == 3 and all(c.reason is None and c.split == "val" for c in promoted)
    ranked = sorted((c for c in few if c.reason is None), key=lambda c: bc.unit_hash(c.key))
    assert promoted == ranked[:3]


def test_build_shards_round_trip_and_manifest_totals(package, tmp_path):
    work, root = package
    out = tmp_path / "out"
    man = _build(work, out)
    limit = int(0.6e6)
    shards = sorted(out.glob("*.tar"))
    assert [s.name for s in shards] == sorted(s["name"] for s in man["shards"])
    assert len([s for s in shards if s.name.startswith("train-")]) >= 2
    assert all(s.stat().st_size <= limit for s in shards)
    members = {}
    for shard in shards:
        with tarfile.open(shard) as tar:
            for info in tar.getmembers():
                members[info.name] = (shard.name, tar.extractfile(info).read())
    snd = root / "usr/share/snd"
    _, data = members["music/pkg-music/snd/music/full_24bit.flac"]
    decoded, rate = sf.read(io.BytesIO(data), dtype="int32", always_2d=True)
    source, _ = sf.read(snd / "music/full_24bit.wav", dtype="int32", always_2d=True)
    assert rate == RATE and sf.info(io.BytesIO(data)).subtype == "PCM_24"
    np.testing.assert_array_equal(decoded, source)
    _, data = members["music/pkg-music/snd/music/full_0.flac"]
    assert sf.info(io.BytesIO(data)).subtype == "PCM_16"
    np.testing.assert_array_equal(sf.read(io.BytesIO(data), dtype="int32")[0],
                                  sf.read(snd / "music/full_0.wav", dtype="int32")[0])
    for i in range(3):
        _, data = members[f"effects/pkg-fx/snd/fx/noise_{i}.ogg"]
        assert data == (snd / f"fx/noise_{i}.ogg").read_bytes()
    assert not any("lowpassed" in n or "short" in n for n in members)

    music, fx = man["sources"]["pkg-music"], man["sources"]["pkg-fx"]
    assert music["files_found"] == 9 and music["files_kept"] == 7
    assert music["rejected"] == {"low_bandwidth": 1, "too_short": 1}
    assert fx["files_kept"] == 3 and fx["licence"] == "CC-BY-SA-3.0"
    assert music["licence"] == "GPL-2+"
    for v in man["sources"].values():
        assert v["files_kept"] + sum(v["rejected"].values()) == v["files_measured"]
    assert sum(sum(v["files_kept_per_split"].values()) for v in man["sources"].values()) == \
        len(members) == sum(s["files"] for s in man["shards"])
    for category, v in man["categories"].items():
        rows = [s for s in man["sources"].values() if s["category"] == category]
        for split in ("train", "val"):
            assert v["minutes_kept_per_split"][split] == pytest.approx(
                sum(r["minutes_kept_per_split"][split] for r in rows), abs=0.02)
        assert v["files_kept_per_split"]["val"] >= 1  # min_val_files
    total_min = sum(man["totals"]["minutes_kept_per_split"].values())
    assert total_min == pytest.approx(sum(s["minutes"] for s in man["shards"]), abs=0.05)
    val_names = {n for n, (shard, _) in members.items() if shard.startswith("val-")}
    assert len(val_names) == man["totals"]["files_kept_per_split"]["val"]
    index = [json.loads(line) for line in (out / "files.jsonl").read_text().splitlines()]
    assert {r["member"]: r["shard"] for r in index} == {n: sh for n, (sh, _) in members.items()}
    written = json.loads((out / "manifest.json").read_text())
    assert written["totals"] == man["totals"]
    assert "| music |" in (out / "manifest.md").read_text()

    again = _build(work, tmp_path / "again")  # reproducible: same shards, byte for byte
    assert [s["bytes"] for s in again["shards"]] == [s["bytes"] for s in man["shards"]]
    for s in man["shards"]:
        assert (tmp_path / "again" / s["name"]).read_bytes() == (out / s["name"]).read_bytes()


def test_subset_takes_files_within_budget_and_splits_like_the_full_build(package, tmp_path):
    work, _ = package
    full = _build(work, tmp_path / "full")
    subset = _build(work, tmp_path / "subset", max_minutes=0.05)  # 3 s per category
    for category, v in subset["categories"].items():
        kept = v["files_kept_per_split"]
        assert 1 <= kept["train"] <= 2, category
        assert kept["train"] <= full["categories"][category]["files_kept_per_split"]["train"]

    def split_of(out: Path) -> dict[str, str]:
        splits = {}
        for shard in out.glob("*.tar"):
            with tarfile.open(shard) as tar:
                splits.update({name: shard.name.split("-")[0] for name in tar.getnames()})
        return splits

    full_splits, subset_splits = split_of(tmp_path / "full"), split_of(tmp_path / "subset")
    assert subset_splits and all(full_splits[n] == s for n, s in subset_splits.items())


def test_sources_file_licence_and_language_filter(tmp_path):
    sources = bc.load_sources(SCRIPT.with_name("corpus_sources.toml"))
    assert {s.category for s in sources} == {"speech", "music", "effects", "instruments"}
    paragraphs = bc.parse_copyright(COPYRIGHT)
    assert paragraphs[1] == (["sounds/*.ogg", "sounds/extra/*"], "CC-BY-SA-3.0")
    assert bc.licence_of("sounds/extra/a.wav", paragraphs) == "CC-BY-SA-3.0"  # last match wins
    assert bc.licence_of("usr/share/a.wav", paragraphs) == "GPL-2+"
    kit = ("^usr/share/kits/(.+?)(?: v[0-9]+)?/.*$", "sounds/extra/\\1.kit")
    assert bc.licence_of("usr/share/kits/Big Kit v4/kick.wav", paragraphs, kit) == "CC-BY-SA-3.0"
    root = tmp_path / "pkg"
    for name in ("cat_desc.ogg", "cat_desc_fr.ogg", "cat_desc_pt_BR.wav", "cat.ogg"):
        (root / "stamps").mkdir(parents=True, exist_ok=True)
        (root / "stamps" / name).write_bytes(b"")
    speech = next(s for s in sources if s.language_pattern)
    source = bc.Source("s", "pkg", "1", "speech", ("stamps/*_desc*",),
                       language_pattern=speech.language_pattern, languages=("en", "pt_BR"))
    files, n_dropped = bc.find_files(source, root)
    assert sorted(Path(c.rel).name for c in files) == ["cat_desc.ogg", "cat_desc_pt_BR.wav"]
    assert n_dropped == 1


def test_audio_inside_a_zip_archive_is_unpacked_and_found(tmp_path):
    import zipfile

    root = tmp_path / "pkg"
    (root / "usr/share/doc/pkg").mkdir(parents=True)
    (root / "usr/share/doc/pkg/copyright").write_text(COPYRIGHT)
    wav = tmp_path / "hit.wav"
    _write(wav, synth_clip(1.0, seed=3))
    zpath = root / "usr/share/game/public.zip"
    zpath.parent.mkdir(parents=True)
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(wav, "audio/attack/hit.wav")
        z.write(wav, "audio/voice/hello.wav")
        z.writestr("art/readme.txt", "not audio")
        z.write(wav, "../escape.wav")  # must land inside the unpack folder
    source = bc.Source("fx", "pkg", "1", "effects", ("usr/share/game/public.zip.d/audio/attack/*",),
                       archives=("usr/share/game/public.zip",))
    bc.unpack_archives(source, root)
    bc.unpack_archives(source, root)  # a second run reuses the unpacked folder
    files, _ = bc.find_files(source, root)
    assert [c.rel for c in files] == ["usr/share/game/public.zip.d/audio/attack/hit.wav"]
    assert not (tmp_path / "escape.wav").exists() and not (root / "usr/share/escape.wav").exists()
    assert not (root / "usr/share/game/public.zip.d/art").exists()  # only audio is unpacked
    missing = bc.Source("fx2", "pkg", "1", "effects", ("*",), archives=("nope.zip",))
    with pytest.raises(SystemExit, match=r"nope\.zip"):
        bc.unpack_archives(missing, root)


def test_or_later_grant_in_the_licence_text_is_named_with_plus():
    text = """Files: *
Copyright: a
License: GPL-2

Files: extra/*
Copyright: b
License: GPL-2
 This program is free software; you can redistribute it under the terms of the GNU General
 Public License version 2 only.

Files: gnu/*
Copyright: c
License: LGPL-2.1

License: GPL-2
 This package is free software; you can redistribute it and/or modify it under the terms of
 the GNU General Public License as published by the Free Software Foundation; either version 2
 of the License, or (at your option) any later version.
"""
    paragraphs = bc.parse_copyright(text)
    assert [p[1] for p in paragraphs] == ["GPL-2+", "GPL-2", "LGPL-2.1"]  # own text wins
    assert bc.licence_of("a.ogg", paragraphs) == "GPL-2+"
    assert bc.parse_copyright(COPYRIGHT)[0][1] == "GPL-2+"  # already "+": unchanged


def test_licence_policy_expressions():
    gpl3 = bc.LICENCE_POLICIES["gpl3"]
    assert bc.licence_allowed("GPL-2+", gpl3) and bc.licence_allowed("CC0", gpl3)
    assert not bc.licence_allowed("CC-BY-SA-3.0", gpl3)
    assert not bc.licence_allowed("GPL-2", gpl3)  # version 2 only: not GPL-3 compatible
    assert bc.licence_allowed("CC-BY-SA-3.0 or GPL-2+", gpl3)  # either option will do
    assert not bc.licence_allowed("GPL-2+ and CC-BY-SA-3.0", gpl3)  # both must fit
    assert bc.licence_allowed("anything at all", bc.LICENCE_POLICIES["any"])


def test_licence_policy_build_sets_files_aside_and_reports_them(package, tmp_path):
    work, _ = package
    settings = bc.Settings(shard_mb=0.6, min_val_files=1, licences="gpl3")
    man = bc.build(_sources(), work, tmp_path / "out", settings, jobs=1, fetch_fn=_fetch)
    fx = man["sources"]["pkg-fx"]
    assert fx["rejected"]["licence_filter"] == 3 and fx["files_kept"] == 0
    assert fx["licences_of_found_files"] == {"CC-BY-SA-3.0": 3}
    assert man["sources"]["pkg-music"]["files_kept"] > 0
    rows = [json.loads(line) for line in (tmp_path / "out/files.jsonl").read_text().splitlines()]
    assert rows and {r["licence"] for r in rows} == {"GPL-2+"}
    assert man["settings"]["licences"] == "gpl3"
    assert "Licence policy `gpl3`" in bc.manifest_markdown(man)


rm = bc.render_midi  # scripts/render_midi.py, as build_corpus imports it


def _read_smf(data: bytes) -> tuple[int, list[tuple[int, int, int]]]:
    """Minimal SMF reader: (ticks per beat, [(absolute tick, status, key)] of channel events)."""
    assert data[:4] == b"MThd" and int.from_bytes(data[8:10], "big") == 0
    division = int.from_bytes(data[12:14], "big")
    assert data[14:18] == b"MTrk"
    end = 22 + int.from_bytes(data[18:22], "big")
    assert end == len(data)
    i, tick, events = 22, 0, []
    while i < end:
        delta = 0
        while True:
            b = data[i]
            i += 1
            delta = (delta << 7) | (b & 0x7F)
            if b < 0x80:
                break
        tick += delta
        status = data[i]
        if status == 0xFF:  # meta: type, length (< 128 here), payload
            i += 3 + data[i + 2]
        elif status & 0xF0 == 0xC0:
            events.append((tick, status, data[i + 1]))
            i += 2
        else:
            events.append((tick, status, data[i + 1]))
            i += 3
    return division, events


def test_midi_pieces_are_deterministic_valid_and_balanced():
    notes, program, tempo = rm.compose(5, seed=1)
    assert program == 5 and 60 <= tempo <= 160 and notes
    assert rm.compose(5, seed=1) == (notes, program, tempo)
    assert rm.compose(5, seed=2) != (notes, program, tempo)
    division, events = _read_smf(rm.write_smf(notes, program, tempo))
    assert division == rm.TICKS_PER_BEAT
    assert events[0][1:] == (0xC0, 5)  # program change first
    ons = [e for e in events if e[1] & 0xF0 == 0x90]
    offs = [e for e in events if e[1] & 0xF0 == 0x80]
    assert len(ons) == len(offs) == len(notes)
    assert [t for t, _, _ in events] == sorted(t for t, _, _ in events)
    drums, drum_program, _ = rm.compose(rm.DRUM_EVERY - 1)
    assert drum_program is None and all(n.channel == rm.DRUM_CHANNEL for n in drums)
    _, drum_events = _read_smf(rm.write_smf(drums, None, 120.0))
    assert not any(e[1] & 0xF0 == 0xC0 for e in drum_events)  # the kit: no program change
    effects = [rm.compose(i, seed=1, programs=(120, 127))[1] for i in range(rm.DRUM_EVERY)]
    assert effects == [120, 127] * (rm.DRUM_EVERY // 2)  # listed programs only, no grooves


def _fake_render(soundfont: Path, midi: Path, wav: Path) -> None:
    """Stands in for fluidsynth: full-band noise as long as the MIDI file is many bytes."""
    assert soundfont.is_file() and midi.read_bytes()[:4] == b"MThd"
    seconds = 1.5 + len(midi.read_bytes()) % 7 / 10
    rng = np.random.default_rng(len(midi.read_bytes()))
    sf.write(wav, (0.1 * rng.standard_normal((round(seconds * RATE), 2))).astype(np.float32), RATE)


def test_rendered_source_is_built_with_its_licence(tmp_path):
    work = tmp_path / "work"
    (work / "x/sfpkg/usr/share/sf2").mkdir(parents=True)
    (work / "x/sfpkg/usr/share/sf2/kit.sf2").write_bytes(b"RIFF")
    source = bc.Source("renders", "sfpkg", "1", "instruments", ("rendered/renders/*.flac",),
                       licence="MIT", soundfont="usr/share/sf2/kit.sf2", render_midi=4)
    settings = bc.Settings(shard_mb=0.6, min_val_files=1, licences="gpl3")
    man = bc.build([source], work, tmp_path / "out", settings, jobs=1, fetch_fn=_fetch,
                   render_fn=_fake_render)
    rendered = sorted((work / "x/sfpkg/rendered/renders").glob("*.flac"))
    assert [p.name[:10] for p in rendered] == [f"piece_000{i}" for i in range(4)]
    assert man["sources"]["renders"]["files_kept"] == 4
    assert man["sources"]["renders"]["licences_of_found_files"] == {"MIT": 4}
    mtimes = [p.stat().st_mtime_ns for p in rendered]
    bc.build([source], work, tmp_path / "out2", settings, jobs=1, fetch_fn=_fetch,
             render_fn=lambda *a: pytest.fail("rendered again"))
    assert [p.stat().st_mtime_ns for p in rendered] == mtimes
    with pytest.raises(ValueError, match="soundfont"):
        bc.Source("r", "p", "1", "instruments", ("*",), render_midi=2)

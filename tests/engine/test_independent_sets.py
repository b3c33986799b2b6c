"""scripts/independent_mixed.py: a held-out set from the files the trained corpus left out."""

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

from tests.engine.conftest import lowpass

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "independent_mixed.py"


def _load():
    spec = importlib.util.spec_from_file_location("independent_mixed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _audio(member: str) -> bytes:
    """Half a second of full-band noise, or of noise low-passed at 11 kHz ("dull" files)."""
    x = 0.1 * np.random.default_rng(len(member)).standard_normal(22050)
    if "dull" in member:
        x = lowpass(x, 11000.0)
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), 44100, format="FLAC")
    return buf.getvalue()


def _corpus(root: Path, rows: list[dict]) -> None:
    root.mkdir(parents=True)
    with open(root / "files.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with tarfile.open(root / "train-000.tar", "w") as tar:
        for r in rows:
            data = _audio(r["member"])
            info = tarfile.TarInfo(r["member"])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_picks_only_untrained_full_band_files_spread_per_category(tmp_path, monkeypatch,
                                                                  capsys):
    mod = _load()
    rows = [{"member": f"{cat}/pkg/f{i:02d}{'dull' if (cat, i) == ('music', 5) else ''}.flac",
             "shard": "train-000", "licence": "CC-BY-3.0", "duration_s": 0.5 if i == 1 else 3.0}
            for cat in ("effects", "instruments", "music", "speech") for i in range(20)]
    trained = [r for r in rows if "f00" in r["member"] or "f02" in r["member"]]
    _corpus(tmp_path / "all", rows)
    _corpus(tmp_path / "gpl3", trained)
    monkeypatch.setattr(sys, "argv", ["x", str(tmp_path / "all"), str(tmp_path / "gpl3"),
                                      str(tmp_path / "out")])
    mod.main()
    out = capsys.readouterr().out
    assert "kept 24 files" in out and "f05dull.flac: band ends at" in out
    for cat in ("effects", "instruments", "music"):
        got = sorted(p.name.rsplit("_", 1)[1] for p in (tmp_path / "out" / cat).iterdir())
        assert len(got) == mod.PER_CATEGORY
        assert not {"f00.flac", "f01.flac", "f02.flac"} & set(got)  # trained, too short
        assert got[-1] >= "f16.flac"  # spread over the list, not its first eight
    # the dull file's place goes to the first one not yet taken (f04, between f03 and f05)
    music = sorted(p.name.rsplit("_", 1)[1] for p in (tmp_path / "out" / "music").iterdir())
    assert "f05dull.flac" not in music and "f04.flac" in music
    assert not (tmp_path / "out" / "speech").exists()


def test_a_second_set_leaves_out_the_first_and_the_excluded(tmp_path, monkeypatch, capsys):
    mod = _load()
    rows = [{"member": f"{cat}/pkg/f{i:02d}.flac", "shard": "train-000", "licence": "GPL-2",
             "duration_s": 3.0} for cat in ("effects", "instruments", "music") for i in range(40)]
    _corpus(tmp_path / "all", rows)
    _corpus(tmp_path / "gpl3", rows[:1])
    held = tmp_path / "val" / "music" / "pkg"  # a validation split keeps the corpus's paths
    held.mkdir(parents=True)
    (held / "f09.flac").write_bytes(b"")  # else the 3rd pick
    base = ["x", str(tmp_path / "all"), str(tmp_path / "gpl3")]
    monkeypatch.setattr(sys, "argv", [*base, str(tmp_path / "one")])
    mod.main()
    monkeypatch.setattr(sys, "argv", [*base, str(tmp_path / "two"), "--per-category", "10",
                                      "--offset", "0.5", "--exclude", str(tmp_path / "one"),
                                      str(tmp_path / "val")])
    mod.main()
    assert "kept 30 files" in capsys.readouterr().out
    for cat in ("effects", "instruments", "music"):
        one = {p.name for p in (tmp_path / "one" / cat).iterdir()}
        two = {p.name for p in (tmp_path / "two" / cat).iterdir()}
        assert len(one) == 8 and len(two) == 10 and not one & two
    assert "music_pkg_f09.flac" not in {p.name for p in (tmp_path / "two" / "music").iterdir()}
    monkeypatch.setattr(sys, "argv", [*base, str(tmp_path / "bad"), "--offset", "1"])
    with pytest.raises(SystemExit):
        mod.main()

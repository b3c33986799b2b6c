"""scripts/independent_mixed.py: a held-out set from the files the trained corpus left out."""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "independent_mixed.py"


def _load():
    spec = importlib.util.spec_from_file_location("independent_mixed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _corpus(root: Path, rows: list[dict]) -> None:
    root.mkdir(parents=True)
    with open(root / "files.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    with tarfile.open(root / "train-000.tar", "w") as tar:
        for r in rows:
            data = r["member"].encode()  # stands in for the audio bytes
            info = tarfile.TarInfo(r["member"])
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_picks_only_untrained_long_files_spread_per_category(tmp_path, monkeypatch, capsys):
    mod = _load()
    rows = [{"member": f"{cat}/pkg/f{i:02d}.ogg", "shard": "train-000", "licence": "CC-BY-3.0",
             "duration_s": 0.5 if i == 1 else 3.0}
            for cat in ("effects", "instruments", "music", "speech") for i in range(20)]
    trained = [r for r in rows if r["member"].endswith(("f00.ogg", "f02.ogg"))]
    _corpus(tmp_path / "all", rows)
    _corpus(tmp_path / "gpl3", trained)
    monkeypatch.setattr(sys, "argv", ["x", str(tmp_path / "all"), str(tmp_path / "gpl3"),
                                      str(tmp_path / "out")])
    mod.main()
    assert "kept 24 files" in capsys.readouterr().out
    for cat in ("effects", "instruments", "music"):
        got = sorted(p.name for p in (tmp_path / "out" / cat).iterdir())
        assert len(got) == mod.PER_CATEGORY
        names = [g.rsplit("_", 1)[1] for g in got]
        assert not {"f00.ogg", "f01.ogg", "f02.ogg"} & set(names)  # trained, too short
        assert names[-1] >= "f16.ogg"  # spread over the list, not its first eight
        path = tmp_path / "out" / cat / got[0]
        assert path.read_bytes().decode() == got[0].replace("_", "/")  # the member's bytes
    assert not (tmp_path / "out" / "speech").exists()

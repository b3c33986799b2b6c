"""Collect a held-out speech set no model here trains on: hedgewars-data's full-band voices.

    apt-get download hedgewars-data=1.0.2-6 && dpkg-deb -x hedgewars-data_*.deb pkg
    python scripts/independent_speech.py pkg /tmp/hwval    # -> /tmp/hwval/speech/*.ogg
    jatsr eval /tmp/hwval --model default --out docs/eval/hedgewars-voices

The voices are GFDL-1.3, so the corpus's licence policy keeps them out of training (the model
is redistributed); scoring on them redistributes nothing. Unlike the Vorbis speech the corpus
does hold (tuxpaint, 4-28 % of its 10-20 kHz bins zeroed), the kept clips are whole-band and
nearly free of encoder holes: detected cutoff >= 19 kHz, < 2 % holes
(`engine.metrics.hole_share`), >= 0.5 s. Two voice packs pass: Default_ru and HillBilly.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import soundfile as sf

from engine.audio.cutoff import detect_cutoff_file
from engine.metrics import hole_share

VOICES = "usr/share/games/hedgewars/Data/Sounds/voices"
MIN_CUTOFF_HZ, MAX_HOLES, MIN_SECONDS = 19000.0, 0.02, 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", type=Path, help="hedgewars-data unpacked (dpkg-deb -x)")
    parser.add_argument("out", type=Path, help="written as OUT/speech/<pack>_<clip>.ogg")
    args = parser.parse_args()
    dest = args.out / "speech"
    dest.mkdir(parents=True, exist_ok=True)
    kept = seen = 0
    for path in sorted((args.package_dir / VOICES).glob("*/*.ogg")):
        seen += 1
        x, rate = sf.read(path, always_2d=True)  # (S, Ch)
        if rate != 44100 or x.shape[0] < MIN_SECONDS * rate:
            continue
        if detect_cutoff_file(path) < MIN_CUTOFF_HZ or hole_share(x.T, 10000, 20000) >= MAX_HOLES:
            continue
        shutil.copyfile(path, dest / f"{path.parent.name}_{path.name}")
        kept += 1
    print(f"kept {kept} of {seen} voice clips in {dest}")


if __name__ == "__main__":
    main()

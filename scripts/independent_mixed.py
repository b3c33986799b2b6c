"""Collect a held-out effects / instruments / music set no shipped model trains on.

    python scripts/build_corpus.py ... --out /work/corpus5              # every allowed licence
    python scripts/build_corpus.py ... --licences gpl3 --out /work/corpus5_gpl3
    python scripts/independent_mixed.py /work/corpus5 /work/corpus5_gpl3 /tmp/indep
    jatsr eval /tmp/indep --model default --seconds 10 --out docs/eval/independent-mixed

The shipped models train on the GPL-3-compatible subset of the corpus only, so the all-licence
corpus's other files (CC-BY, CC-BY-SA, GPL-2-only: 0 A.D., Minetest, SuperTuxKart,
Hedgewars' music, Hydrogen's drum kits) were never trained on, whichever split they sit in.
Eight files of at least 2 s per category are taken evenly from the sorted list (the same
files on every run), each copied as CATEGORY/<member with / as _>; a file whose band the
cutoff detector finds ending below 18 kHz (the corpus's target rule), in the whole file or in
the centred 10 s `jatsr eval` scores by default, is replaced by the next one in the list
(the corpus measured only its start). Speech is left out:
the only speech among them is hedgewars' voices, which `scripts/independent_speech.py`
already selects more carefully.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from pathlib import Path

from engine.audio.cutoff import detect_cutoff, detect_cutoff_file
from engine.audio.io import load

CATEGORIES = ("effects", "instruments", "music")
PER_CATEGORY, MIN_SECONDS, MIN_CUTOFF_HZ, EXCERPT_S = 8, 2.0, 18000.0, 10.0


def _rows(corpus: Path) -> list[dict]:
    with open(corpus / "files.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def candidates(all_rows: list[dict], trained: set[str], per_category: int = PER_CATEGORY
               ) -> dict[str, list[dict]]:
    """Per category, the untrained rows of files >= MIN_SECONDS in the order they are tried:
    `per_category` spread evenly over the sorted list first, then the rest in list order."""
    free = sorted((r for r in all_rows if r["member"] not in trained
                   and r["duration_s"] >= MIN_SECONDS), key=lambda r: r["member"])
    order = {}
    for cat in CATEGORIES:
        rows = [r for r in free if r["member"].split("/", 1)[0] == cat]
        first = rows[:: max(1, len(rows) // per_category)][:per_category]
        order[cat] = first + [r for r in rows if r not in first]
    return order


def _band_limit(path: Path) -> float:
    """The lower of the whole file's detected cutoff and its centred EXCERPT_S excerpt's."""
    audio, rate = load(path)  # (Ch, S)
    half = min(audio.shape[1], round(EXCERPT_S * rate)) // 2
    mid = audio.shape[1] // 2
    return min(detect_cutoff_file(path), detect_cutoff(audio[:, mid - half : mid + half], rate))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("all_corpus", type=Path, help="corpus of every allowed licence")
    parser.add_argument("trained_corpus", type=Path, help="the corpus the model trained on")
    parser.add_argument("out", type=Path, help="written as OUT/<category>/<file>")
    args = parser.parse_args()
    trained = {r["member"] for r in _rows(args.trained_corpus)}
    tars: dict[str, tarfile.TarFile] = {}
    kept = []
    try:
        for cat, rows in candidates(_rows(args.all_corpus), trained).items():
            taken = 0
            for r in rows:
                if taken == PER_CATEGORY:
                    break
                name = r["shard"] if r["shard"].endswith(".tar") else f"{r['shard']}.tar"
                tar = tars.get(name) or tars.setdefault(name, tarfile.open(args.all_corpus / name))
                src = tar.extractfile(r["member"])
                if src is None:
                    raise SystemExit(f"{r['member']}: not a file in {name}")
                dest = args.out / cat / r["member"].replace("/", "_")
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(src.read())
                cutoff = _band_limit(dest)
                if cutoff < MIN_CUTOFF_HZ:
                    dest.unlink()
                    print(f"{r['member']}: band ends at {cutoff:.0f} Hz, skipped")
                    continue
                kept.append(r)
                taken += 1
    finally:
        for tar in tars.values():
            tar.close()
    for r in kept:
        print(f"{r['member']}  {r['licence']}  {r['duration_s']:.1f} s")
    print(f"kept {len(kept)} files in {args.out}")


if __name__ == "__main__":
    main()

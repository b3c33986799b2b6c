"""Collect a held-out effects / instruments / music set no shipped model trains on.

    python scripts/build_corpus.py ... --out /work/corpus5              # every allowed licence
    python scripts/build_corpus.py ... --licences gpl3 --out /work/corpus5_gpl3
    python scripts/independent_mixed.py /work/corpus5 /work/corpus5_gpl3 /tmp/indep
    jatsr eval /tmp/indep --model default --seconds 10 --out docs/eval/independent-mixed
    # a second, disjoint set (docs/eval/independent-mixed-2): ten a category, from half a
    # stride on, none of the first set's files nor the validation split's (/tmp/val)
    python scripts/independent_mixed.py /work/corpus5 /work/corpus5_gpl3 /tmp/indep2 \
        --per-category 10 --offset 0.5 --exclude /tmp/indep /tmp/val

The shipped models train on the GPL-3-compatible subset of the corpus only, so the all-licence
corpus's other files (CC-BY, CC-BY-SA, GPL-2-only: 0 A.D., Minetest, SuperTuxKart,
Hedgewars' music, Hydrogen's drum kits) were never trained on, whichever split they sit in.
Eight files (`--per-category`) of at least 2 s per category are taken evenly from the sorted
list (the same files on every run; `--offset` shifts the picks by a fraction of the stride),
none that sits in an `--exclude` folder (as the corpus member's path or flattened as below),
each copied as CATEGORY/<member with / as _>; a file whose band the
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


def candidates(all_rows: list[dict], trained: set[str], per_category: int = PER_CATEGORY,
               offset: float = 0.0, excluded: frozenset[str] = frozenset()
               ) -> dict[str, list[dict]]:
    """Per category, the untrained rows of files >= MIN_SECONDS in the order they are tried:
    `per_category` spread evenly over the sorted list first (from `offset` of a stride on),
    then the rest in list order. Members in `excluded` (or their flattened names) are left out."""
    free = sorted((r for r in all_rows if r["member"] not in trained
                   and r["duration_s"] >= MIN_SECONDS and r["member"] not in excluded
                   and _flat(r["member"]) not in excluded), key=lambda r: r["member"])
    order = {}
    for cat in CATEGORIES:
        rows = [r for r in free if r["member"].split("/", 1)[0] == cat]
        stride = max(1, len(rows) // per_category)
        first = rows[int(offset * stride)::stride][:per_category]
        order[cat] = first + [r for r in rows if r not in first]
    return order


def _flat(member: str) -> str:
    return member.replace("/", "_")


def _listed(folders: list[Path]) -> frozenset[str]:
    """Every file under `folders`, as its path below the folder and as its bare name."""
    names: set[str] = set()
    for folder in folders:
        for p in folder.rglob("*"):
            if p.is_file():
                names.update((p.relative_to(folder).as_posix(), p.name))
    return frozenset(names)


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
    parser.add_argument("--per-category", type=int, default=PER_CATEGORY, metavar="N")
    parser.add_argument("--offset", type=float, default=0.0, metavar="F",
                        help="start the even spread F (0 <= F < 1) of a stride in")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[], metavar="DIR",
                        help="leave out files already in these sets")
    args = parser.parse_args()
    if not 0 <= args.offset < 1 or args.per_category < 1:
        parser.error("--offset must be in [0, 1) and --per-category >= 1")
    trained = {r["member"] for r in _rows(args.trained_corpus)}
    tars: dict[str, tarfile.TarFile] = {}
    kept = []
    try:
        for cat, rows in candidates(_rows(args.all_corpus), trained, args.per_category,
                                    args.offset, _listed(args.exclude)).items():
            taken = 0
            for r in rows:
                if taken == args.per_category:
                    break
                name = r["shard"] if r["shard"].endswith(".tar") else f"{r['shard']}.tar"
                tar = tars.get(name) or tars.setdefault(name, tarfile.open(args.all_corpus / name))
                src = tar.extractfile(r["member"])
                if src is None:
                    raise SystemExit(f"{r['member']}: not a file in {name}")
                dest = args.out / cat / _flat(r["member"])
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

"""Collect a held-out effects / instruments / music set no shipped model trains on.

    python scripts/build_corpus.py ... --out /work/corpus5              # every allowed licence
    python scripts/build_corpus.py ... --licences gpl3 --out /work/corpus5_gpl3
    python scripts/independent_mixed.py /work/corpus5 /work/corpus5_gpl3 /tmp/indep
    jatsr eval /tmp/indep --model default --seconds 10 --out docs/eval/independent-mixed

The shipped models train on the GPL-3-compatible subset of the corpus only, so the all-licence
corpus's other files (CC-BY, CC-BY-SA, GPL-2-only: 0 A.D., Minetest, SuperTuxKart,
Hedgewars' music, Hydrogen's drum kits) were never trained on, whichever split they sit in.
Eight files of at least 2 s per category are taken evenly from the sorted list (the same
files on every run), each copied as CATEGORY/<member with / as _>. Speech is left out:
the only speech among them is hedgewars' voices, which `scripts/independent_speech.py`
already selects more carefully.
"""

from __future__ import annotations

import argparse
import json
import tarfile
from collections import defaultdict
from pathlib import Path

CATEGORIES = ("effects", "instruments", "music")
PER_CATEGORY, MIN_SECONDS = 8, 2.0


def _rows(corpus: Path) -> list[dict]:
    with open(corpus / "files.jsonl") as f:
        return [json.loads(line) for line in f if line.strip()]


def pick(all_rows: list[dict], trained: set[str], per_category: int = PER_CATEGORY) -> list[dict]:
    """Rows of files outside the trained corpus, `per_category` spread evenly per category."""
    free = sorted((r for r in all_rows if r["member"] not in trained
                   and r["duration_s"] >= MIN_SECONDS), key=lambda r: r["member"])
    chosen = []
    for cat in CATEGORIES:
        rows = [r for r in free if r["member"].split("/", 1)[0] == cat]
        chosen += rows[:: max(1, len(rows) // per_category)][:per_category]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("all_corpus", type=Path, help="corpus of every allowed licence")
    parser.add_argument("trained_corpus", type=Path, help="the corpus the model trained on")
    parser.add_argument("out", type=Path, help="written as OUT/<category>/<file>")
    args = parser.parse_args()
    trained = {r["member"] for r in _rows(args.trained_corpus)}
    chosen = pick(_rows(args.all_corpus), trained)
    by_shard: dict[str, list[str]] = defaultdict(list)
    for r in chosen:
        by_shard[r["shard"]].append(r["member"])
    for shard, members in sorted(by_shard.items()):
        name = shard if shard.endswith(".tar") else f"{shard}.tar"
        with tarfile.open(args.all_corpus / name) as tar:
            for member in members:
                dest = args.out / member.split("/", 1)[0] / member.replace("/", "_")
                dest.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:
                    raise SystemExit(f"{member}: not a file in {name}")
                dest.write_bytes(src.read())
    for r in chosen:
        print(f"{r['member']}  {r['licence']}  {r['duration_s']:.1f} s")
    print(f"kept {len(chosen)} files in {args.out}")


if __name__ == "__main__":
    main()

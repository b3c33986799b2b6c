#!/usr/bin/env bash
# Stage corpus shards on a warm lent GPU machine, one carried folder per call (a call carries at
# most 64 MiB; the corpus is ~310 MB): install the carried wheels once, unpack the folders'
# train-*.tar / val-*.tar into /tmp/corpus/{train,val}, and measure + decode the new files into
# the run's cache (/tmp/runs/$RUN/cache), so the training call finds them all scanned.
#   usage: RUN=NAME scripts/device_stage.sh DIR...
set -euo pipefail
export PYTHONUNBUFFERED=1
if [ -d .whl ] && [ ! -d /tmp/site/soundfile_data ] && [ ! -f /tmp/site/soundfile.py ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
data=/tmp/corpus; mkdir -p "$data/train" "$data/val"
for dir in "$@"; do
  for t in "$dir"/*.tar; do
    case $(basename "$t") in
      val-*) tar -xf "$t" -C "$data/val" ;;
      *) tar -xf "$t" -C "$data/train" ;;
    esac
  done
done
python3 - "$data" "/tmp/runs/${RUN:?set RUN}/cache" <<'PY'
import sys, time
from engine.training.corpus import scan
from engine.training.dataconfig import DataConfig
data, cache = sys.argv[1:]
t0 = time.perf_counter()
c = scan(DataConfig(folders=(f"{data}/train",), val_folders=(f"{data}/val",), cache_dir=cache),
         log_fn=lambda m: None)
print(f"staged in {time.perf_counter() - t0:.1f} s: {c.summary()}")
PY

#!/usr/bin/env bash
# The real trainer (not bench/train_step.py's synthetic step) on N GPUs of one host: writes a
# synthetic full-band corpus (nothing has to travel), runs `python -m engine.training` under
# torchrun, and prints the logged steps/s, data-wait share and whether the ranks ended with
# identical weights. Extra arguments go to the trainer (e.g. --compile --compile-mode ...).
#   usage (on the GPU machine): bash bench/ddp_trainer_check.sh NGPUS STEPS [train options...]
set -euo pipefail
gpus=$1 steps=$2; shift 2
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
data=/tmp/ddp_check_data run=/tmp/ddp_check_run
rm -rf "$run"
python3 - "$data" <<'PY'
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

root, rng, sr = Path(sys.argv[1]), np.random.default_rng(0), 44100
for split, count in (("train", 48), ("val", 4)):
    (root / split).mkdir(parents=True, exist_ok=True)
    for k in range(count):
        t = np.arange(12 * sr) / sr
        f0 = rng.uniform(80, 400)
        tone = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 40)
                   if f0 * h < 20000)
        noise = np.cumsum(rng.standard_normal(t.size)) * 1e-3  # red noise
        hiss = 0.02 * rng.standard_normal(t.size)  # keeps the band full up to 22 kHz
        x = tone * (0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.2, 3) * t)) + noise + hiss
        x = 0.3 * x / np.max(np.abs(x))
        sf.write(root / split / f"syn{k:03d}.flac", x.astype(np.float32), sr)
PY
torchrun --standalone --nproc_per_node="$gpus" -m engine.training --data "$data/train" \
  --val-data "$data/val" --out "$run" --steps "$steps" --log-every 50 --val-every 100000 "$@" \
  > /tmp/ddp_check.log 2>&1 || { tail -n 40 /tmp/ddp_check.log; exit 1; }
{ grep -a "identical" /tmp/ddp_check.log || true; } | tail -n 2  # one process prints none
python3 - "$run/metrics.jsonl" <<'PY'
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
for r in rows:
    if "perf/steps_per_s" not in r:
        continue
    wait = r.get("perf/data_wait_frac")
    phases = ", ".join(f"{k[8:]} {v:.2f}" for k, v in r.items() if k.startswith("perf/ms_"))
    print(f"step {r['step']}: {r['perf/steps_per_s']:.2f} steps/s, data wait "
          f"{wait if wait is None else round(wait, 2)}; ms a step: {phases}")
PY
if [ -n "${OUT:-}" ]; then cp "$run/metrics.jsonl" "$OUT/ddp_check_${gpus}gpu.metrics.jsonl"; fi

#!/usr/bin/env bash
# One whole training experiment on a lent GPU machine (no network there): install the carried
# wheels, unpack the carried corpus shards, train, export, and leave results in $OUT.
#   usage: scripts/device_train.sh RUN_NAME [jatsr train options...]
# Expects .whl/ (soundfile, soxr, cffi, pycparser wheels for the machine's Python) and .data/
# (train-*.tar, val-*.tar from scripts/build_corpus.py) beside the checkout, or DATA_DIR=DIR
# when several calls to one warm machine carried the shards there (they exceed one carry), or
# STAGED=1 when scripts/device_stage.sh already unpacked and scanned them (RUN=NAME there).
# GPUS=N trains on N GPUs of the machine (torchrun, one process per GPU; DDP).
# PROBE_DIR=DIR (a carried folder of category subfolders, e.g. scripts/independent_speech.py's
# output) is scored with `jatsr eval` by the exported model at the end: audio never trained on,
# for how the run generalises beyond its validation split ($OUT/NAME-probe/report.md).
set -euo pipefail
name=$1; shift
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
if [ -d .whl ]; then  # carried wheels (an earlier call may have installed them already)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
data=/tmp/corpus; mkdir -p "$data/train" "$data/val"
if [ "${STAGED:-0}" != 1 ]; then
  src=${DATA_DIR:-.data}  # where the shards are: .data, or a folder earlier calls filled
  for t in "$src"/train-*.tar; do tar -xf "$t" -C "$data/train"; done
  for t in "$src"/val-*.tar; do tar -xf "$t" -C "$data/val"; done
fi
out=${OUT:-/tmp/out}; run=/tmp/runs/$name
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
launcher=(python3)
if [ "${GPUS:-1}" -gt 1 ]; then launcher=(torchrun --standalone --nproc_per_node="$GPUS"); fi
status=0  # the whole log goes to $out/$name.log as it is written (a run may outlast a call)
"${launcher[@]}" -m engine.training --data "$data/train" --val-data "$data/val" --out "$run" \
  --export "$out/$name" "$@" > "$out/$name.log" 2>&1 || status=$?
tr '\r' '\n' < "$out/$name.log" | grep -v '^ *[0-9]*%|' | tail -n 80
cp "$run/metrics.jsonl" "$out/$name.metrics.jsonl"
cp "$run/config.json" "$out/$name.config.json"
if [ -n "${PROBE_DIR:-}" ] && [ "$status" = 0 ] && [ -f "$out/$name.safetensors" ]; then
  python3 -m engine eval "$PROBE_DIR" --model "$out/$name.safetensors" --examples 0 \
    --out "$out/$name-probe" > "$out/$name-probe.log" 2>&1 || echo "probe eval failed"
  grep -E '^\| \*\*all\*\*' "$out/$name-probe/report.md" 2>/dev/null || true
fi
exit $status

#!/usr/bin/env bash
# Issue 3's GPU measurements in one device call (10 minutes at most): the CPU budget the
# container grants, the one-GPU MFU variants, the GPU cost of the device-side degradation, and
# DDP scaling on 2 and 4 GPUs with both compile orders and eager. Rows are appended to
# bench/results/train_step_cuda_<date>.jsonl (card, date, cpu budget in each row) and copied to
# $OUT; a failing variant is logged and the next one runs. Each variant compiles (~1 min), so
# the matrix is two calls: PART "single" (three one-GPU variants) and "ddp" (the one-GPU
# CUDA-graphs baseline on the same host, then 2 and, where present, 4 GPUs).
#   usage (on a 2- or 4-GPU machine): bash bench/ddp_matrix.sh TAG single|ddp
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
tag=${1:-matrix}
part=${2:-single}
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
python3 -c "from engine.system import cpu_budget; print('cpu budget', cpu_budget())"
common=(--preset v2 --batch 32 --steps 30 --warmup 8 --fused-clip --ema-every 4)

run() {  # run NAME NPROC ARGS...
  local name=$1 nproc=$2
  shift 2
  echo "== $name"
  if [ "$nproc" -eq 1 ]; then
    timeout 135 python3 bench/train_step.py "${common[@]}" --tag "$tag-$name" "$@"
  else
    timeout 135 torchrun --standalone --nproc_per_node="$nproc" bench/train_step.py \
      "${common[@]}" --tag "$tag-$name" "$@"
  fi || echo "!! $name failed or timed out"
  if [ -n "${OUT:-}" ]; then  # after every variant: a call cut off at its limit keeps them
    cp bench/results/train_step_cuda_*.jsonl "$OUT/" 2>/dev/null || true
  fi
}

if [ "$part" = single ]; then
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  run 1gpu-compiled 1 --compile
  run 1gpu-devfilter 1 --compile --device-filter
else
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead  # the scaling baseline
  for g in 2 4; do
    [ "$g" -le "$gpus" ] || continue
    run "${g}gpu-outer" "$g" --compile
    run "${g}gpu-inner" "$g" --compile --ddp-inner-compile
    run "${g}gpu-eager" "$g"
  done
fi

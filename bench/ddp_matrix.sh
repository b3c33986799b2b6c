#!/usr/bin/env bash
# Issue 3's GPU measurements in one device call (10 minutes at most): the CPU budget the
# container grants, the one-GPU MFU variants, the GPU cost of the device-side degradation, and
# DDP scaling on 2 and 4 GPUs with both compile orders and eager. Rows are appended to
# bench/results/train_step_cuda_<date>.jsonl (card, date, cpu budget in each row) and copied to
# $OUT; a failing variant is logged and the next one runs. Each variant compiles (~1 min), so
# the matrix is two calls: PART "single" (three one-GPU variants) and "ddp" (the one-GPU
# CUDA-graphs baseline on the same host, then 2 and, where present, 4 GPUs).
#   usage (on a 2- or 4-GPU machine): bash bench/ddp_matrix.sh TAG single|ddp|scale|graphs|outer|batch64|mfu|levers|sdpa|overlap|streams|carveout|timeline|ltcarve|tritongemm|bf16w|bf16w4|trainergap|trainergap2|trainergap3|trainergap4|flatmaster|onecall
# "scale" and "graphs" each fit one call on 4 GPUs (the compiled ranks reuse the cache).
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
tag=${1:-matrix}
part=${2:-single}
gpus=$(python3 -c "import torch; print(torch.cuda.device_count())")
python3 -c "from engine.cores import cpu_budget; print('cpu budget', cpu_budget())"
common=(--preset v2 --batch 32 --steps 30 --warmup 8 --fused-clip --ema-every 4)

run() {  # run NAME NPROC ARGS...
  local name=$1 nproc=$2
  shift 2
  echo "== $name"
  if [ "$nproc" -eq 1 ]; then
    timeout "${RUN_TIMEOUT:-135}" python3 bench/train_step.py "${common[@]}" --tag "$tag-$name" "$@"
  else
    timeout "${RUN_TIMEOUT:-135}" torchrun --standalone --nproc_per_node="$nproc" bench/train_step.py \
      "${common[@]}" --tag "$tag-$name" "$@"
  fi || echo "!! $name failed or timed out"
  if [ -n "${OUT:-}" ]; then  # after every variant: a call cut off at its limit keeps them
    cp bench/results/train_step_cuda_*.jsonl "$OUT/" 2>/dev/null || true
  fi
}

trainer_check() {  # trainer_check NGPUS NAME ARGS...: the real trainer, v2, 32 crops a GPU
  local n=$1 name=$2
  shift 2
  echo "== trainer $n GPU(s), $name"
  timeout "${RUN_TIMEOUT:-170}" bash bench/ddp_trainer_check.sh "$n" 300 --preset v2 \
    --batch $((32 * n)) --compile --compile-mode reduce-overhead --seed 1 "$@" \
    || echo "!! trainer $name failed or timed out"
  [ -n "${OUT:-}" ] && cp /tmp/ddp_check_run/metrics.jsonl "$OUT/trainer-${n}gpu-$name.jsonl"
}

case "$part" in
single)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  run 1gpu-compiled 1 --compile
  run 1gpu-devfilter 1 --compile --device-filter
  ;;
scale)  # same settings on 1, 2 and 4 GPUs: compiled as one graph (split off), then eager
  run 1gpu-compiled 1 --compile  # fills the inductor cache the ranks below reuse
  for g in 2 4; do
    [ "$g" -le "$gpus" ] && run "${g}gpu-inner" "$g" --compile --ddp-inner-compile
  done
  for g in 1 2 4; do
    [ "$g" -le "$gpus" ] && run "${g}gpu-eager" "$g"
  done
  ;;
graphs)  # CUDA graphs (reduce-overhead) inside DDP; the 4-GPU all-reduce in bf16 or big buckets
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  if [ "$gpus" -ge 4 ]; then
    run 4gpu-inner-bf16comm 4 --compile --ddp-inner-compile --comm-bf16
    run 4gpu-inner-bucket256 4 --compile --ddp-inner-compile --bucket-mb 256
  fi
  for g in 2 4; do
    [ "$g" -le "$gpus" ] && run "${g}gpu-inner-graphs" "$g" --compile --ddp-inner-compile \
      --compile-mode reduce-overhead
  done
  run 1gpu-compiled-again 1 --compile  # run-to-run spread of the scaling baseline
  ;;
outer)  # compile(DDP(net)) with 256 MB buckets: ~5 graph pieces, all-reduce overlapping
  python3 bench/matmul_peak.py
  [ -n "${OUT:-}" ] && cp bench/results/matmul_peak_*.jsonl "$OUT/"
  for g in 4 2; do
    [ "$g" -le "$gpus" ] || continue
    run "${g}gpu-outer-bucket256-graphs" "$g" --compile --bucket-mb 256 \
      --compile-mode reduce-overhead
    run "${g}gpu-outer-bucket256" "$g" --compile --bucket-mb 256
  done
  ;;
batch64)  # weak scaling at 64 crops a GPU (the figures are at 32): CUDA graphs, outer
  run 1gpu-cudagraphs-b64 1 --compile --compile-mode reduce-overhead --batch 64
  for g in 2 4; do
    [ "$g" -le "$gpus" ] && run "${g}gpu-outer-bucket256-graphs-b64" "$g" --compile \
      --bucket-mb 256 --compile-mode reduce-overhead --batch 64
  done
  ;;
mfu)  # one GPU: clip + AdamW compiled (Inductor's foreach kernels) instead of the fused kernel
  run 1gpu-cudagraphs-loss 1 --compile --compile-scope loss --compile-mode reduce-overhead
  run 1gpu-cudagraphs-loss-optc 1 --compile --compile-scope loss --compile-mode reduce-overhead \
    --compile-optimizer
  run 1gpu-cudagraphs-optc 1 --compile --compile-mode reduce-overhead --compile-optimizer
  ;;
onecall)  # flatmaster and trainergap4 in one call, by priority (for a short GPU window)
  gl=(--compile --compile-scope loss --compile-mode reduce-overhead)
  run 1gpu-loss-bf16w 1 "${gl[@]}" --bf16-weights
  run 1gpu-loss-flat-enc 1 "${gl[@]}" --flat-master --compile-encode
  trainer_check 1 auto
  trainer_check 1 auto-flat --bf16-master
  python3 bench/device_filter.py || echo "!! device_filter failed"
  [ -n "${OUT:-}" ] && cp bench/results/device_filter_cuda_*.jsonl "$OUT/"
  run 1gpu-loss-flat 1 "${gl[@]}" --flat-master
  python3 bench/matmul_peak.py
  [ -n "${OUT:-}" ] && cp bench/results/matmul_peak_*.jsonl "$OUT/"
  ;;
flatmaster)  # one GPU, MFU: bf16 weights with a flat fused update, the encodes compiled
  python3 bench/matmul_peak.py
  [ -n "${OUT:-}" ] && cp bench/results/matmul_peak_*.jsonl "$OUT/"
  gl=(--compile --compile-scope loss --compile-mode reduce-overhead)
  run 1gpu-loss-bf16w 1 "${gl[@]}" --bf16-weights
  run 1gpu-loss-flat 1 "${gl[@]}" --flat-master
  run 1gpu-loss-flat-enc 1 "${gl[@]}" --flat-master --compile-encode
  ;;
sdpa)  # one GPU: the attention kernels at the model's shapes, then the step with each backend
  python3 bench/matmul_peak.py
  python3 bench/attention.py --tag "$tag"
  [ -n "${OUT:-}" ] && cp bench/results/matmul_peak_*.jsonl bench/results/attention_*.jsonl "$OUT/"
  for backend in auto flash; do  # a cache per backend: a cached graph keeps its kernel
    TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-$backend run "1gpu-cudagraphs-loss-$backend" 1 \
      --compile --compile-scope loss --compile-mode reduce-overhead --sdpa "$backend"
  done
  for backend in auto flash; do  # without CUDA graphs the profiler names each kernel
    TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-$backend-default run "1gpu-compiled-loss-$backend" 1 \
      --compile --compile-scope loss --sdpa "$backend" \
      --trace "bench/results/traces/$tag-$backend.txt"
  done
  [ -n "${OUT:-}" ] && cp bench/results/traces/"$tag"-*.txt "$OUT/"
  ;;
overlap)  # how much of the all-reduce hides behind the backward (rank 0's kernels), 2 GPUs
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  t=bench/results/traces/$tag
  run 2gpu-outer-bucket256-graphs 2 --compile --bucket-mb 256 --compile-mode reduce-overhead \
    --trace "$t-graphs.txt"
  run 2gpu-outer-bucket256 2 --compile --bucket-mb 256 --trace "$t-compiled.txt"
  run 2gpu-eager 2 --trace "$t-eager.txt"
  [ -n "${OUT:-}" ] && cp "$t"-*.txt "$OUT/"
  ;;
streams)  # 2 GPUs, CUDA graphs: does the all-reduce get the SMs it needs? (NCCL settings)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  run 2gpu-graphs-base 2 "${g[@]}"
  TORCH_NCCL_HIGH_PRIORITY=1 run 2gpu-graphs-ncclprio 2 "${g[@]}"
  CUDA_DEVICE_MAX_CONNECTIONS=1 run 2gpu-graphs-1conn 2 "${g[@]}"
  NCCL_MAX_NCHANNELS=4 run 2gpu-graphs-4chan 2 "${g[@]}"
  ;;
carveout)  # 2 GPUs, CUDA graphs: matmuls leave SMs free so the all-reduce can run beside them
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  run 2gpu-graphs-base 2 "${g[@]}"
  for n in 16 32; do
    run "2gpu-graphs-carveout$n" 2 "${g[@]}" --sm-carveout "$n"
  done
  ;;
timeline)  # bf16 gradients with CUDA graphs on 2 and 4 GPUs; kernel timelines (bench/timeline.py)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  t=bench/results/traces/$tag
  for v in fp32 bf16; do
    extra=(); [ "$v" = bf16 ] && extra=(--comm-bf16)
    run "2gpu-graphs-$v" 2 "${g[@]}" "${extra[@]}" --trace "$t-$v.txt" \
      --timeline "$t-$v.timeline.json.gz"
    [ -n "${OUT:-}" ] && cp "$t"-* "$OUT/"
  done
  if [ "$gpus" -ge 4 ]; then
    run 4gpu-graphs-bf16 4 "${g[@]}" --comm-bf16
    run 4gpu-graphs-fp32 4 "${g[@]}"
  fi
  run 2gpu-graphs-carveout32 2 "${g[@]}" --sm-carveout 32 --trace "$t-carveout32.txt" \
    --timeline "$t-carveout32.timeline.json.gz"
  [ -n "${OUT:-}" ] && cp "$t"-* "$OUT/"
  ;;
ltcarve)  # matmuls through cuBLASLt, which honours the SM carve-out: the backward's matmuls
  # leave the NCCL kernel's SMs free instead of running a second wave beside it
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead --blas cublaslt)
  run 1gpu-cudagraphs-lt 1 "${g[@]}"
  t=bench/results/traces/$tag
  run 2gpu-lt-bwdcarve24 2 "${g[@]}" --sm-carveout 24 --carveout-scope backward \
    --trace "$t-lt24.txt" --timeline "$t-lt24.timeline.json.gz"
  [ -n "${OUT:-}" ] && cp "$t"-* "$OUT/"
  NCCL_MAX_NCHANNELS=16 run 2gpu-lt-bwdcarve16-16ch 2 "${g[@]}" --sm-carveout 16 \
    --carveout-scope backward
  if [ "$gpus" -ge 4 ]; then
    run 4gpu-lt-bwdcarve24 4 "${g[@]}" --sm-carveout 24 --carveout-scope backward
    NCCL_MAX_NCHANNELS=16 run 4gpu-lt-bwdcarve16-16ch 4 "${g[@]}" --sm-carveout 16 \
      --carveout-scope backward
  fi
  ;;
tritongemm)  # Inductor's Triton matmuls instead of cuBLAS's clustered persistent kernels, whose
  # clusters no longer fit beside NCCL's blocks (bench/timeline.py: a second wave, ~2x slower)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead --gemm triton)
  RUN_TIMEOUT=300 run 1gpu-cudagraphs-triton 1 "${g[@]}"  # autotunes; the ranks reuse its cache
  t=bench/results/traces/$tag
  run 2gpu-triton 2 "${g[@]}" --trace "$t-triton.txt" --timeline "$t-triton.timeline.json.gz"
  [ -n "${OUT:-}" ] && cp "$t"-* "$OUT/"
  [ "$gpus" -ge 4 ] && run 4gpu-triton 4 "${g[@]}"
  ;;
bf16w)  # bf16 weights for forward/backward, fp32 master for the update (--bf16-weights): no
  # weight casts, the all-reduce and the reducer's bucket copies in bf16; CUDA graphs, outer
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  if [ -z "${SKIP_BASE:-}" ]; then
    run 1gpu-cudagraphs 1 "${g[@]}"
    run 2gpu-graphs 2 "${g[@]}"
  fi
  run 1gpu-cudagraphs-bf16w 1 "${g[@]}" --bf16-weights
  run 2gpu-graphs-bf16w 2 "${g[@]}" --bf16-weights
  # as many buckets (and graph pieces) as the fp32 gradients at 256 MB
  run 2gpu-graphs-bf16w-bucket128 2 "${g[@]}" --bf16-weights --bucket-mb 128
  if [ "$gpus" -ge 4 ]; then
    run 4gpu-graphs 4 "${g[@]}"
    run 4gpu-graphs-bf16w 4 "${g[@]}" --bf16-weights
  fi
  run 1gpu-cudagraphs-bf16w-optc 1 "${g[@]}" --bf16-weights --compile-optimizer
  run 2gpu-graphs-bf16w-optc 2 "${g[@]}" --bf16-weights --compile-optimizer
  ;;
bf16w4)  # the same on a 4-GPU host, 4 GPUs first
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  run 1gpu-cudagraphs 1 "${g[@]}"
  run 1gpu-cudagraphs-bf16w 1 "${g[@]}" --bf16-weights
  run 4gpu-graphs 4 "${g[@]}"
  run 4gpu-graphs-bf16w 4 "${g[@]}" --bf16-weights
  run 2gpu-graphs 2 "${g[@]}"
  run 2gpu-graphs-bf16w 2 "${g[@]}" --bf16-weights
  ;;
trainergap)  # the real trainer ran v2 at 26 steps/s a GPU on 2 x H200 where this bench's step
  # runs 41-44: the bench step with the trainer's device-side degradation, then the trainer on
  # one GPU with 14 and 6 DataLoader workers (2 ranks x 14 workers filled that host's 32 cores:
  # the processes launching the GPU's work may have waited for a core)
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  run 1gpu-cudagraphs 1 "${g[@]}"
  run 1gpu-cudagraphs-devfilter 1 "${g[@]}" --device-filter
  for w in 14 6; do trainer_check 1 "device-w$w" --degrade-on device --workers "$w"; done
  ;;
trainergap2)  # the rest: degradation in the workers; two GPUs with fewer workers, bf16-master
  trainer_check 1 workers-w14 --degrade-on workers --workers 14
  trainer_check 2 device-w6-bf16master --degrade-on device --workers 6 --bf16-master
  ;;
trainergap3)  # after the device filter sends each path only its rows and the side-stream
  # prefetch: the filter's pieces, the bench step with it, the trainer (auto workers) as it is
  # by default and with EMA every 4 steps and bf16 working weights
  python3 bench/device_filter.py || echo "!! device_filter failed"
  [ -n "${OUT:-}" ] && cp bench/results/device_filter_cuda_*.jsonl "$OUT/"
  g=(--compile --bucket-mb 256 --compile-mode reduce-overhead)
  run 1gpu-cudagraphs-devfilter 1 "${g[@]}" --device-filter
  trainer_check 1 auto
  trainer_check 1 auto-ema4-bf16master --ema-every 4 --bf16-master
  ;;
trainergap4)  # the IIR gains without a division a root; the trainer (auto workers), then
  # with bf16 weights and the flat fused update (engine.training.flat_master)
  python3 bench/device_filter.py || echo "!! device_filter failed"
  [ -n "${OUT:-}" ] && cp bench/results/device_filter_cuda_*.jsonl "$OUT/"
  trainer_check 1 auto
  trainer_check 1 auto-flat --bf16-master
  ;;
levers)  # the next tries for 4 GPUs: bucket sizes with CUDA graphs, compiled
  # autograd's python_reducer (DDP's all-reduce traced into the compiled backward)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead
  if [ "$gpus" -ge 4 ]; then
    for mb in 64 128; do
      run "4gpu-outer-bucket${mb}-graphs" 4 --compile --bucket-mb "$mb" \
        --compile-mode reduce-overhead
    done
    run 4gpu-outer-pyreducer-graphs 4 --compile --optimize-ddp python_reducer \
      --compile-mode reduce-overhead
    run 4gpu-outer-pyreducer 4 --compile --optimize-ddp python_reducer
  fi
  ;;
*)
  run 1gpu-cudagraphs 1 --compile --compile-mode reduce-overhead  # the scaling baseline
  for g in 2 4; do
    [ "$g" -le "$gpus" ] || continue
    run "${g}gpu-outer" "$g" --compile
    run "${g}gpu-inner" "$g" --compile --ddp-inner-compile
    run "${g}gpu-eager" "$g"
  done
  ;;
esac

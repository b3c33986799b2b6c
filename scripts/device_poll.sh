#!/usr/bin/env bash
# Wait on a background training run on a lent GPU machine, then bring back what exists so far.
# A run started with `setsid scripts/device_train.sh NAME ...` (OUT=/tmp/out) outlives the call
# that started it, but not the machine: if the machine goes back (idle release, the 30-minute
# hold), everything on it is lost. So every poll copies the log and metrics to $OUT and exports
# the best checkpoint so far as a model file, and a lost machine still leaves a model here.
#   usage: scripts/device_poll.sh RUN_NAME SECONDS [float16|int8]
# Returns when the run has exported its final model, failed, or SECONDS have passed.
set -uo pipefail
name=$1
secs=$2
weights=${3:-int8}
export PYTHONPATH=/tmp/site:$PWD
log=/tmp/out/$name.log
run=/tmp/runs/$name
out=${OUT:-/tmp/poll}
mkdir -p "$out"
end=$((SECONDS + secs))
while [ "$SECONDS" -lt "$end" ]; do
  grep -q '^exported\|Traceback' "$log" 2>/dev/null && break
  sleep 10
done
if [ -f "$log" ]; then
  tr '\r' '\n' < "$log" | grep -v '%|' | tail -n 30
  tr '\r' '\n' < "$log" | tail -n 1
  echo
else
  echo "no log at $log"
fi
cp /tmp/out/* "$out/" 2>/dev/null  # the final model, log, metrics and config once it is done
[ -f "$run/metrics.jsonl" ] && cp "$run/metrics.jsonl" "$out/$name.metrics.jsonl"
if [ ! -f "$out/$name.safetensors" ] && [ -f "$run/ckpt/best.pt" ]; then
  python3 -m engine export "$run" "$out/$name-best" --weights "$weights" \
    && echo "exported the best checkpoint so far as $name-best"
fi
ls -la "$out"

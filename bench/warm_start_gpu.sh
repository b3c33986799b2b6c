# The warm start's cost on a CUDA machine (device tool: carry .whl with soundfile, soxr, cffi,
# pycparser, tqdm wheels and the input): bash bench/warm_start_gpu.sh FILE
# -> three paired `engine upsample` runs (default vs --prior-t 0), then in-process restores.
set -u
IN=${1:?usage: bash bench/warm_start_gpu.sh FILE}
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
# 60 s stereo 22.05 kHz (warm-started by default) vs --prior-t 0, three pairs, whole process
for i in 1 2 3; do
  for mode in warm noise; do
    extra=""; [ $mode = noise ] && extra="--prior-t 0"
    /usr/bin/time -f "$mode whole %e s, peak RSS %M KB" python3 -m engine upsample "$IN" -o /tmp/o --overwrite --device cuda $extra 2>&1 | grep -E "RTF|whole"
  done
done
python3 - "$IN" <<'PY'
import sys
import time

import torch

sys.path.insert(0, ".")
import engine
from engine.audio.io import load
m = engine.load_model(engine.resolve_model_path("default"), device=torch.device("cuda"))
x, r = load(sys.argv[1])
for prior_t in (0.85, 0.0):
    cfg = engine.SamplerConfig(prior_t=prior_t)
    rs = engine.Restorer(m, cfg, engine.PipelineConfig(), device=torch.device("cuda"))
    for rep in range(3):
        torch.cuda.synchronize(); t0 = time.perf_counter()
        for p in rs.iter_array(x, r): pass
        torch.cuda.synchronize()
        print(f"in-process restore prior_t {prior_t}: {time.perf_counter()-t0:.2f} s warm={p.result.warm_start}")
PY

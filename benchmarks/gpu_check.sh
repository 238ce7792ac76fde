#!/usr/bin/env bash
# The GPU path measured in one command, on a machine with a CUDA GPU:
#
#   bash benchmarks/gpu_check.sh                  # full: ~1 h on one GPU
#   SMOKE=1 DEVICE=cpu bash benchmarks/gpu_check.sh   # tiny budgets on the CPU (checks the script)
#
# Writes into $OUT (default damdp_lite/shipped/gpu/):
#   gpu.json                  the GPU's name, torch and CUDA versions, the date
#   throughput_cuda.json      benchmarks/throughput.py --device $DEVICE (PPO, DiffPPO K = 4, 8)
#   runtime_ratio_cuda.json   benchmarks/runtime_ratio.py --device $DEVICE (REPPO, WPO, SAC and
#                             their DA-MDP versions)
#   runs/HalfCheetah-v5_diffppo_{cuda,cpu}/   one DiffPPO run of the same config on each device
#   gpu_vs_cpu.json           their evaluation returns (10 episodes), env steps per second, minutes
# benchmarks/scale_plan.py then adds the GPU speeds to the cost of a paper-scale sweep.
set -euo pipefail
cd "$(dirname "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")")"
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-damdp_lite/shipped/gpu}
STEPS=${STEPS:-262144}
SMOKE_FLAG=""
if [ -n "${SMOKE:-}" ]; then SMOKE_FLAG="--smoke"; STEPS=${SMOKE_STEPS:-2048}; fi
export MUJOCO_GL=${MUJOCO_GL:-egl}

"$PY" - "$DEVICE" <<'PY'
import sys, torch
dev = sys.argv[1]
if dev.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check: DEVICE={dev} but torch {torch.__version__} sees no CUDA GPU; run on a "
             f"GPU machine (or SMOKE=1 DEVICE=cpu to check the script)")
PY
mkdir -p "$OUT"
"$PY" - "$DEVICE" "$OUT/gpu.json" <<'PY'
import json, sys, time, torch
dev, path = sys.argv[1:]
name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu (smoke check)"
json.dump({"gpu": name, "device": dev, "torch": torch.__version__, "cuda": torch.version.cuda,
           "date": time.strftime("%Y-%m-%d")}, open(path, "w"), indent=1)
print(f"gpu_check: {name}")
PY
echo "gpu_check: throughput (benchmarks/throughput.py --device $DEVICE)"
"$PY" benchmarks/throughput.py --device "$DEVICE" --learners ours_ppo ours_diffppo_k4 ours_diffppo_k8 \
    $SMOKE_FLAG --json > "$OUT/throughput_cuda.json"
echo "gpu_check: runtime ratios (benchmarks/runtime_ratio.py --device $DEVICE)"
"$PY" benchmarks/runtime_ratio.py --device "$DEVICE" $SMOKE_FLAG --json > "$OUT/runtime_ratio_cuda.json"
for pair in "cuda:$DEVICE" "cpu:cpu"; do  # tag:device (the first runs on $DEVICE)
  tag=${pair%%:*}; dev=${pair#*:}
  echo "gpu_check: DiffPPO on HalfCheetah-v5, $STEPS env steps, device $dev"
  "$PY" -m damdp_lite.cli train --algo ppo --policy diffusion --env HalfCheetah-v5 \
      --steps "$STEPS" --device "$dev" --eval-episodes 10 --eval-every 0 --quiet \
      --run-dir "$OUT/runs/HalfCheetah-v5_diffppo_$tag" --label "diffppo-$tag" --json
done
"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path
from damdp_lite.results import read_progress
out = Path(sys.argv[1])
res = {}
for tag in ("cuda", "cpu"):
    rows = read_progress(out / "runs" / f"HalfCheetah-v5_diffppo_{tag}" / "progress.csv")
    res[tag] = {"eval_return_10_episodes": rows[-1]["eval_return"],
                "env_steps": int(rows[-1]["env_steps"]),
                "minutes": rows[-1]["elapsed_s"] / 60,
                "env_steps_per_s": rows[-1]["env_steps"] / rows[-1]["elapsed_s"]}
res["speedup_cuda_over_cpu"] = res["cuda"]["env_steps_per_s"] / res["cpu"]["env_steps_per_s"]
res["gpu"] = json.loads((out / "gpu.json").read_text())["gpu"]
(out / "gpu_vs_cpu.json").write_text(json.dumps(res, indent=1) + "\n")
print(json.dumps(res, indent=1))
PY

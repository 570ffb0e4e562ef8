#!/usr/bin/env bash
# The paper's full-size network (preset `koch`, 105x105, ~38.9M parameters) trained as in
# Koch et al. (2015): the paper's distortion scheme (8 distorted copies of each pair),
# 30,000 pairs per epoch (x9 with the copies), per-layer momentum SGD, early stopping on
# 320 validation one-shot trials with a patience of 20 epochs, at most 200 epochs.
#
#   scripts/reproduce_koch.sh [DATA_DIR] [RUN_DIR]        (needs an NVIDIA GPU and CuPy)
#
# Expected time: a koch training step is ~10.9 GFLOP per pair. On one modern datacenter
# GPU (e.g. an H100/H200 at a few tens of effective TFLOP/s in float32) that is roughly
# 1,000-3,000 pairs/s, so one epoch of 270,000 pairs takes a few minutes and a 200-epoch
# run several hours. On 2 CPU cores (~10 pairs/s) one epoch takes ~7.5 hours: use a GPU.
# These are estimates, not measurements: no GPU was available when this script was written;
# scripts/gpu_check.sh measures the real throughput.
set -euo pipefail
data=${1:-${TINYSIAMESE_DATA:-$HOME/.cache/tinysiamese/omniglot}}
run=${2:-runs/koch-$(date +%Y%m%d-%H%M%S)}
if [ -f "$run/last.npz" ]; then
  exec tinysiamese train --resume "$run" --backend cupy --epochs 200
fi
exec tinysiamese train --data "$data" --preset koch --backend cupy \
  --epochs 200 --pairs-per-epoch 30000 --distortions 8 --batch-size 128 --out "$run"

#!/bin/bash
# GPU call (b), under 6 minutes on the CUDA host: Qwen3-0.6B training steps, micro-batch 8 x 2048 (forward,
# backward, clip, AdamW), lmforge and then the PyTorch peer with --compile in the same call, each with its GPU memory
# sampled, and lmforge's step op by op (`bench --profile`). The eager peer (44.3k tokens/s, already measured) runs
# only with PEER_EAGER=1. Run it right after scripts/device-test.sh on the still warm machine, which keeps the
# build; a fresh one builds the CUDA engine first.
#   bash scripts/device-bench.sh            DRY=1 bash scripts/device-bench.sh   (prints the steps only)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/device-lib.sh
. scripts/device-lib.sh

setup_env
py=/opt/torch/.venv/bin/python3
[ -x "$py" ] || py=python3
peer=.device/shared/peers/torch_qwen3_gpu.py
shape=(--micro 8 --seq 2048 --steps 8)

step unpack 15 unpack_node
step gpu 5 gpu_info
excerpt gpu '.'
step build 100 build_cuda
excerpt build 'built|up to date|failed|error'
step lmforge 70 sample_mem lmforge node bin/lmforge.js bench --preset qwen3-0.6b --device cuda --batch 8 --seq 2048 --steps 5 --profile
# The JSON line, then the top of the per-op table of one more step (stream events; stderr goes to the same log).
excerpt lmforge '^\{|peak GPU memory|rror|^op |^total|^[a-zA-Z]+( [0-9x]+( dW)?)? +[0-9]+ +[0-9.]+ +[0-9.]+%'
step torch-compile 150 sample_mem torch-compile "$py" "$peer" --preset qwen3-0.6b "${shape[@]}" --compile
excerpt torch-compile '^\{|peak GPU memory|rror'
if [ "${PEER_EAGER:-0}" = 1 ]; then
  step torch-eager 40 sample_mem torch-eager "$py" "$peer" --preset qwen3-0.6b "${shape[@]}"
  excerpt torch-eager '^\{|peak GPU memory|rror'
fi
finish

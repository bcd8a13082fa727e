#!/bin/bash
# GPU call (b), under 6 minutes on the CUDA host: Qwen3-0.6B training steps, micro-batch 8 x 2048 (forward,
# backward, clip, AdamW), lmforge and then the PyTorch peer with --compile in the same call, each with its GPU memory
# sampled, and lmforge's step op by op (`bench --profile`). The eager peer (44.3k tokens/s, already measured) runs
# only with PEER_EAGER=1. Run it right after scripts/device-test.sh on the still warm machine, which keeps the
# build; a fresh one builds the CUDA engine first.
#   bash scripts/device-bench.sh [0.6b|2b]   DRY=1 bash scripts/device-bench.sh   (prints the steps only)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/device-lib.sh
. scripts/device-lib.sh

setup_env
py=/opt/torch/.venv/bin/python3
[ -x "$py" ] || py=python3
peer=.device/shared/peers/torch_qwen3_gpu.py
shape=(--micro 8 --seq 2048 --steps 8)
lmforge_bench=(node bin/lmforge.js bench --device cuda --batch 8 --seq 2048 --steps 5)
table='^\{|peak GPU memory|rror|^op |^total|^[a-zA-Z]+( [0-9x]+( dW)?)? +[0-9]+ +[0-9.]+ +[0-9.]+%'
# The workload: 0.6b (default) is Qwen3-0.6B; 2b is the seed's "1.5B" (28 x 2048, untied, 2.03B parameters), which
# `lmforge plan` fits in 76 GiB without recomputation (77.2 GB) and with `mlp` (60.9 GB): both are measured.
workload=${1:-0.6b}
case "$workload" in
  0.6b) ;;
  2b) ;;
  *) echo "device-bench.sh: unknown workload '$workload' (use 0.6b or 2b)" >&2; exit 2 ;;
esac

step unpack 15 unpack_node
step gpu 5 gpu_info
excerpt gpu '.'
step build 100 build_cuda
excerpt build 'built|up to date|failed|error'
# The JSON line, then the per-op table of one more step (stream events; stderr goes to the same log).
if [ "$workload" = 0.6b ]; then
  step lmforge 50 sample_mem lmforge "${lmforge_bench[@]}" --preset qwen3-0.6b --profile
  excerpt lmforge "$table"
  # The head on a bf16 logits chunk (opt-in until measured: docs/cuda.md, "Head and cross-entropy").
  step lmforge-head-bf16 30 sample_mem lmforge-head-bf16 env LMFORGE_CUDA_HEAD=bf16 "${lmforge_bench[@]}" --preset qwen3-0.6b
  excerpt lmforge-head-bf16 "$table"
  step torch-compile 140 sample_mem torch-compile "$py" "$peer" --preset qwen3-0.6b "${shape[@]}" --compile
else
  step lmforge-none 55 sample_mem lmforge-none "${lmforge_bench[@]}" --preset qwen3-custom-1.5b --recompute none --profile
  excerpt lmforge-none "$table"
  step lmforge-mlp 55 sample_mem lmforge-mlp "${lmforge_bench[@]}" --preset qwen3-custom-1.5b --recompute mlp
  excerpt lmforge-mlp "$table"
  step torch-compile 110 sample_mem torch-compile "$py" "$peer" --preset seed-1.5b-untied "${shape[@]}" --compile
fi
excerpt torch-compile '^\{|peak GPU memory|rror'
if [ "$workload" = 0.6b ] && [ "${PEER_EAGER:-0}" = 1 ]; then
  step torch-eager 40 sample_mem torch-eager "$py" "$peer" --preset qwen3-0.6b "${shape[@]}"
  excerpt torch-eager '^\{|peak GPU memory|rror'
fi
finish

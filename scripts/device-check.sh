#!/bin/bash
# The CUDA check, in one job on the CUDA host (see ../shared/device/README.md), from the project root, after
# scripts/device-prep.sh filled .device/ here. Steps (each logs to $OUT when set, else to ./device-out):
#   1. unpack Node, build the CPU engine (the reference) and the CUDA engine (sm_90 by default)
#   2. CUDA op tests against the CPU backend (test/engine-cuda)
#   3. golden parity through `lmforge forward-backward --device cuda`, bf16 and fp32 (same tests folder)
#   4. Qwen3-0.6B micro-batch 8 x 2048 full training steps: lmforge, then the PyTorch peer eager and --compile,
#      with GPU memory sampled by nvidia-smi for each
# Usage: bash scripts/device-check.sh [build|test|bench|all]   (default all)
set -uo pipefail
what=${1:-all}
out=${OUT:-$(pwd)/device-out}
mkdir -p "$out"
log() { echo "== $*" | tee -a "$out/summary.txt"; }

tar xJf .device/node.tar.xz -C /tmp && export PATH=/tmp/bin:/usr/local/cuda/bin:$PATH
mkdir -p node_modules && tar xJf .device/modules.tar.xz -C node_modules
export LMFORGE_NODE_INCLUDE=$(pwd)/.device/node-include/node
export LMFORGE_SHARED=$(pwd)/.device/shared
export LMFORGE_CUDA_ARCH=${LMFORGE_CUDA_ARCH:-90}
export LMFORGE_CUDA_STRICT=1
node --version | tee -a "$out/summary.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/summary.txt"

build() {
  log "build the CPU engine (reference for the op tests)"
  napi=$(node -p "require('node-addon-api').include_dir")
  cblas=$(dirname "$(find /usr/include -name cblas.h 2>/dev/null | head -1)")
  mkdir -p build/Release
  g++ -O3 -march=native -fopenmp -std=c++17 -fno-math-errno -shared -fPIC -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
    -I"$LMFORGE_NODE_INCLUDE" -I"$napi" ${cblas:+-I"$cblas"} src/engine/cpu/*.cc src/engine/native/*.cc -o build/Release/lmforge_cpu.node \
    -lopenblas >"$out/build-cpu.log" 2>&1 && log "CPU engine built" || log "CPU engine build FAILED (see build-cpu.log)"
  log "build the CUDA engine"
  ( time node scripts/build-cuda.mjs ) >"$out/build-cuda.log" 2>&1 && log "CUDA engine built" || log "CUDA engine build FAILED (see build-cuda.log)"
  tail -3 "$out/build-cuda.log"
}

tests() {
  log "CUDA op tests and golden parity (bf16 + fp32)"
  node --test --test-concurrency=1 dist/test/engine-cuda/ >"$out/tests.tap" 2>&1
  grep -E '^# (tests|pass|fail|skipped)|^not ok|^# .*(bf16|fp32):' "$out/tests.tap" | tee -a "$out/summary.txt"
}

sample_mem() {  # sample_mem NAME CMD...: runs CMD while nvidia-smi samples used memory; logs the peak
  local name=$1; shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$out/mem-$name.csv" &
  local smi=$!
  "$@" >"$out/bench-$name.log" 2>&1
  local rc=$?
  kill "$smi" 2>/dev/null
  log "$name: rc=$rc peak GPU memory $(sort -n "$out/mem-$name.csv" | tail -1) MiB; $(tail -1 "$out/bench-$name.log")"
}

bench() {
  log "benchmark Qwen3-0.6B, micro-batch 8 x 2048 (full steps: forward, backward, clip, AdamW)"
  sample_mem lmforge-bf16 node bin/lmforge.js bench --preset qwen3-0.6b --device cuda --batch 8 --seq 2048 --steps 5
  py=/opt/torch/.venv/bin/python3; [ -x "$py" ] || py=python3
  sample_mem torch-eager "$py" .device/shared/peers/torch_qwen3_gpu.py --preset qwen3-0.6b --micro 8 --seq 2048 --steps 8
  sample_mem torch-compile "$py" .device/shared/peers/torch_qwen3_gpu.py --preset qwen3-0.6b --micro 8 --seq 2048 --steps 8 --compile
}

case $what in
  build) build ;;
  test) tests ;;
  bench) bench ;;
  all) build; tests; bench ;;
  *) echo "usage: bash scripts/device-check.sh [build|test|bench|all]"; exit 2 ;;
esac
cat "$out/summary.txt"

#!/bin/bash
# GPU call (a), under 6 minutes on the 16-core CUDA host: build, the CUDA op tests (then a part of them under
# compute-sanitizer's memcheck and racecheck), and golden parity in bf16 and fp32. Run from the project root after
# scripts/device-prep.sh (here) filled .device/; the run carries dist and .device (docs/cuda.md):
#   bash scripts/device-test.sh            DRY=1 bash scripts/device-test.sh   (prints the steps only)
# Writes $OUT/summary.txt and a log per step; every step runs even when an earlier one failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
# shellcheck source=scripts/device-lib.sh
. scripts/device-lib.sh

setup_env
sanitize() {  # sanitize TOOL TEST_FILE [NAME_PATTERN]: one test file in-process under compute-sanitizer
  local tool=$1 file=$2 pattern=${3:-}
  compute-sanitizer --tool "$tool" --error-exitcode 86 --print-limit 20 \
    node ${pattern:+--test-name-pattern="$pattern"} "$file"
}

# The MPI addon with NCCL (src/parallel/native; never compiled before: no nccl.h on the development machines),
# against the NCCL of the host's PyTorch environment unless NCCL_HOME says otherwise.
build_mpi_nccl() {
  local nccl=${NCCL_HOME:-/opt/torch/.venv/lib/python3.12/site-packages/nvidia/nccl} napi
  napi=$(node -p "require('node-addon-api').include_dir")
  # shellcheck disable=SC2046 # mpicc's flags are separate words
  g++ -O2 -std=c++17 -fPIC -shared -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS -DOMPI_SKIP_MPICXX=1 \
    -DLMFORGE_HAVE_NCCL=1 -I"$LMFORGE_NODE_INCLUDE" -I"$napi" -I/usr/local/cuda/include -I"$nccl/include" \
    $(mpicc --showme:compile) src/parallel/native/*.cc -o build/Release/lmforge_mpi.node \
    $(mpicc --showme:link) -L"$nccl/lib" -Wl,-rpath,"$nccl/lib" -l:libnccl.so.2 -L/usr/local/cuda/lib64 -lcudart -ldl
  echo "built build/Release/lmforge_mpi.node with NCCL from $nccl"
}

step unpack 15 unpack_node
step gpu 5 gpu_info
excerpt gpu '.'
step build 110 build_both
excerpt build 'built|up to date|failed|error'
step nccl 15 build_mpi_nccl
excerpt nccl 'built|error'
# Every op against the CPU engine, the defects' tests, document masking, evaluation head, a short training run, the
# tensor-core attention, bf16 activations (every op, conversions, the model's arena and weight copy), activation
# recomputation, the bf16 head, the fused kernels (residual add + norm, QK-norm weight gradients, multi-tensor AdamW).
step op-tests 50 node --test --test-concurrency=1 dist/test/engine-cuda/ops.test.js dist/test/engine-cuda/defects.test.js \
  dist/test/engine-cuda/documents.test.js dist/test/engine-cuda/head-logprob.test.js dist/test/engine-cuda/train.test.js \
  dist/test/engine-cuda/host.test.js dist/test/engine-cuda/flash-attention.test.js dist/test/engine-cuda/profile.test.js \
  dist/test/engine-cuda/bf16.test.js dist/test/engine-cuda/bf16-model.test.js dist/test/engine-cuda/recompute.test.js \
  dist/test/engine-cuda/head-bf16.test.js dist/test/engine-cuda/fused.test.js
excerpt op-tests '^# (tests|pass|fail|skipped)|^not ok'
step memcheck 50 sanitize memcheck dist/test/engine-cuda/ops.test.js
excerpt memcheck 'ERROR SUMMARY|^not ok|^# (pass|fail)'
# racecheck: the kernels with shared memory and barriers (attention, norms, QK-norm/RoPE, cross-entropy).
step racecheck 40 sanitize racecheck dist/test/engine-cuda/ops.test.js 'attention forward|rmsnorm|qkPrep|headCrossEntropy'
excerpt racecheck 'RACECHECK SUMMARY|ERROR SUMMARY|hazard|^not ok|^# (pass|fail)'
step golden 55 node --test dist/test/engine-cuda/golden-cuda.test.js
excerpt golden '^# \\# |^not ok|^# (pass|fail)'
finish

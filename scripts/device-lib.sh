# shellcheck shell=bash
# Shared by scripts/device-test.sh and scripts/device-bench.sh, the two GPU calls (docs/cuda.md). Sourced, not run.
#
# Every step runs under its own time budget, and the whole call under DEADLINE_S (default 340 s: a call must end
# within 6 minutes, and the machine's start is not counted in it), so a call always finishes and always writes its
# summary. A failing or timed-out step is recorded and the next step still runs: one call shows every failure.
# DRY=1 prints each step with its budget and command instead of running it (no GPU, Node or toolkit needed).
#
# Output ($OUT, else ./device-out): summary.txt (one line per step: ok / FAILED rc=N / TIMEOUT / SKIPPED, seconds),
# and one log per step, STEP.log.

out=${OUT:-$PWD/device-out}
export out  # the steps run in child shells
summary=$out/summary.txt
DRY=${DRY:-0}
DEADLINE_S=${DEADLINE_S:-340}
failures=0
call_start=$SECONDS
mkdir -p "$out"
: >"$summary"

note() { echo "$*" | tee -a "$summary"; }

# step NAME BUDGET_S CMD...: runs CMD (a command or a function of the calling script) with its output in
# $out/NAME.log, killed after BUDGET_S seconds or at the call's deadline, whichever comes first.
step() {
  local name=$1 budget=$2
  shift 2
  local left=$((DEADLINE_S - (SECONDS - call_start)))
  if [ "$DRY" = 1 ]; then
    note "step $name (budget ${budget}s): $*"
    return 0
  fi
  if [ "$left" -lt 10 ]; then
    note "SKIPPED    $name: the call's ${DEADLINE_S}s are spent"
    failures=$((failures + 1))
    return 0
  fi
  [ "$budget" -gt "$left" ] && budget=$left
  local t0=$SECONDS rc=0
  # `timeout` cannot run a shell function: the step runs in a child bash that has this script's functions.
  timeout -k 10 "$budget" bash -c "$(declare -f); $(printf '%q ' "$@")" >"$out/$name.log" 2>&1 || rc=$?
  local took=$((SECONDS - t0))
  if [ "$rc" = 0 ]; then
    note "ok         $name (${took}s)"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    note "TIMEOUT    $name after ${took}s (budget ${budget}s; see $name.log)"
    failures=$((failures + 1))
  else
    note "FAILED     $name rc=$rc (${took}s; see $name.log)"
    failures=$((failures + 1))
  fi
  return 0
}

# Appends lines of a step's log that match a pattern to the summary (test counts, failures, benchmark lines).
excerpt() {
  local name=$1 pattern=$2
  [ "$DRY" = 1 ] && return 0
  [ -f "$out/$name.log" ] && grep -E "$pattern" "$out/$name.log" | head -40 | sed "s/^/    $name: /" | tee -a "$summary"
  return 0
}

finish() {
  note "== $failures step(s) failed; $((SECONDS - call_start))s in all (deadline ${DEADLINE_S}s)"
  [ "$DRY" = 1 ] && return 0
  [ "$failures" = 0 ]
}

# The host has no Node.js and no npm packages: scripts/device-prep.sh packed both into .device/ (carried).
unpack_node() {
  tar xJf .device/node.tar.xz -C /tmp
  mkdir -p node_modules
  tar xJf .device/modules.tar.xz -C node_modules
  node --version
}

setup_env() {
  export PATH=/tmp/bin:/usr/local/cuda/bin:$PATH
  export LMFORGE_NODE_INCLUDE=$PWD/.device/node-include/node
  export LMFORGE_SHARED=$PWD/.device/shared
  export LMFORGE_CUDA_STRICT=1
  export LMFORGE_CUDA_TEST_DEVICE=cuda
}

gpu_info() {
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version --format=csv,noheader
  nproc
}

# The CPU engine (the op tests' reference), built without node-gyp: every file compiled in parallel, then linked.
# blas.h declares the CBLAS functions, so only the OpenBLAS library is needed, not its headers.
build_cpu() {
  local obj=build/cpu-obj napi blas
  napi=$(node -p "require('node-addon-api').include_dir")
  mkdir -p "$obj" build/Release
  blas=-lopenblas
  if ! ls /usr/lib/x86_64-linux-gnu/libopenblas.so >/dev/null 2>&1; then
    blas=$(find /usr/lib /usr/lib64 /usr/local/lib -name 'libopenblas.so*' 2>/dev/null | head -1)
  fi
  # shellcheck disable=SC2016 # $1 is expanded by the inner shell, one source file per call
  printf '%s\n' src/engine/cpu/*.cc src/engine/native/*.cc | xargs -P "$(nproc)" -I{} sh -c \
    'g++ -O3 -march=native -fopenmp -std=c++17 -fno-math-errno -fPIC -DNAPI_VERSION=8 -DNAPI_DISABLE_CPP_EXCEPTIONS \
       -I"$1" -I"$2" -c "$3" -o "$4/$(echo "$3" | tr / _).o"' _ "$LMFORGE_NODE_INCLUDE" "$napi" {} "$obj"
  g++ -shared -fopenmp -o build/Release/lmforge_cpu.node "$obj"/*.o "$blas"
}

# The CUDA engine (scripts/build-cuda.mjs: the card's architecture only, one nvcc per file on every core), skipped
# when the sources are those it was built from (a warm machine keeps build/ between calls).
cuda_sources_hash() {
  cat src/engine/cuda/*.cu src/engine/cuda/*.cc src/engine/cuda/*.h src/engine/cuda/*.cuh src/engine/native/* \
    scripts/build-cuda.mjs 2>/dev/null | sha256sum | cut -d' ' -f1
}

build_cuda() {
  local hash
  hash=$(cuda_sources_hash)
  if [ -f build/Release/lmforge_cuda.node ] && [ "$(cat build/cuda-src.sha256 2>/dev/null)" = "$hash" ]; then
    echo "lmforge_cuda.node is up to date (built from these sources)"
    return 0
  fi
  rm -f build/cuda-src.sha256
  node scripts/build-cuda.mjs && echo "$hash" >build/cuda-src.sha256
}

build_both() {  # the two builds share the 16 cores
  mkdir -p build
  build_cpu >build/cpu-build.log 2>&1 &
  local cpu=$!
  build_cuda
  local rc=$?
  wait "$cpu" || { echo "CPU engine build failed:"; cat build/cpu-build.log; return 1; }
  echo "CPU engine built"
  return "$rc"
}

# sample_mem NAME CMD...: runs CMD while nvidia-smi samples the GPU's used memory every 200 ms; prints the peak.
sample_mem() {
  local name=$1
  shift
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$out/mem-$name.csv" &
  local smi=$! rc=0
  "$@" || rc=$?
  kill "$smi" 2>/dev/null
  echo "peak GPU memory: $(sort -n "$out/mem-$name.csv" | tail -1) MiB"
  return "$rc"
}

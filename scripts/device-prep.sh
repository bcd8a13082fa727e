#!/bin/bash
# Run HERE (the development machine, from the project root) before scripts/device-check.sh on the CUDA host.
# Fills .device/ (git-ignored; pass it and dist in the run's carry list) with what the host lacks:
#   node.tar.xz + node-include/   Node itself and its Node-API headers (../shared/device/bundle-node.sh)
#   modules.tar.xz                the few runtime packages the CLI and the build need (node_modules is too big)
#   shared/golden, shared/peers   the golden cases and the PyTorch peer
# and compiles the TypeScript into dist/.
set -euo pipefail
root=$(pwd)
shared=${LMFORGE_SHARED:-$root/../shared}
[ -f .device/node.tar.xz ] || bash "$shared/device/bundle-node.sh"
# Runtime packages the forward-backward and bench verbs (and the build) load, with their dependencies.
pkgs=(node-addon-api yaml)
tar cJf .device/modules.tar.xz -C node_modules "${pkgs[@]}"
mkdir -p .device/shared
rm -rf .device/shared/golden .device/shared/peers
cp -r "$shared/golden" .device/shared/golden
mkdir -p .device/shared/peers && cp "$shared/peers/torch_qwen3_gpu.py" .device/shared/peers/
npx tsc -p .
du -sh .device dist
echo "now run on the CUDA host: bash scripts/device-check.sh   (carry: dist, .device)"

#!/usr/bin/env bash
# Builds onnxruntime with the Node.js binding and the TensorRT + CUDA execution providers on a
# Jetson (JetPack 6: L4T r36, CUDA 12.2, cuDNN 8.9, TensorRT 8.6), then installs the binding
# into this checkout's node_modules/onnxruntime-node. NOT TESTED by this project (no Jetson
# here): see docs/jetson.md. Takes 1.5 to 3 hours on an Orin; needs ~20 GB free and swap.
#   scripts/jetson/build-onnxruntime.sh [ORT_VERSION]   (default: the version in package.json)
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
ver=${1:-$(node -p "require('$here/package.json').dependencies['onnxruntime-node']")}
src=${ORT_SRC:-$HOME/onnxruntime}
[ "$(uname -m)" = aarch64 ] || { echo "build-onnxruntime: this script is for a Jetson (aarch64)" >&2; exit 1; }
[ -d /usr/local/cuda ] || { echo "build-onnxruntime: /usr/local/cuda missing: install JetPack 6 (nvidia-jetpack)" >&2; exit 1; }
echo "build-onnxruntime: onnxruntime v$ver in $src"
if [ ! -d "$src" ]; then git clone --recursive --branch "v$ver" https://github.com/microsoft/onnxruntime "$src"; fi
cd "$src"
# CUDA arch 87 = Orin (AGX/NX/Nano). --build_nodejs builds js/node with the providers compiled in.
./build.sh --config Release --update --build --parallel "$(nproc)" --skip_tests \
  --build_shared_lib --build_nodejs \
  --use_tensorrt --tensorrt_home /usr/lib/aarch64-linux-gnu \
  --use_cuda --cuda_home /usr/local/cuda --cudnn_home /usr/lib/aarch64-linux-gnu \
  --cmake_extra_defines CMAKE_CUDA_ARCHITECTURES=87 onnxruntime_BUILD_UNIT_TESTS=OFF
dest=$here/node_modules/onnxruntime-node/bin/napi-v6/linux/arm64
echo "build-onnxruntime: installing the binding into $dest"
mkdir -p "$dest"
cp -v js/node/bin/napi-v6/linux/arm64/* "$dest/"
cp -v build/Linux/Release/libonnxruntime_providers_*.so "$dest/" 2>/dev/null || true
echo "build-onnxruntime: check with: node $here/scripts/jetson/check-providers.mjs"

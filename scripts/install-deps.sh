#!/usr/bin/env bash
# Installs the Debian packages a target needs, only those missing. Usage: install-deps.sh run|test|bench
set -euo pipefail
what=${1:-run}

run_pkgs=(build-essential pkg-config python3 libopencv-dev ffmpeg mosquitto-clients
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav v4l-utils)
# Python side (FGHV training/export/tests), the real broker for tests, the Debian portraits
# that the demo video and the demo model are made from.
test_pkgs=(mosquitto mosquitto-clients python3-torch python3-onnx python3-numpy python3-opencv
  python3-pytest python3-matplotlib facedetect python3-skimage chromium openssl)

pkgs=("${run_pkgs[@]}")
[ "$what" = run ] || pkgs+=("${test_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then missing+=("$p"); fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing Debian packages: ${missing[*]}"
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

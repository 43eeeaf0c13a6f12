#!/usr/bin/env bash
# Builds onestep (installing what is missing, see scripts/setup.sh) and runs the whole test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "${ONESTEP_BUILD_DIR:-$ROOT/build}"
ctest --output-on-failure -j "${ONESTEP_JOBS:-$(nproc)}" "$@"
